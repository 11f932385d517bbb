"""Notebook 4: check_linear_to_conv, the paper's real head: a Flatten + Linear turned into an h x w conv.

VGG16's fc6 reads a flattened 7x7x512 block; FCN turns it into a 7x7 convolution with the same
weights. PyTorch flattens a (C, h, w) block channel first, then rows, then columns: column
c*h*w + i*w + j of fc.weight holds feature (c, i, j), so fc.weight.reshape(D, C, h, w) is the conv's
weight. The check compares the copied weight with that, and conv with fc on an h x w input and on
every h x w window of a larger one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._common import _Exercise, _first_match, _self_check, _shape
from .copy_layer import _NO_GRAD_HINT, _check_copy_in_place, _check_copy_target

#: (C channels, h rows, w columns, D outputs): small, not the paper's 512, 7x7 and 4096, and the last
#: window is not square, so that swapped rows and columns show.
_HEAD_SIZES = [(3, 2, 2, 4), (5, 3, 3, 2), (2, 2, 3, 3)]

#: Numbers of the paper's fc6, which a hard-coded answer would contain.
_PAPER_NUMBERS = {"7", "49", "512", "4096", "25088"}


def _head_error_hint(channels: int, h: int, w: int, outputs: int) -> Callable[[Exception], str | None]:
    """A hint for an error raised by the learner's copy: no torch.no_grad(), hard-coded or misordered sizes."""

    def explain(error: Exception) -> str | None:
        text = str(error)
        if "leaf Variable that requires grad" in text:
            return _NO_GRAD_HINT
        if "shape" not in text and "size" not in text:
            return None
        if _PAPER_NUMBERS & set(re.findall(r"\d+", text)):
            return (
                f"this check uses fc = nn.Linear({channels * h * w}, {outputs}) on {channels}x{h}x{w} features, not "
                "the paper's 512x7x7 and 4096: take the sizes from conv.weight.shape, e.g. "
                "fc.weight.reshape(conv.weight.shape), not numbers"
            )
        return (
            f"conv.weight is (D, C, h, w) = {(outputs, channels, h, w)} and fc.weight is (D, C*h*w) = "
            f"{(outputs, channels * h * w)}: D already comes first, so reshape fc.weight straight to "
            f"conv.weight.shape, with no .T, permute or transpose (here h = {h} rows, w = {w} columns)"
        )

    return explain


def _order_mistakes(weight: torch.Tensor, channels: int, h: int, w: int) -> list[tuple[torch.Tensor, str]]:
    """(conv weight, hint) for fc.weight (D, C*h*w) read in a wrong order."""
    outputs = weight.shape[0]
    swapped = (
        "rows and columns swapped: within a channel PyTorch flattens row by row, column i*w + j is row i, "
        "column j, so fc.weight.reshape(D, C, h, w) with no transpose"
    )
    return [
        (
            weight.reshape(outputs, h, w, channels).permute(0, 3, 1, 2),
            "fc's columns read channels last (rows, columns, then channels: Keras/TensorFlow's flatten order): "
            "PyTorch flattens (C, h, w) channel first, then rows, then columns, so column c*h*w + i*w + j holds "
            "feature (c, i, j): fc.weight.reshape(D, C, h, w), with no permute",
        ),
        (weight.reshape(outputs, channels, w, h).transpose(2, 3), swapped),
    ]


def _check_head_weights(
    exercise: _Exercise, size: str, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor, initial: torch.Tensor
) -> None:
    """conv.weight (D, C, h, w) must be fc.weight (D, C*h*w) reshaped, and conv.bias (D,) fc.bias."""
    __tracebackhide__ = True
    outputs, channels, h, w = initial.shape
    expected = weight.reshape(initial.shape)
    got = conv.weight.detach()
    if got.shape != expected.shape:
        raise exercise.error(
            f"{size}: expected conv.weight of shape {_shape(expected.shape)}, got {_shape(got.shape)} "
            "(reshape fc.weight to conv.weight.shape)"
        )
    if not torch.equal(got, expected):
        if torch.equal(got, initial):
            hint = "conv.weight was not changed"
        else:
            hint = _first_match(got, _order_mistakes(weight, channels, h, w))
        if hint is None and torch.equal(got.flatten().sort().values, expected.flatten().sort().values):
            hint = (
                "fc's numbers in the wrong places: conv.weight[d, c, i, j] must be fc.weight[d, c*h*w + i*w + j], "
                "that is fc.weight.reshape(D, C, h, w), with no .T, permute or transpose"
            )
        raise exercise.error(
            f"{size}: conv.weight differs from fc.weight.reshape(D, C, h, w) by up to "
            f"{(got - expected).abs().max().item():.3g}" + (f" ({hint})" if hint else "")
        )
    if conv.bias is None or not torch.equal(conv.bias.detach(), bias):
        got_bias = "None" if conv.bias is None else f"{_rounded(conv.bias.detach())}..."
        raise exercise.error(
            f"{size}: expected conv.bias == fc.bias = {_rounded(bias)}..., got {got_bias} "
            "(the bias was not copied: every output would be off by a constant)"
        )


def _rounded(values: torch.Tensor) -> list[float]:
    """The first three of `values`, rounded, for a message."""
    return [round(value, 4) for value in values[:3].tolist()]


def _every_window(fc: nn.Linear, features: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """fc applied to every h x w window of features (N, C, H, W): (N, D, H - h + 1, W - w + 1)."""
    windows = F.unfold(features, (h, w))  # (N, C*h*w, L), each column flattened like (C, h, w)
    scores = fc(windows.transpose(1, 2)).transpose(1, 2)  # (N, D, L)
    return scores.reshape(*scores.shape[:2], features.shape[-2] - h + 1, features.shape[-1] - w + 1)


def _check_head_outputs(exercise: _Exercise, size: str, fc: nn.Linear, conv: nn.Conv2d, h: int, w: int) -> None:
    """conv on an h x w input is fc on the flattened features; on a larger one, fc on every window."""
    __tracebackhide__ = True
    channels = conv.in_channels
    small, large = torch.randn(2, channels, h, w), torch.randn(2, channels, h + 3, w + 2)
    with torch.no_grad():
        expected, got = fc(small.flatten(1))[:, :, None, None], conv(small)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
            raise exercise.error(
                f"{size}: on an input of shape {_shape(small.shape)}, conv(features) is not "
                f"fc(features.flatten(1)) of shape {_shape(expected.shape)}"
            )
        expected, got = _every_window(fc, large, h, w), conv(large)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
            raise exercise.error(
                f"{size}: on an input of shape {_shape(large.shape)}, conv(features) is not fc applied to "
                f"every {h}x{w} window, of shape {_shape(expected.shape)}"
            )


@_self_check
def check_linear_to_conv(linear_to_conv: Callable[[nn.Linear, nn.Conv2d], None]) -> None:
    """linear_to_conv(fc, conv) copies fc = nn.Linear(C*h*w, D) into conv = nn.Conv2d(C, D, (h, w)), in place.

    fc reads features (N, C, h, w) flattened to (N, C*h*w); conv(features) must then be
    fc(features.flatten(1)) as (N, D, 1, 1), and fc on every h x w window of a larger input.
    """
    __tracebackhide__ = True
    exercise = _Exercise("linear_to_conv")
    for channels, h, w, outputs in _HEAD_SIZES:
        torch.manual_seed(channels * h * w)
        fc = nn.Linear(channels * h * w, outputs)
        conv = nn.Conv2d(channels, outputs, kernel_size=(h, w))
        weight, bias = fc.weight.detach().clone(), fc.bias.detach().clone()
        originals = {"weight": conv.weight, "bias": conv.bias}
        initial = conv.weight.detach().clone()
        size = (
            f"with fc = nn.Linear({channels * h * w}, {outputs}) on (N, {channels}, {h}, {w}) features "
            f"(C={channels}, h={h}, w={w}, D={outputs})"
        )
        explain = _head_error_hint(channels, h, w, outputs)
        result = exercise.run(size, linear_to_conv, fc, conv, explain=explain)
        _check_copy_target(exercise, size, fc, (weight, bias), conv, initial, result)
        _check_copy_in_place(exercise, size, fc, conv, originals)
        _check_head_weights(exercise, size, conv, weight, bias, initial)
        _check_head_outputs(exercise, size, fc, conv, h, w)
    exercise.passed(
        f"weight and bias copied in PyTorch's flatten order, for {len(_HEAD_SIZES)} head sizes; conv == fc on "
        "an h x w input and on every window of a larger one."
    )
