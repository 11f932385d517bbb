"""Notebook 6: check_trimap_to_mask, a pet's trimap in the course's mask convention."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..i18n import tr
from ..pets import trimap_to_mask
from ._common import _Exercise, _self_check


def _trimap_cases() -> list[tuple[str, torch.Tensor, int]]:
    """(description, trimap (H, W) uint8 with values 1 pet, 2 background, 3 border, label)."""
    small = torch.tensor([[2, 2, 2, 2], [2, 3, 3, 2], [2, 3, 1, 2], [2, 2, 2, 2]], dtype=torch.uint8)
    wide = torch.full((5, 9), 2, dtype=torch.uint8)
    wide[1:4, 2:7] = 3
    wide[2, 3:6] = 1
    return [
        (tr("a 4x4 trimap of a cat (label 0)"), small, 0),
        (tr("the same trimap for a dog (label 1)"), small, 1),
        (tr("a 5x9 trimap of a dog (label 1)"), wide, 1),
        (tr("a trimap with no border pixels, of a cat"), torch.tensor([[1, 2], [2, 1]], dtype=torch.uint8), 0),
    ]


def _mistakes(trimap: torch.Tensor, label: int) -> list[tuple[torch.Tensor, str]]:
    """(wrong mask, hint) for each typical mistake."""
    pet, border = trimap == 1, trimap == 3
    right = trimap_to_mask(trimap, label)
    no_shift = right.clone()
    no_shift[pet] = label
    border_bg = right.clone()
    border_bg[border] = 0
    border_pet = right.clone()
    border_pet[border] = label + 1
    return [
        (no_shift, tr("the pet got its label, but mask value k + 1 is class k: 0 is the background")),
        (border_bg, tr("the border (3) became background: it is 255, 'ignore', as VOC marks uncertain pixels")),
        (border_pet, tr("the border (3) became pet: it is 255, 'ignore', as VOC marks uncertain pixels")),
        (
            trimap.long(),
            tr("that is the trimap itself: 1 pet, 2 background, 3 border must become label + 1, 0 and 255"),
        ),
    ]


@_self_check
def check_trimap_to_mask(function: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """function(trimap (H, W), label) -> mask (H, W): label + 1 pet, 0 background, 255 border."""
    __tracebackhide__ = True
    exercise = _Exercise("trimap_to_mask")
    cases = _trimap_cases()
    for description, trimap, label in cases:
        case = tr("for {description}", description=description)
        given = trimap.clone()
        got = exercise.run(case, function, given, label)
        got = exercise.expect_tensor(case, got, trimap.shape)
        if not torch.equal(given, trimap):
            raise exercise.error(
                tr("{case}, your function changed the trimap it was given: build a new tensor", case=case)
            )
        expected = trimap_to_mask(trimap, label)
        if not torch.equal(got.long(), expected):
            hint = next((hint for wrong, hint in _mistakes(trimap, label) if torch.equal(got.long(), wrong)), None)
            raise exercise.error(
                tr(
                    "{case}, expected {expected}, got {got}",
                    case=case,
                    expected=expected.tolist(),
                    got=got.long().tolist(),
                )
                + (f" ({hint})" if hint else "")
            )
        if got.dtype != torch.int64:
            raise exercise.error(
                tr(
                    "{case}, the values are right but the dtype is {dtype}: masks are int64 (.long())",
                    case=case,
                    dtype=got.dtype,
                )
            )
    exercise.passed(tr("all {count} trimaps give the right mask.", count=len(cases)))
