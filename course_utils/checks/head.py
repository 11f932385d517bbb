"""Notebook 3: check_classifier_head, pool5 -> global average pooling -> fc."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..i18n import tr
from ._common import _Exercise, _first_match, _self_check

#: Odd-sized maps first (pool5 drops their last row or column), a batch of one first.
_HEAD_SHAPES = [(1, 12, 5, 7), (2, 12, 7, 3), (2, 12, 4, 6)]


def _head_reference(features: torch.Tensor, fc: nn.Linear) -> torch.Tensor:
    return fc(F.max_pool2d(features, 2).mean(dim=(2, 3)))


def _head_mistakes(features: torch.Tensor, fc: nn.Linear, expected: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    """(scores, hint) of typical wrong heads."""
    pooled = F.max_pool2d(features, 2)
    global_max = tr("that is global *max* pooling: average over height and width instead")
    logits = tr("return raw scores (logits): cross-entropy applies softmax itself")
    with torch.no_grad():
        return [
            (
                fc(features.mean(dim=(2, 3))),
                tr("pool5 is missing: max-pool 2x2 (F.max_pool2d(x, 2)) before the average"),
            ),
            (
                fc(F.avg_pool2d(features, 2).mean(dim=(2, 3))),
                tr("pool5 is an average pool: use max pooling, F.max_pool2d(x, 2) or nn.MaxPool2d(2)"),
            ),
            (
                fc(F.max_pool2d(features, 2, ceil_mode=True).mean(dim=(2, 3))),
                tr(
                    "pool5 rounds up (ceil_mode=True): nn.MaxPool2d(2) rounds down, dropping the last row or column "
                    "of an odd-sized map"
                ),
            ),
            (fc(pooled.amax(dim=(2, 3))), global_max),
            (fc(features.amax(dim=(2, 3))), global_max),
            (expected.softmax(dim=1), logits),
            (expected.log_softmax(dim=1), logits),
            (
                fc(pooled.sum(dim=(2, 3))),
                tr("the features are summed, not averaged: use the mean over dims 2 and 3"),
            ),
        ]


def _head_error_hint(features: torch.Tensor, fc: nn.Linear) -> Callable[[Exception], str | None]:
    """A hint for fc's shape error: the features were flattened, or not pooled down to C numbers."""
    batch, channels, height, width = features.shape

    def explain(error: Exception) -> str | None:
        text = str(error)
        if "mat1 and mat2" not in text and "shape" not in text:
            return None
        flat = {channels * height * width, channels * (height // 2) * (width // 2)}
        if any(f"{batch}x{n}" in text for n in flat):
            return tr(
                "fc expects C = {channels} numbers per image: global average pooling gives exactly C for any "
                "map size, while flattening the map gives C*h*w",
                channels=channels,
            )
        return tr(
            "fc expects (N, C) = ({batch}, {channels}): average over dims 2 and 3 (or flatten(1) after "
            "nn.AdaptiveAvgPool2d(1)) before fc",
            batch=batch,
            channels=channels,
        )

    return explain


def _head_shape_hint(batch: int, channels: int, classes: int) -> Callable[[tuple], str | None]:
    def hint(shape: tuple) -> str | None:
        if batch == 1 and shape == (classes,):
            return tr(
                ".squeeze() dropped the batch dimension for a batch of one image: use .flatten(1), or the mean "
                "over dims (2, 3), which keeps N"
            )
        if shape == (batch, channels):
            return tr(
                "that is the pooled features (C = {channels} per image): apply fc to get the {classes} class scores",
                channels=channels,
                classes=classes,
            )
        return None

    return hint


@_self_check
def check_classifier_head(head: Callable[[torch.Tensor, nn.Linear], torch.Tensor]) -> None:
    """head(features (N, C, h, w), fc) -> scores (N, K): pool5, global average pooling, fc.

    Values and gradients (to fc and to the features) are compared with the reference.
    """
    __tracebackhide__ = True
    exercise = _Exercise(tr("classifier head"))
    features_name = tr("the features")  # how the messages name the features' gradient
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    fc = nn.Linear(12, 5)
    for shape in _HEAD_SHAPES:
        case = tr("for features of shape {shape}", shape=shape)
        features = torch.randn(*shape, generator=generator)
        reference_fc, reference_in = copy.deepcopy(fc), features.clone().requires_grad_()
        expected = _head_reference(reference_in, reference_fc)
        upstream = torch.randn(expected.shape, generator=generator)
        expected_grads = dict(
            zip(
                ("fc.weight", "fc.bias", features_name),
                torch.autograd.grad(expected, [reference_fc.weight, reference_fc.bias, reference_in], upstream),
            )
        )

        my_fc, my_in = copy.deepcopy(fc), features.clone().requires_grad_()
        got = exercise.run(case, head, my_in, my_fc, explain=_head_error_hint(features, fc))
        got = exercise.expect_tensor(
            case, got, expected.shape, shape_hint=_head_shape_hint(shape[0], shape[1], fc.out_features)
        )
        if not torch.allclose(got.detach().double(), expected.detach().double(), rtol=1e-4, atol=1e-5):
            hint = _first_match(got.detach(), _head_mistakes(features, fc, expected.detach()))
            raise exercise.error(
                tr(
                    "{case}, scores differ from pool5 -> GAP -> fc by up to {difference:.3g}",
                    case=case,
                    difference=(got.detach() - expected.detach()).abs().max().item(),
                )
                + (f" ({hint})" if hint else "")
            )
        exercise.expect_gradients(
            case,
            got,
            upstream,
            {"fc.weight": my_fc.weight, "fc.bias": my_fc.bias, features_name: my_in},
            expected_grads,
            tr("the backbone and fc could not learn"),
        )
    exercise.passed(
        tr("pool5 -> global average pooling -> fc, right for {count} feature-map sizes.", count=len(_HEAD_SHAPES))
    )
