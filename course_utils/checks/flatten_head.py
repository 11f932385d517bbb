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

from ..i18n import tr
from ._common import _Exercise, _first_match, _self_check, _shape
from .copy_layer import _check_copy_in_place, _check_copy_target, _no_grad_hint

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
            return _no_grad_hint()
        if "shape" not in text and "size" not in text:
            return None
        if _PAPER_NUMBERS & set(re.findall(r"\d+", text)):
            return tr(
                "this check uses fc = nn.Linear({inputs}, {outputs}) on {channels}x{h}x{w} features, not "
                "the paper's 512x7x7 and 4096: take the sizes from conv.weight.shape, e.g. "
                "fc.weight.reshape(conv.weight.shape), not numbers",
                inputs=channels * h * w,
                outputs=outputs,
                channels=channels,
                h=h,
                w=w,
            )
        return tr(
            "conv.weight is (D, C, h, w) = {conv_shape} and fc.weight is (D, C*h*w) = "
            "{fc_shape}: D already comes first, so reshape fc.weight straight to "
            "conv.weight.shape, with no .T, permute or transpose (here h = {h} rows, w = {w} columns)",
            conv_shape=(outputs, channels, h, w),
            fc_shape=(outputs, channels * h * w),
            h=h,
            w=w,
        )

    return explain


def _order_mistakes(weight: torch.Tensor, channels: int, h: int, w: int) -> list[tuple[torch.Tensor, str]]:
    """(conv weight, hint) for fc.weight (D, C*h*w) read in a wrong order."""
    outputs = weight.shape[0]
    swapped = tr(
        "rows and columns swapped: within a channel PyTorch flattens row by row, column i*w + j is row i, "
        "column j, so fc.weight.reshape(D, C, h, w) with no transpose"
    )
    return [
        (
            weight.reshape(outputs, h, w, channels).permute(0, 3, 1, 2),
            tr(
                "fc's columns read channels last (rows, columns, then channels: Keras/TensorFlow's flatten order): "
                "PyTorch flattens (C, h, w) channel first, then rows, then columns, so column c*h*w + i*w + j holds "
                "feature (c, i, j): fc.weight.reshape(D, C, h, w), with no permute"
            ),
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
            tr(
                "{size}: expected conv.weight of shape {expected}, got {got} (reshape fc.weight to conv.weight.shape)",
                size=size,
                expected=_shape(expected.shape),
                got=_shape(got.shape),
            )
        )
    if not torch.equal(got, expected):
        if torch.equal(got, initial):
            hint = tr("conv.weight was not changed")
        else:
            hint = _first_match(got, _order_mistakes(weight, channels, h, w))
        if hint is None and torch.equal(got.flatten().sort().values, expected.flatten().sort().values):
            hint = tr(
                "fc's numbers in the wrong places: conv.weight[d, c, i, j] must be fc.weight[d, c*h*w + i*w + j], "
                "that is fc.weight.reshape(D, C, h, w), with no .T, permute or transpose"
            )
        raise exercise.error(
            tr(
                "{size}: conv.weight differs from fc.weight.reshape(D, C, h, w) by up to {difference:.3g}",
                size=size,
                difference=(got - expected).abs().max().item(),
            )
            + (f" ({hint})" if hint else "")
        )
    if conv.bias is None or not torch.equal(conv.bias.detach(), bias):
        got_bias = "None" if conv.bias is None else f"{_rounded(conv.bias.detach())}..."
        raise exercise.error(
            tr(
                "{size}: expected conv.bias == fc.bias = {expected}..., got {got} "
                "(the bias was not copied: every output would be off by a constant)",
                size=size,
                expected=_rounded(bias),
                got=got_bias,
            )
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
                tr(
                    "{size}: on an input of shape {input_shape}, conv(features) is not "
                    "fc(features.flatten(1)) of shape {expected}",
                    size=size,
                    input_shape=_shape(small.shape),
                    expected=_shape(expected.shape),
                )
            )
        expected, got = _every_window(fc, large, h, w), conv(large)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
            raise exercise.error(
                tr(
                    "{size}: on an input of shape {input_shape}, conv(features) is not fc applied to "
                    "every {h}x{w} window, of shape {expected}",
                    size=size,
                    input_shape=_shape(large.shape),
                    h=h,
                    w=w,
                    expected=_shape(expected.shape),
                )
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
        size = tr(
            "with fc = nn.Linear({inputs}, {outputs}) on (N, {channels}, {h}, {w}) features "
            "(C={channels}, h={h}, w={w}, D={outputs})",
            inputs=channels * h * w,
            outputs=outputs,
            channels=channels,
            h=h,
            w=w,
        )
        explain = _head_error_hint(channels, h, w, outputs)
        result = exercise.run(size, linear_to_conv, fc, conv, explain=explain)
        _check_copy_target(exercise, size, fc, (weight, bias), conv, initial, result)
        _check_copy_in_place(exercise, size, fc, conv, originals)
        _check_head_weights(exercise, size, conv, weight, bias, initial)
        _check_head_outputs(exercise, size, fc, conv, h, w)
    exercise.passed(
        tr(
            "weight and bias copied in PyTorch's flatten order, for {count} head sizes; conv == fc on "
            "an h x w input and on every window of a larger one.",
            count=len(_HEAD_SIZES),
        )
    )
