"""Notebook 2: check_receptive_field, the learner's layer-by-layer trace of output size, receptive field and jump.

trace(layers, size) follows a square input of side `size` through `layers` and returns one
(size, field, jump) per conv or pool layer, the layers whose `layer_geometry` (kernel k, stride s,
padding p) is not None, after that layer:

    size  = (size + 2p - k) // s + 1    the output side, in positions (rounded down)
    field = field + (k - 1) * jump      the receptive field's side, in input pixels
    jump  = jump * s                    input pixels between neighbouring outputs

field and jump start at 1. The sizes are compared with what the real layers produce on a zeros
input, the fields and jumps with this recursion. Each typical mistake is recognised by recomputing
the whole trace with that mistake (`_MISTAKES`) and comparing it with the learner's.
"""

from __future__ import annotations

import functools
import itertools
import numbers
import operator
from collections.abc import Callable, Iterable

import torch
import torch.nn as nn

from ..i18n import tr
from ..models import VGG11Backbone, layer_geometry
from ._common import _describe, _Exercise, _ordinal, _self_check

#: One conv or pool layer for the recursion: (is a pool, kernel, stride, padding).
_Step = tuple[bool, int, int, int]

_SIZE = "size = (size + 2 * p - k) // s + 1"


def _cases() -> list[tuple[str, nn.Sequential, int]]:
    """(description, layers, input side): not the notebook's 224, with BatchNorm/ReLU among the layers.

    The first stack gives a different trace for each hint of `_MISTAKES` (VGG's 3x3 convs and 2x2
    pools could not: there, multiplying the jump first gives the same trace as adding 2 * jump).
    """
    return [
        (
            tr("an AlexNet-like stack (Conv2d k=5 s=2 p=2, ReLU, MaxPool2d(3, 2), Conv2d k=3 p=1, ReLU) at size 67"),
            nn.Sequential(
                nn.Conv2d(3, 4, 5, stride=2, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(3, 2),
                nn.Conv2d(4, 4, 3, padding=1),
                nn.ReLU(),
            ),
            67,
        ),
        (tr("VGG11Backbone(width=4) at size 64"), VGG11Backbone(width=4), 64),
        (
            tr("a stack without padding (Conv2d k=3 p=0, BatchNorm2d, ReLU, MaxPool2d(2), Conv2d k=3 p=0) at size 33"),
            nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3)),
            33,
        ),
        (
            tr(
                "a stack of stride-2 convolutions (Conv2d k=4 s=2 p=1, BatchNorm2d, ReLU, Conv2d k=4 s=2 p=1) at "
                "size 45"
            ),
            nn.Sequential(
                nn.Conv2d(3, 4, 4, stride=2, padding=1),
                nn.BatchNorm2d(4),
                nn.ReLU(),
                nn.Conv2d(4, 4, 4, stride=2, padding=1),
            ),
            45,
        ),
        (
            tr(
                "a ResNet-like stem (Conv2d k=7 s=2 p=3, BatchNorm2d, ReLU, MaxPool2d(3, 2, padding=1), Conv2d k=3 "
                "p=1, AvgPool2d(2)) at size 50"
            ),
            nn.Sequential(
                nn.Conv2d(3, 4, 7, stride=2, padding=3),
                nn.BatchNorm2d(4),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, padding=1),
                nn.Conv2d(4, 4, 3, padding=1),
                nn.AvgPool2d(2),
            ),
            50,
        ),
    ]


# =========================================================================== the reference and its mistakes


def _steps(layers: Iterable[nn.Module]) -> list[_Step]:
    """(is a pool, k, s, p) of each conv or pool layer, in order."""
    return [
        (not isinstance(layer, nn.Conv2d), *geometry)
        for layer in layers
        if (geometry := layer_geometry(layer)) is not None
    ]


def _real_sizes(layers: nn.Sequential, size: int) -> list[int]:
    """The side of each conv or pool layer's output when a zeros (1, C, size, size) input runs through `layers`."""
    channels = next(layer.in_channels for layer in layers if isinstance(layer, nn.Conv2d))
    x, sizes = torch.zeros(1, channels, size, size), []
    with torch.no_grad():
        for layer in layers.eval():
            x = layer(x)
            if layer_geometry(layer) is not None:
                sizes.append(x.shape[-1])
    return sizes


def _trace(steps: list[_Step], size: int, mistake: str = "") -> list[tuple[int, int, int]]:
    """(size, field, jump) after each step by the recursion, or with one of `_MISTAKES`."""
    field, jump, entries = (0 if mistake == "start at 0" else 1), 1, []
    for pool, k, s, p in steps:
        padding = 0 if mistake == "no padding" else p
        stride = 1 if mistake == "no stride" else s
        rounded = -(-(size + 2 * padding - k) // stride) if mistake == "ceil" else (size + 2 * padding - k) // stride
        size = rounded + 1
        if mistake == "jump first":
            jump *= s
        growth = {
            "k - 1": k - 1,
            "2 * jump": 2 * jump,
            "3x3 conv, 2x2 pool": (1 if pool else 2) * jump,
            "3x3 conv": (k - 1 if pool else 2) * jump,
            "pools keep field": 0 if pool else (k - 1) * jump,
            "pools change size only": 0 if pool else (k - 1) * jump,
        }.get(mistake, (k - 1) * jump)
        field += growth
        if mistake != "jump first" and not (pool and mistake == "pools change size only"):
            jump *= s
        entries.append((size, field, jump))
    return entries


def _two_per_layer_hint() -> str:
    return tr("field += 2 * jump assumes 3x3 kernels (and 2x2 pools): a k x k kernel or pool adds (k - 1) * jump")


#: mistake -> hint, a function giving the hint in the course's language of the moment (mistakes
#: with the same hint share the function); `_trace(steps, size, mistake)` makes the trace it gives.
_MISTAKES: dict[str, Callable[[], str]] = {
    "k - 1": lambda: tr(
        "field += k - 1 forgets the jump: each step of the kernel moves `jump` input pixels, so field += (k - 1) * jump"
    ),
    "jump first": lambda: tr(
        "the jump was multiplied by the stride before the field grew: this layer's kernel steps over "
        "positions spaced by the jump from *before* the layer, so update the field first, then jump *= s"
    ),
    "2 * jump": _two_per_layer_hint,
    "3x3 conv": _two_per_layer_hint,  # for convs only: the same trace on the first stack
    "3x3 conv, 2x2 pool": lambda: tr(
        "2 * jump per conv and 1 * jump per pool assumes 3x3 kernels (and 2x2 pools): a k x k kernel or pool "
        "adds (k - 1) * jump"
    ),
    "no padding": lambda: tr("padding ignored in the size: {rule}", rule=_SIZE),
    "no stride": lambda: tr("stride ignored in the size: {rule}", rule=_SIZE),
    "ceil": lambda: tr(
        "rounded up: a window that does not fit in the (padded) input is dropped, so round down with //"
    ),
    "pools keep field": lambda: tr(
        "pools grow the field too: a k x k pool sees k neighbouring positions, so field += (k - 1) * jump, as "
        "for a conv"
    ),
    "pools change size only": lambda: tr(
        "pools grow the field too: a k x k pool sees k neighbouring positions, so field += (k - 1) * jump, as "
        "for a conv, and jump *= s"
    ),
    "start at 0": lambda: tr("the field starts at 1: before any layer, each position sees one pixel, itself"),
}


# =========================================================================== judging the learner's trace


def _number(value) -> int | float:
    """A Python int (from an int, NumPy or torch integer) or float; TypeError for anything else."""
    try:
        return operator.index(value)
    except TypeError:
        if isinstance(value, numbers.Real) or (hasattr(value, "dtype") and getattr(value, "ndim", None) == 0):
            return float(value)  # a float, or a NumPy or torch float scalar
        raise


def _entries(exercise: _Exercise, case: str, got, layers: nn.Sequential, expected: list) -> list[tuple]:
    """The learner's entries as tuples of 3 numbers, after checking their type and count.

    `case`: "for <the stack>", as the messages begin.
    """
    __tracebackhide__ = True
    exercise.expect_returned(case, got)
    if not isinstance(got, (list, tuple)) and not hasattr(got, "shape"):
        raise exercise.error(
            tr(
                "{case}, expected a list of {count} (size, field, jump) tuples, got {got}: "
                "append one tuple per conv or pool layer to a list, and return the list",
                case=case,
                count=len(expected),
                got=_describe(got),
            )
        )
    entries = list(got)
    if len(entries) != len(expected):
        convs = sum(isinstance(layer, nn.Conv2d) for layer in layers)
        if len(entries) in (len(layers), len(list(layers.modules()))):
            hint = tr(
                "one per layer, BatchNorm and ReLU included: they keep size, field and jump, so list only the layers "
                "whose layer_geometry(layer) is not None"
            )
        elif len(entries) == convs:
            hint = tr("only the convolutions: pools change the size, the field and the jump too, so list them as well")
        else:
            hint = tr("one per conv or pool layer (those whose layer_geometry(layer) is not None)")
        raise exercise.error(
            tr(
                "{case}, expected {expected} entries, got {got} ({hint})",
                case=case,
                expected=len(expected),
                got=len(entries),
                hint=hint,
            )
        )
    parsed = []
    for index, entry in enumerate(entries):
        try:
            numbers_ = tuple(_number(value) for value in entry)
        except TypeError:
            numbers_ = ()
        if len(numbers_) != 3:
            raise exercise.error(
                tr(
                    "{case}, the {ordinal} entry is {got}: each entry is a tuple (size, field, jump) of three numbers",
                    case=case,
                    ordinal=_ordinal(index),
                    got=_describe(entry),
                )
            )
        parsed.append(numbers_)
    return parsed


def _hint(got: list[tuple], expected: list[tuple], steps: list[_Step], size: int, index: int) -> str:
    """What went wrong, from the whole trace, or from which numbers of the first wrong entry differ."""
    if any(isinstance(entry[0], float) and not entry[0].is_integer() for entry in got):
        return tr("a size is not a whole number: / divides exactly, use // to round down")
    names = ("size", "field", "jump")
    for order in itertools.permutations(range(3)):
        if order != (0, 1, 2) and all(tuple(e[i] for i in order) == g for e, g in zip(expected, got)):
            return tr(
                "your entries are ({order}): return each as (size, field, jump)",
                order=", ".join(names[i] for i in order),
            )
    for mistake, hint in _MISTAKES.items():
        if _trace(steps, size, mistake) == got:
            return hint()
    wrong = [name for name, mine, right in zip(names, got[index], expected[index]) if mine != right]
    rules = {
        "size": _SIZE,
        "field": tr("field += (k - 1) * jump, with the jump from before this layer"),
        "jump": "jump *= s",
    }
    return tr(
        "{values} wrong: {rules}",
        values=functools.reduce(lambda first, then: tr("{first} and {then}", first=first, then=then), wrong),
        rules="; ".join(rules[name] for name in wrong),
    )


def _check_one_stack(exercise: _Exercise, trace: Callable, case: str, layers: nn.Sequential, size: int) -> None:
    __tracebackhide__ = True
    steps = _steps(layers)
    expected = [(real, field, jump) for real, (_, field, jump) in zip(_real_sizes(layers, size), _trace(steps, size))]
    where = tr("for {stack}", stack=case)
    got = exercise.run(where, trace, layers, size, explain=_crash_hint)
    got = _entries(exercise, where, got, layers, expected)
    if got == expected:
        return
    index = next(i for i, (mine, right) in enumerate(zip(got, expected)) if mine != right)
    pool, k, s, p = steps[index]
    layer = f"{'pool' if pool else 'conv'} k={k} s={s} p={p}"
    shown = tuple(int(v) if float(v).is_integer() else v for v in got[index])
    raise exercise.error(
        tr(
            "{case}, after the {ordinal} conv or pool layer ({layer}) expected (size, field, jump) = {expected}, "
            "got {got} ({hint})",
            case=where,
            ordinal=_ordinal(index),
            layer=layer,
            expected=expected[index],
            got=shown,
            hint=_hint(got, expected, steps, size, index),
        )
    )


def _crash_hint(error: Exception) -> str | None:
    text = str(error)
    if "NoneType" in text:
        return tr(
            "layer_geometry(layer) is None for layers such as BatchNorm and ReLU, which keep the geometry: "
            "skip them (`if geometry is None: continue`)"
        )
    if isinstance(error, AttributeError) and any(name in text for name in ("kernel_size", "stride", "padding")):
        return tr("only conv and pool layers have a kernel: use layer_geometry(layer), None for the other layers")
    if "tuple" in text:
        return tr("a layer's kernel_size, stride and padding can be pairs like (3, 3): layer_geometry gives plain ints")
    return None


@_self_check
def check_receptive_field(trace: Callable[[Iterable[nn.Module], int], list[tuple[int, int, int]]]) -> None:
    """trace(layers, size) -> [(size, field, jump) after each conv or pool layer], for a square input of side size.

    Five stacks, BatchNorm and ReLU among their layers; sizes compared with the real layers' outputs.
    """
    __tracebackhide__ = True
    exercise = _Exercise("trace")
    cases = _cases()
    for case, layers, size in cases:
        _check_one_stack(exercise, trace, case, layers, size)
    exercise.passed(
        tr(
            "output sizes, receptive fields and jumps right for {count} stacks of layers "
            "(sizes checked against the real layers).",
            count=len(cases),
        )
    )
