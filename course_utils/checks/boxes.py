"""Notebook 1: check_mask_to_box, the bounding box of a mask's object pixels."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data import IGNORE_INDEX, bounding_box
from ..i18n import tr
from ._common import _Exercise, _self_check


def _box_cases() -> list[tuple[str, torch.Tensor]]:
    cases = []
    mask = torch.zeros(40, 60, dtype=torch.long)
    mask[5:12, 20:50] = 3
    cases.append((tr("a wide rectangle (rows 5-11, columns 20-49) in a 40x60 mask"), mask))
    mask = torch.zeros(64, 64, dtype=torch.long)
    mask[30, 7] = 1
    cases.append((tr("a single pixel at row 30, column 7"), mask))
    mask = torch.zeros(32, 48, dtype=torch.long)
    mask[:, 40:] = 2
    cases.append((tr("an object touching the top, bottom and right edges"), mask))
    mask = torch.zeros(50, 50, dtype=torch.long)
    mask[10:20, 10:20] = 4
    mask[8:22, 8:22][mask[8:22, 8:22] == 0] = IGNORE_INDEX  # an ignore band around the object
    cases.append((tr("an object with a band of ignored (255) pixels around it"), mask))
    mask = torch.zeros(30, 30, dtype=torch.long)
    mask[3, 25] = mask[27, 2] = 6
    cases.append((tr("two separate pixels of the same object (row 3, column 25 and row 27, column 2)"), mask))
    return cases


def _box_of(pixels: torch.Tensor) -> list[int]:
    rows, cols = torch.where(pixels)
    return [cols.min().item(), rows.min().item(), cols.max().item(), rows.max().item()]


def _box_mistakes(mask: torch.Tensor, expected: list[int]) -> list[tuple[list[int], str]]:
    """(box, hint) for each typical wrong answer on this mask."""
    x0, y0, x1, y1 = expected
    objects = (mask != 0) & (mask != IGNORE_INDEX)
    (first_y, first_x), (last_y, last_x) = objects.nonzero()[[0, -1]].tolist()
    size = tr("that is (x, y, width, height): the box is given by its corners [x_min, y_min, x_max, y_max]")
    return [
        ([y0, x0, y1, x1], tr("x and y are swapped: x is the column index, y the row index")),
        (
            [x0, y0, x1 + 1, y1 + 1],
            tr(
                "x_max and y_max are one too large: the box is inclusive (the last object "
                "pixel), like torchvision's masks_to_boxes"
            ),
        ),
        (
            [x0, x1, y0, y1],
            tr("the order is [x_min, x_max, y_min, y_max]: the box is [x_min, y_min, x_max, y_max]"),
        ),
        ([x0, y0, x1 - x0 + 1, y1 - y0 + 1], size),
        ([x0, y0, x1 - x0, y1 - y0], size),
        (
            [first_x, first_y, last_x, last_y],
            tr(
                "x_min > x_max: that is the first and the last object pixel (in "
                "reading order), not the smallest and largest column and row: use "
                "min() and max()"
            ),
        ),
        (
            _box_of(mask != 0),
            tr(
                "pixels marked 255 are 'ignore', not part of the object: leave them out, e.g. "
                "(mask != 0) & (mask != 255)"
            ),
        ),
    ]


def _box_shape_hint(shape: tuple) -> str | None:
    if shape in ((1, 4), (4, 1)):
        return tr("one box of 4 numbers, shape (4,): drop the extra dimension (e.g. .flatten())")
    return tr("one box of 4 numbers [x_min, y_min, x_max, y_max]")


@_self_check
def check_mask_to_box(mask_to_box: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """mask_to_box(mask (H, W)) -> [x_min, y_min, x_max, y_max] of the object pixels, inclusive."""
    __tracebackhide__ = True
    exercise = _Exercise("mask_to_box")
    cases = _box_cases()
    for description, mask in cases:
        case = tr("for {description}", description=description)
        given = mask.clone()
        got = exercise.run(case, mask_to_box, given)
        got = exercise.expect_tensor(
            case,
            got,
            (4,),
            shape_hint=_box_shape_hint,
            why=tr(": the next cell passes the box to draw_box, which needs a tensor of 4 numbers"),
        )
        if not torch.equal(given, mask):
            raise exercise.error(
                tr(
                    "{case}, your function changed the mask it was given (the notebook uses that "
                    "mask again): leave it as it is, e.g. build objects = (mask != 0) & (mask != 255)",
                    case=case,
                )
            )
        expected = bounding_box(mask).long().tolist()
        if not torch.equal(got.double(), torch.tensor(expected, dtype=torch.double)):
            shown = [int(v) if float(v).is_integer() else round(v, 3) for v in got.double().tolist()]
            hint = next((hint for box, hint in _box_mistakes(mask, expected) if box == shown), None)
            raise exercise.error(
                tr("{case}, expected {expected}, got {got}", case=case, expected=expected, got=shown)
                + (f" ({hint})" if hint else "")
            )
    exercise.passed(tr("all {count} test masks give the right box.", count=len(cases)))
