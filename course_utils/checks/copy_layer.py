"""Notebook 4: check_copy_last_layer, fc's weight and bias copied into a 1x1 conv, in place."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from ..i18n import tr
from ._common import _Exercise, _self_check, _shape

#: (K classes, C channels): not the notebook's 7 and 512, so that hard-coded sizes show.
_COPY_SIZES = [(5, 12), (3, 20)]


def _no_grad_hint() -> str:
    """The hint for autograd's refusal to change a Parameter in place (also used by `flatten_head`)."""
    return tr(
        "wrap the copy in `with torch.no_grad():`: autograd does not allow an in-place change of a Parameter it tracks"
    )


def _copy_error_hint(classes: int, channels: int) -> Callable[[Exception], str | None]:
    def explain(error: Exception) -> str | None:
        text = str(error)
        if "leaf Variable that requires grad" in text:
            return _no_grad_hint()
        if "shape" in text or "size" in text:
            return tr(
                "this check uses fc = nn.Linear({channels}, {classes}), not the notebook's 512 channels and 7 "
                "classes: use fc's shapes, e.g. fc.weight.reshape(conv.weight.shape), not numbers",
                channels=channels,
                classes=classes,
            )
        return None

    return explain


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether changing b changes a (b is restored)."""
    with torch.no_grad():
        saved, before = b.detach().clone(), a.detach().clone()
        b.add_(1.0)
        changed = not torch.equal(a.detach(), before)
        b.copy_(saved)
    return changed


def _check_copy_target(
    exercise: _Exercise,
    size: str,
    fc: nn.Linear,
    fc_before: tuple[torch.Tensor, torch.Tensor],
    conv: nn.Conv2d,
    initial_weight: torch.Tensor,
    result,
) -> None:
    """fc must be unchanged, and the conv given filled, not a new module returned in its place."""
    __tracebackhide__ = True
    weight, bias = fc_before
    if not (torch.equal(fc.weight.detach(), weight) and torch.equal(fc.bias.detach(), bias)):
        raise exercise.error(tr("{size}: fc was changed: copy from fc into conv, not the other way round", size=size))
    if isinstance(result, nn.Module) and result is not conv and torch.equal(conv.weight.detach(), initial_weight):
        raise exercise.error(
            tr(
                "{size}: you returned a new {type}, but the conv you were given "
                "is unchanged: the network holds that conv, so fill its weight and bias in place "
                "(conv.weight.copy_(...) inside torch.no_grad())",
                size=size,
                type=type(result).__name__,
            )
        )


def _check_copy_in_place(
    exercise: _Exercise, size: str, fc: nn.Linear, conv: nn.Conv2d, originals: dict[str, torch.Tensor]
) -> None:
    """conv's weight and bias must be its own Parameters, filled in place, sharing nothing with fc."""
    __tracebackhide__ = True
    for name in ("weight", "bias"):
        mine = getattr(conv, name)
        if mine is not None and _shares_memory(mine, getattr(fc, name)):
            raise exercise.error(
                tr(
                    "{size}: conv.{name} shares memory with fc.{name}, so training one would change "
                    "the other: copy the values with conv.weight.copy_(...) inside torch.no_grad()",
                    size=size,
                    name=name,
                )
            )
    for name in ("weight", "bias"):
        if getattr(conv, name) is not originals[name]:
            raise exercise.error(
                tr(
                    "{size}: conv.{name} is a new nn.Parameter, so an optimizer (or a hook) holding "
                    "the old one would not see the copy: copy into the existing Parameter in place, "
                    "conv.{name}.copy_(...) inside torch.no_grad()",
                    size=size,
                    name=name,
                )
            )


def _check_copied_values(
    exercise: _Exercise,
    size: str,
    conv: nn.Conv2d,
    weight: torch.Tensor,
    bias: torch.Tensor,
    initial_weight: torch.Tensor,
) -> None:
    __tracebackhide__ = True
    classes, channels = weight.shape
    if tuple(conv.weight.shape) != (classes, channels, 1, 1):
        raise exercise.error(
            tr(
                "{size}: expected conv.weight of shape {expected}, got {got}",
                size=size,
                expected=(classes, channels, 1, 1),
                got=_shape(conv.weight.shape),
            )
        )
    got = conv.weight.detach().flatten(1)
    if not torch.equal(got, weight):
        if torch.equal(conv.weight.detach(), initial_weight):
            hint = tr("conv.weight was not changed")
        elif torch.equal(got.flatten().sort().values, weight.flatten().sort().values):
            hint = tr(
                "fc's numbers in the wrong places: fc.weight is (K, C) = (classes, channels) like conv.weight "
                "(K, C, 1, 1): reshape it, or add two dimensions, without transposing"
            )
        else:
            hint = tr("conv.weight[k, c, 0, 0] must be fc.weight[k, c]")
        raise exercise.error(
            tr(
                "{size}: conv.weight differs from fc.weight by up to {difference:.3g} ({hint})",
                size=size,
                difference=(got - weight).abs().max().item(),
                hint=hint,
            )
        )
    if conv.bias is None or not torch.equal(conv.bias.detach(), bias):
        got_bias = "None" if conv.bias is None else f"{conv.bias.detach()[:3].tolist()}..."
        raise exercise.error(
            tr(
                "{size}: expected conv.bias == fc.bias = {expected}..., got {got} "
                "(the bias was not copied: every class score would be off by a constant)",
                size=size,
                expected=bias[:3].tolist(),
                got=got_bias,
            )
        )


@_self_check
def check_copy_last_layer(copy_last_layer: Callable[[nn.Linear, nn.Conv2d], None]) -> None:
    """copy_last_layer(fc, conv) copies fc's weight (K, C) and bias (K,) into the given 1x1 conv, in place."""
    __tracebackhide__ = True
    exercise = _Exercise("copy_last_layer")
    for classes, channels in _COPY_SIZES:
        torch.manual_seed(classes)
        fc = nn.Linear(channels, classes)
        conv = nn.Conv2d(channels, classes, kernel_size=1)
        weight, bias = fc.weight.detach().clone(), fc.bias.detach().clone()
        originals = {"weight": conv.weight, "bias": conv.bias}
        initial_weight = conv.weight.detach().clone()
        size = tr(
            "with fc = nn.Linear({channels}, {classes}) (K={classes} classes, C={channels} channels)",
            channels=channels,
            classes=classes,
        )
        result = exercise.run(size, copy_last_layer, fc, conv, explain=_copy_error_hint(classes, channels))
        _check_copy_target(exercise, size, fc, (weight, bias), conv, initial_weight, result)
        _check_copy_in_place(exercise, size, fc, conv, originals)
        _check_copied_values(exercise, size, conv, weight, bias, initial_weight)
        features = torch.randn(2, channels, 3, 5)
        with torch.no_grad():
            expected = fc(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            if not torch.allclose(conv(features), expected, atol=1e-5):
                raise exercise.error(tr("{size}: conv(features) differs from fc applied at each position", size=size))
    exercise.passed(tr("weight and bias copied, for two layer sizes; conv == fc at every position."))
