"""Notebook 4: check_mean_iou, the confusion matrix of two label maps and the per-class IoU read from it."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data import IGNORE_INDEX
from ..i18n import tr
from ..metrics import confusion_matrix, iou_from_confusion
from ._common import _Exercise, _self_check


def _ignored() -> str:
    """The rule for the pixels marked IGNORE_INDEX, in the current language."""
    return tr("pixels marked {label} must be left out before counting", label=IGNORE_INDEX)


def _with_hint(message: str, hint: str | None) -> str:
    """message, followed by " (hint)" when there is a hint."""
    return tr("{text} ({hint})", text=message, hint=hint) if hint else message


def _masks(*rows_per_image: list[list[int]]) -> torch.Tensor:
    """An int64 label map: (H, W) for one image, (N, H, W) for several."""
    masks = torch.tensor(rows_per_image, dtype=torch.int64)
    return masks[0] if len(rows_per_image) == 1 else masks


def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    """(description, predicted, target, K): int64 label maps of the same shape, (N, H, W) or (H, W).

    Not the notebook's 8 classes. Every confusion is asymmetric (a transposed matrix differs);
    class 3 is in neither mask in the 1st and 3rd cases, and in the 3rd class 4 is only predicted
    and class 5 only true. The ignored pixels (255) are predicted as varied nonzero classes.
    """
    x = IGNORE_INDEX
    first_target = _masks([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]], [[1, 1, 0, 0], [2, 2, 0, 0], [2, 2, 2, 0]])
    first_predicted = _masks([[0, 1, 1, 1], [0, 0, 1, 2], [2, 2, 0, 2]], [[1, 1, 0, 0], [2, 1, 0, 0], [2, 2, 2, 1]])
    second_target = _masks(
        [[0, 0, x, 3, 3], [0, x, 3, 3, 3], [1, 1, x, 2, 2]], [[3, 3, 3, x, 0], [1, 1, 3, x, 0], [1, 1, 2, 2, 0]]
    )
    second_predicted = _masks(
        [[0, 3, 1, 3, 3], [0, 2, 3, 3, 1], [1, 0, 3, 2, 2]], [[3, 3, 2, 1, 0], [1, 3, 3, 2, 0], [1, 1, 2, 3, 0]]
    )
    third_target = _masks(
        [[0, 0, 0, 1, 1, x], [0, 0, 1, 1, 1, x], [2, 2, 1, 5, 5, 5], [2, 2, 2, 5, 5, 0], [x, 2, 2, 0, 0, 0]]
    )
    third_predicted = _masks(
        [[0, 4, 0, 1, 1, 4], [0, 0, 1, 2, 1, 2], [2, 4, 1, 0, 1, 2], [2, 2, 2, 0, 4, 0], [1, 2, 2, 0, 0, 4]]
    )
    return [
        (tr("a batch of 2 masks of 3x4 pixels, K=4 classes (class 3 in neither)"), first_predicted, first_target, 4),
        (
            tr("a batch of 2 masks of 3x5 pixels, K=4, with 5 pixels marked {label}", label=x),
            second_predicted,
            second_target,
            4,
        ),
        (
            tr(
                "one 5x6 mask (H, W), K=6, with 3 pixels marked {label} (class 3 in neither, class 4 only predicted, "
                "class 5 only true)",
                label=x,
            ),
            third_predicted,
            third_target,
            6,
        ),
    ]


# =========================================================================== confusion


def _confusion_crash_hint(confusion: Callable, predicted: torch.Tensor, target: torch.Tensor, classes: int):
    """explain(error) for run: did the learner's code crash on the pixels marked 255?"""

    def explain(error: Exception) -> str | None:
        scored = target != IGNORE_INDEX
        if not scored.all():
            shape = (1,) * (target.ndim - 1) + (-1,)  # the scored pixels alone, as a mask of the same rank
            try:
                confusion(predicted[scored].reshape(shape), target[scored].reshape(shape), classes)
                return _ignored()
            except Exception:  # it crashes without them too: something else
                pass
        if "invalid for input of size" in str(error):
            return tr(
                "there are K*K = {pairs} (true, predicted) pairs: count them with "
                "torch.bincount(..., minlength=num_classes**2), using the argument num_classes",
                pairs=classes * classes,
            )
        return None

    return explain


def _confusion_shape_hint(predicted: torch.Tensor, target: torch.Tensor, classes: int):
    scored = target != IGNORE_INDEX
    seen = int(max(predicted[scored].max(), target[scored].max())) + 1

    def hint(shape: tuple) -> str | None:
        if len(shape) == 1 and shape[0] <= classes * classes:
            return tr(
                "a flat vector of counts: reshape the K*K = {pairs} counts to ({classes}, {classes})",
                pairs=classes * classes,
                classes=classes,
            )
        if len(shape) != 2 or shape[0] != shape[1]:
            return None
        if shape[0] == IGNORE_INDEX + 1:
            return tr(
                "the label {label} got a row: {rule}, and the matrix has num_classes rows",
                label=IGNORE_INDEX,
                rule=_ignored(),
            )
        if shape[0] == seen:
            return tr(
                "one row per class seen in the masks, but a class may be absent: use num_classes = {classes}, "
                "the argument",
                classes=classes,
            )
        return tr("num_classes is {classes} here: use the argument, not a fixed number of classes", classes=classes)

    return hint


def _confusion_mistake(got: torch.Tensor, expected: torch.Tensor, predicted: torch.Tensor, target: torch.Tensor):
    """A hint naming the mistake behind a wrong matrix `got` (float64, whole numbers), or None."""
    if torch.equal(got, expected.T.double()):
        return tr(
            "the matrix is transposed: rows are the true class, columns the prediction, "
            "cm[t, p] = pixels of true class t predicted as p"
        )
    ignored = target == IGNORE_INDEX
    extra = got - expected.double()
    by_prediction = torch.bincount(predicted[ignored], minlength=len(expected)).double()
    if ignored.any() and (extra >= 0).all() and torch.equal(extra.sum(0), by_prediction):
        rows = extra.sum(1).nonzero().flatten().tolist()
        if len(rows) != 1:
            return tr(
                "the pixels marked {label} were counted: {rule}, whatever their prediction",
                label=IGNORE_INDEX,
                rule=_ignored(),
            )
        if rows == [0]:
            return tr(
                "the pixels marked {label} were counted as background (class 0): {rule}, whatever their prediction",
                label=IGNORE_INDEX,
                rule=_ignored(),
            )
        return tr(
            "the pixels marked {label} were counted as class {number}: {rule}, whatever their prediction",
            label=IGNORE_INDEX,
            number=rows[0],
            rule=_ignored(),
        )
    return None


def _check_confusion_case(
    exercise: _Exercise, confusion: Callable, description: str, predicted: torch.Tensor, target: torch.Tensor, k: int
) -> None:
    """confusion(predicted, target, k) must be the (k, k) matrix of counts, rows = truth; the masks unchanged."""
    __tracebackhide__ = True
    case = tr("for {description}", description=description)
    given_predicted, given_target = predicted.clone(), target.clone()
    got = exercise.run(
        case,
        confusion,
        given_predicted,
        given_target,
        k,
        explain=_confusion_crash_hint(confusion, predicted, target, k),
    )
    got = exercise.expect_tensor(case, got, (k, k), shape_hint=_confusion_shape_hint(predicted, target, k)).detach()
    expected = confusion_matrix(predicted, target, k)
    values = got.double()
    if got.is_complex() or not torch.equal(values, values.round()):
        raise exercise.error(tr("{case}, expected whole counts of pixels, got {got}", case=case, got=got.tolist()))
    if not torch.equal(values, expected.double()):
        hint = _confusion_mistake(values, expected, predicted, target)
        message = tr(
            "{case}, expected {expected}, got {got}", case=case, expected=expected.tolist(), got=values.long().tolist()
        )
        raise exercise.error(_with_hint(message, hint))
    if not (torch.equal(given_predicted, predicted) and torch.equal(given_target, target)):
        raise exercise.error(
            tr(
                "{case}, your function changed the masks it was given: select the scored pixels "
                "(e.g. target[keep]) into new tensors instead",
                case=case,
            )
        )


# =========================================================================== iou_per_class


def _iou_crash_hint(error: Exception) -> str | None:
    if isinstance(error, ZeroDivisionError) or "ZeroDivisionError" in str(error):
        return tr(
            "a class in neither the truth nor the prediction has an empty union: its IoU is 0/0, undefined: "
            "give it NaN, which float division of tensors gives by itself"
        )
    return None


def _iou_shape_hint(classes: int):
    def hint(shape: tuple) -> str | None:
        if shape == (classes, classes):
            return tr(
                "one IoU per class: the diagonal cm.diag() and the row and column sums, cm.sum(1) and cm.sum(0), "
                "all have shape ({classes},)",
                classes=classes,
            )
        if len(shape) == 1:
            return tr("one IoU per row of cm, cm.shape[0] = {classes} classes", classes=classes)
        return None

    return hint


def _close(got: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> bool:
    """Equal up to rounding, NaN where the other is NaN."""
    return got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-4, atol=atol, equal_nan=True)


def _iou_mistake(got: torch.Tensor, cm: torch.Tensor) -> str | None:
    """A hint naming the mistake behind the wrong IoUs `got` (float64, (K,)) for cm (K, K), or None."""
    cm = cm.double()
    intersection, truth, prediction = cm.diag(), cm.sum(1), cm.sum(0)
    union = truth + prediction - intersection
    absent = union == 0
    if absent.any() and torch.allclose(got[~absent], (intersection / union)[~absent], rtol=1e-3, atol=1e-4):
        numbers = absent.nonzero().flatten().tolist()
        if len(numbers) == 1:
            undefined = tr(
                "class {number} is in neither the truth nor the prediction: its IoU is 0/0, undefined: return NaN "
                "(plain float division gives it), so that ious.nanmean() leaves it out of the mean",
                number=numbers[0],
            )
        else:
            undefined = tr(
                "classes {numbers} are in neither the truth nor the prediction: its IoU is 0/0, undefined: return "
                "NaN (plain float division gives it), so that ious.nanmean() leaves it out of the mean",
                numbers=", ".join(map(str, numbers)),
            )
        if (got[absent] == 0).all():
            return tr(
                "{undefined}; counting it as 0 (an epsilon, clamp(min=1)) drags the mean IoU down", undefined=undefined
            )
        if (got[absent] == 1).all():
            return tr("{undefined}; counting it as 1 lifts the mean IoU", undefined=undefined)
    iou = tr("IoU_k = cm[k, k] / (row k sum + column k sum - cm[k, k])")
    not_a_sum = tr(
        "the intersection is the diagonal cm[k, k], true k and predicted k, not a row or column sum: {formula}",
        formula=iou,
    )
    candidates = [
        (intersection / prediction, tr("that is the precision, cm[k, k] / column sum: {formula}", formula=iou)),
        (intersection / truth, tr("that is the recall, cm[k, k] / row sum: {formula}", formula=iou)),
        (
            intersection / (truth + prediction),
            tr("the union counts the intersection twice: subtract it once, {formula}", formula=iou),
        ),
        (
            2 * intersection / (truth + prediction),
            tr("that is the Dice score, 2 cm[k, k] / (row + column): {formula}", formula=iou),
        ),
        (truth / prediction, not_a_sum),
        (prediction / truth, not_a_sum),
        (
            intersection / (2 * truth - intersection),
            tr(
                "the union takes the row sum twice: one row sum (truth) and one column sum (prediction), {formula}",
                formula=iou,
            ),
        ),
        (
            intersection / (2 * prediction - intersection),
            tr(
                "the union takes the column sum twice: one row sum (truth) and one column sum (prediction), {formula}",
                formula=iou,
            ),
        ),
    ]
    return next((hint for wrong, hint in candidates if _close(got, wrong)), None)


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(value, 3) for value in values.tolist()]


def _check_iou_case(exercise: _Exercise, iou_per_class: Callable, cm: torch.Tensor) -> None:
    """iou_per_class(cm (K, K)) must be the (K,) float IoUs, NaN where the union is empty; cm unchanged."""
    __tracebackhide__ = True
    classes = len(cm)
    case = tr("for cm = {cm}", cm=cm.tolist())
    given = cm.clone()
    got = exercise.run(case, iou_per_class, given, explain=_iou_crash_hint)
    expected = iou_from_confusion(cm).double()
    single = isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1 and classes > 1)
    if single:
        raise exercise.error(
            tr(
                "{case}, expected the {classes} per-class IoUs, shape ({classes},), got one number, {got:.4g} "
                "(the mean IoU is {mean:.4g}): return the per-class tensor, the notebook "
                "averages it with .nanmean() and shows which classes fail",
                case=case,
                classes=classes,
                got=float(got),
                mean=expected.nanmean().item(),
            )
        )
    got = exercise.expect_tensor(case, got, (classes,), shape_hint=_iou_shape_hint(classes)).detach()
    if not got.is_floating_point():
        raise exercise.error(
            tr(
                "{case}, expected floats, got dtype {dtype} ({got}): an IoU is a fraction, divide with `/`",
                case=case,
                dtype=got.dtype,
                got=got.tolist(),
            )
        )
    if not _close(got.double(), expected):
        hint = _iou_mistake(got.double(), cm)
        message = tr(
            "{case}, expected {expected}, got {got}", case=case, expected=_rounded(expected), got=_rounded(got.double())
        )
        raise exercise.error(_with_hint(message, hint))
    if not torch.equal(given, cm):
        raise exercise.error(
            tr("{case}, your function changed the matrix it was given: compute new tensors instead", case=case)
        )


@_self_check
def check_mean_iou(
    confusion: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor],
    iou_per_class: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    """confusion(predicted, target, K) -> (K, K) counts, cm[t, p], pixels marked 255 left out;
    iou_per_class(cm (K, K)) -> (K,) IoUs, NaN for a class in neither truth nor prediction.

    predicted and target are int64 label maps of the same shape, (N, H, W) or (H, W). iou_per_class
    is given the reference matrices, so that each function is judged on its own.
    """
    __tracebackhide__ = True
    cases = _cases()
    matrices = _Exercise("confusion")
    for description, predicted, target, classes in cases:
        _check_confusion_case(matrices, confusion, description, predicted, target, classes)
    ious = _Exercise("iou_per_class")
    for _, predicted, target, classes in cases:
        _check_iou_case(ious, iou_per_class, confusion_matrix(predicted, target, classes))
    _Exercise("confusion and iou_per_class").passed(
        tr(
            "right matrices and IoUs for {count} pairs of masks (K = 4 and 6), pixels marked {label} "
            "left out, NaN for absent classes.",
            count=len(cases),
            label=IGNORE_INDEX,
        )
    )
