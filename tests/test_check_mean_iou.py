"""check_mean_iou accepts every correct confusion / iou_per_class and names each typical mistake."""

from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

from course_utils.checks._common import NOT_WRITTEN
from course_utils.checks.mean_iou import _cases, check_mean_iou
from course_utils.metrics import confusion_matrix, iou_from_confusion
from tests.test_checks import assert_passes, assert_rejected

SUCCESS = "confusion and iou_per_class: right matrices and IoUs for 3 pairs of masks (K = 4 and 6)"


# ----------------------------------------------------------------------------- the cases, against torchmetrics


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case[0][:40])
def test_the_cases_matrices_agree_with_torchmetrics(case):
    _, predicted, target, classes = case
    oracle = MulticlassConfusionMatrix(num_classes=classes, ignore_index=255)
    assert torch.equal(confusion_matrix(predicted, target, classes), oracle(predicted, target))
    jaccard = MulticlassJaccardIndex(num_classes=classes, ignore_index=255, average="none")(predicted, target)
    ours = iou_from_confusion(confusion_matrix(predicted, target, classes))
    present = ~ours.isnan()  # torchmetrics scores a class in neither mask 0, the course NaN
    assert torch.allclose(ours[present], jaccard[present])


def test_the_cases_cover_what_the_check_promises():
    cases = _cases()
    assert {classes for *_, classes in cases} == {4, 6}  # not the notebook's 8
    assert {target.ndim for _, _, target, _ in cases} == {2, 3}  # a single (H, W) mask and a batch
    for _, predicted, target, classes in cases:
        cm = confusion_matrix(predicted, target, classes)
        assert not torch.equal(cm, cm.T)  # a transposed matrix differs
        ignored = predicted[target == 255]
        assert (ignored != 0).all() and len(ignored.unique()) == min(len(ignored), 3)  # nonzero, varied
    assert sum(int((target == 255).sum()) for _, _, target, _ in cases) == 8
    cm = confusion_matrix(*cases[2][1:3], 6)
    truth, prediction = cm.sum(1), cm.sum(0)
    assert truth[3] == prediction[3] == 0  # in neither
    assert truth[4] == 0 < prediction[4] and prediction[5] == 0 < truth[5]  # only predicted, only true


# ----------------------------------------------------------------------------- correct answers


def scored(predicted, target):
    keep = target != 255
    return predicted[keep].long(), target[keep].long()


def confusion_bincount(predicted, target, num_classes):
    p, t = scored(predicted, target)
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_loop(predicted, target, num_classes):
    keep = target != 255
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int32)
    for t in range(num_classes):
        for p in range(num_classes):
            cm[t, p] = ((target == t) & (predicted == p) & keep).sum()
    return cm


def confusion_one_hot(predicted, target, num_classes):
    p, t = scored(predicted, target)
    return F.one_hot(t, num_classes).T.float() @ F.one_hot(p, num_classes).float()


def confusion_index_put(predicted, target, num_classes):
    p, t = scored(predicted, target)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    return cm.index_put_((t, p), torch.ones_like(t), accumulate=True)


def confusion_histc(predicted, target, num_classes):
    pairs = (target * num_classes + predicted).flatten().float()  # 255 * K + p lies above max: not counted
    return torch.histc(pairs, bins=num_classes**2, min=0, max=num_classes**2 - 1).reshape(num_classes, num_classes)


def confusion_pixel_loop(predicted, target, num_classes):
    cm = torch.zeros(num_classes, num_classes, dtype=torch.uint8)
    for t, p in zip(target.flatten().tolist(), predicted.flatten().tolist()):
        if t != 255:
            cm[t, p] += 1
    return cm


def confusion_scatter(predicted, target, num_classes):
    p, t = scored(predicted, target)
    counts = torch.zeros(num_classes**2, dtype=torch.long).scatter_add_(0, t * num_classes + p, torch.ones_like(t))
    return counts.view(num_classes, num_classes)


def iou_formula(cm):
    intersection = cm.diag()
    return intersection / (cm.sum(0) + cm.sum(1) - intersection)


def iou_class_loop(cm):
    ious = []
    for k in range(cm.shape[0]):
        union = (cm[k, :].sum() + cm[:, k].sum() - cm[k, k]).item()
        ious.append(float("nan") if union == 0 else cm[k, k].item() / union)
    return torch.tensor(ious)


def iou_where(cm):
    cm = cm.double()
    tp, fp, fn = cm.diag(), cm.sum(0) - cm.diag(), cm.sum(1) - cm.diag()
    union = tp + fp + fn
    return torch.where(union > 0, tp / union.clamp(min=1), torch.nan)


def iou_numpy(cm):
    cm = cm.numpy()
    with np.errstate(invalid="ignore"):
        return torch.from_numpy(np.diag(cm) / (cm.sum(axis=0) + cm.sum(axis=1) - np.diag(cm)))


def iou_float_first(cm):
    cm = cm.float()
    return torch.diagonal(cm) / (cm.sum(dim=1) + cm.sum(dim=0) - torch.diagonal(cm))


CONFUSIONS = [
    confusion_bincount,
    confusion_loop,
    confusion_one_hot,
    confusion_index_put,
    confusion_histc,
    confusion_pixel_loop,
    confusion_scatter,
]
IOUS = [iou_formula, iou_class_loop, iou_where, iou_numpy, iou_float_first]

# The check with one of the two functions fixed: a partial adds no frame of its own, which assert_rejected
# would find without __tracebackhide__.
CHECK_CONFUSION = partial(check_mean_iou, iou_per_class=iou_formula)
CHECK_IOU = partial(check_mean_iou, confusion_bincount)


@pytest.mark.parametrize("confusion", CONFUSIONS, ids=lambda f: f.__name__)
def test_every_correct_confusion_passes(confusion, capsys):
    assert_passes(partial(check_mean_iou, confusion), iou_formula, capsys, SUCCESS)


@pytest.mark.parametrize("iou", IOUS, ids=lambda f: f.__name__)
def test_every_correct_iou_per_class_passes(iou, capsys):
    assert_passes(CHECK_IOU, iou, capsys, SUCCESS)


def test_the_success_line(capsys):
    check_mean_iou(confusion_bincount, iou_formula)
    assert capsys.readouterr().out == (
        "✓ confusion and iou_per_class: right matrices and IoUs for 3 pairs of masks (K = 4 and 6), "
        "pixels marked 255 left out, NaN for absent classes.\n"
    )


def test_the_check_leaves_the_random_generator_as_it_was(capsys):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check_mean_iou(confusion_bincount, iou_formula)
    assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------- wrong confusion


def not_written(*args):
    raise NotImplementedError("your code here")


def returns_none(*args):
    pass


def confusion_transposed(predicted, target, num_classes):
    return confusion_bincount(predicted, target, num_classes).T


def confusion_ignored_as_background(predicted, target, num_classes):
    target = target.clone()
    target[target == 255] = 0
    return confusion_bincount(predicted, target, num_classes)


def confusion_ignored_in_place(predicted, target, num_classes):
    target[target == 255] = 0
    return confusion_bincount(predicted, target, num_classes)


def confusion_ignored_clamped(predicted, target, num_classes):
    return confusion_bincount(predicted, target.clamp(max=num_classes - 1), num_classes)


def confusion_ignored_as_correct(predicted, target, num_classes):
    return confusion_bincount(predicted, torch.where(target == 255, predicted, target), num_classes)


def confusion_unmasked_bincount(predicted, target, num_classes):
    index = (target * num_classes + predicted).flatten()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_unmasked_loop(predicted, target, num_classes):
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for t, p in zip(target.flatten(), predicted.flatten()):
        cm[t, p] += 1
    return cm


def confusion_unmasked_one_hot(predicted, target, num_classes):
    return F.one_hot(target.flatten(), num_classes).T @ F.one_hot(predicted.flatten(), num_classes)


def confusion_unmasked_index_put(predicted, target, num_classes):
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    return cm.index_put_((target.flatten(), predicted.flatten()), torch.ones(target.numel(), dtype=torch.long), True)


def confusion_eight_classes(predicted, target, num_classes):
    return confusion_bincount(predicted, target, 8)


def confusion_four_classes_loop(predicted, target, num_classes):
    return confusion_loop(predicted, target, 4)


def confusion_four_classes_bincount(predicted, target, num_classes):
    p, t = scored(predicted, target)
    return torch.bincount(t * 4 + p, minlength=16).reshape(4, 4)


def confusion_classes_from_labels(predicted, target, num_classes):
    p, t = scored(predicted, target)
    return confusion_bincount(p, t, int(max(p.max(), t.max())) + 1)


def confusion_256_classes(predicted, target, num_classes):
    classes = max(num_classes, int(target.max()) + 1)  # "a row for every label"
    index = (target * classes + predicted).flatten()
    return torch.bincount(index, minlength=classes**2).reshape(classes, classes)


def confusion_flat(predicted, target, num_classes):
    return confusion_bincount(predicted, target, num_classes).flatten()


FIRST = r"^confusion: for a batch of 2 masks of 3x4 pixels, K=4 classes \(class 3 in neither\)"
SECOND = r"^confusion: for a batch of 2 masks of 3x5 pixels, K=4, with 5 pixels marked 255"
THIRD = r"^confusion: for one 5x6 mask \(H, W\), K=6"
LEAVE_OUT = r"pixels marked 255 must be left out before counting"


@pytest.mark.parametrize(
    "wrong, message",
    [
        (not_written, r"^confusion: " + NOT_WRITTEN.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.") + "$"),
        (returns_none, FIRST + r", your function returned None: did you forget `return`\?"),
        (
            confusion_transposed,
            FIRST + r", expected \[\[7, 2, 0, 0\], .*got \[\[7, 0, 1, 0\], .* \(the matrix is transposed: rows are the "
            r"true class, columns the prediction",
        ),
        (
            confusion_ignored_as_background,
            SECOND + r", expected \[\[5, 0, 0, 1\], .*got \[\[5, 2, 2, 2\], .*\(the pixels marked 255 were counted as "
            r"background \(class 0\): " + LEAVE_OUT + r", whatever their prediction\)",
        ),
        (confusion_ignored_in_place, SECOND + r".*were counted as background \(class 0\)"),
        (confusion_ignored_clamped, SECOND + r".*the pixels marked 255 were counted as class 3: " + LEAVE_OUT),
        (confusion_ignored_as_correct, SECOND + r".*\(the pixels marked 255 were counted: " + LEAVE_OUT),
        (
            confusion_unmasked_bincount,
            SECOND + r", your code raised RuntimeError: shape '\[4, 4\]' is invalid .* \(" + LEAVE_OUT + r"\)$",
        ),
        (confusion_unmasked_loop, SECOND + r", your code raised IndexError: .*\(" + LEAVE_OUT + r"\)$"),
        (confusion_unmasked_one_hot, SECOND + r", your code raised RuntimeError: Class values .*\(" + LEAVE_OUT),
        (confusion_unmasked_index_put, SECOND + r", your code raised IndexError: .*\(" + LEAVE_OUT),
        (
            confusion_eight_classes,
            FIRST + r", expected a torch.Tensor of shape \(4, 4\), got shape \(8, 8\): num_classes is 4 here: use the "
            r"argument, not a fixed number of classes$",
        ),
        (confusion_four_classes_loop, THIRD + r".*got shape \(4, 4\): num_classes is 6 here: use the argument"),
        (
            confusion_four_classes_bincount,
            THIRD + r".*raised RuntimeError: shape '\[4, 4\]' is invalid .*\(there are K\*K = 36 .* "
            r"minlength=num_classes\*\*2\), using the argument num_classes\)$",
        ),
        (
            confusion_classes_from_labels,
            FIRST + r".*got shape \(3, 3\): one row per class seen in the masks, but a class may be absent: use "
            r"num_classes = 4",
        ),
        (confusion_256_classes, SECOND + r".*got shape \(256, 256\): the label 255 got a row: " + LEAVE_OUT),
        (confusion_flat, FIRST + r".*got shape \(16,\): a flat vector of counts: reshape the K\*K = 16 counts"),
        (
            lambda p, t, k: confusion_bincount(p, t, k).tolist(),
            FIRST + r", expected a torch.Tensor of shape \(4, 4\), got a list of 4 items",
        ),
        (lambda p, t, k: confusion_bincount(p, t, k) / 2, FIRST + r", expected whole counts of pixels"),
    ],
)
def test_each_confusion_mistake_gets_its_own_message(wrong, message):
    assert_rejected(CHECK_CONFUSION, wrong, message)


def test_a_confusion_that_changes_the_masks_is_rejected():
    def drops_ignored_in_place(predicted, target, num_classes):
        cm = confusion_bincount(predicted, target, num_classes)
        predicted[target == 255] = 0
        return cm

    assert_rejected(
        CHECK_CONFUSION,
        drops_ignored_in_place,
        SECOND + r", your function changed the masks it was given",
    )


# ----------------------------------------------------------------------------- wrong iou_per_class


def iou_parts(cm):
    cm = cm.float()
    return cm.diag(), cm.sum(1), cm.sum(0)


def iou_epsilon(cm):
    tp, truth, prediction = iou_parts(cm)
    return tp / (truth + prediction - tp + 1e-6)


def iou_clamped(cm):
    tp, truth, prediction = iou_parts(cm)
    return tp / (truth + prediction - tp).clamp(min=1)


def iou_nan_to_zero(cm):
    return iou_formula(cm).nan_to_num(0.0)


def iou_smoothed(cm):
    tp, truth, prediction = iou_parts(cm)
    return (tp + 1e-6) / (truth + prediction - tp + 1e-6)


def iou_absent_one(cm):
    tp, truth, prediction = iou_parts(cm)
    union = truth + prediction - tp
    return torch.where(union == 0, 1.0, tp / union)


def iou_precision(cm):
    tp, _, prediction = iou_parts(cm)
    return tp / prediction


def iou_recall(cm):
    tp, truth, _ = iou_parts(cm)
    return tp / truth


def iou_no_subtraction(cm):
    tp, truth, prediction = iou_parts(cm)
    return tp / (truth + prediction)


def iou_dice(cm):
    tp, truth, prediction = iou_parts(cm)
    return 2 * tp / (truth + prediction)


def iou_row_as_intersection(cm):
    _, truth, prediction = iou_parts(cm)
    return truth / (truth + prediction - truth)


def iou_rows_twice(cm):
    tp, truth, _ = iou_parts(cm)
    return tp / (truth + truth - tp)


def iou_python_loop(cm):
    ious = []
    for k in range(len(cm)):
        ious.append(cm[k, k].item() / (cm[k].sum().item() + cm[:, k].sum().item() - cm[k, k].item()))
    return torch.tensor(ious)


def iou_first_case_first(cm):  # right for the 1st matrix, with no check of the rest
    return iou_formula(cm) if len(cm) == 4 else iou_formula(cm)[:4]


IOU_FIRST = r"^iou_per_class: for cm = \[\[7, 2, 0, 0\], \[0, 5, 1, 0\], \[1, 1, 7, 0\], \[0, 0, 0, 0\]\]"
IOU_SECOND = r"^iou_per_class: for cm = \[\[5, 0, 0, 1\]"
IOU_THIRD = r"^iou_per_class: for cm = \[\[7, 0, 0, 0, 2, 0\]"
IOU = r": IoU_k = cm\[k, k\] / \(row k sum \+ column k sum - cm\[k, k\]\)\)$"
UNDEFINED = (
    r"class 3 is in neither the truth nor the prediction: its IoU is 0/0, undefined: return NaN \(plain float "
    r"division gives it\), so that ious.nanmean\(\) leaves it out of the mean"
)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (not_written, r"^iou_per_class: " + NOT_WRITTEN.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")),
        (returns_none, IOU_FIRST + r", your function returned None: did you forget `return`\?"),
        (
            iou_epsilon,
            IOU_FIRST
            + r", expected \[0.7, 0.556, 0.7, nan\], got \[0.7, 0.556, 0.7, 0.0\] \("
            + UNDEFINED
            + r"; counting it as 0 \(an epsilon, clamp\(min=1\)\) drags the mean IoU down\)$",
        ),
        (iou_clamped, IOU_FIRST + r".*" + UNDEFINED + "; counting it as 0"),
        (iou_nan_to_zero, IOU_FIRST + r".*" + UNDEFINED + "; counting it as 0"),
        (iou_smoothed, IOU_FIRST + r".*got \[0.7, 0.556, 0.7, 1.0\] \(" + UNDEFINED + r"; counting it as 1 lifts"),
        (iou_absent_one, IOU_FIRST + r".*" + UNDEFINED + r"; counting it as 1 lifts the mean IoU\)$"),
        (
            iou_precision,
            IOU_FIRST + r", expected .*, got \[0.875, 0.625, 0.875, nan\] \(that is the precision, cm\[k, "
            r"k\] / column sum" + IOU,
        ),
        (iou_recall, IOU_FIRST + r".*\(that is the recall, cm\[k, k\] / row sum" + IOU),
        (iou_no_subtraction, IOU_FIRST + r".*\(the union counts the intersection twice: subtract it once, " + IOU[2:]),
        (iou_dice, IOU_FIRST + r".*\(that is the Dice score, 2 cm\[k, k\] / \(row \+ column\)" + IOU),
        (iou_row_as_intersection, IOU_FIRST + r".*\(the intersection is the diagonal cm\[k, k\], true k and predicted"),
        (iou_rows_twice, IOU_FIRST + r".*\(the union takes the row sum twice"),
        (
            lambda cm: iou_formula(cm).nanmean(),
            IOU_FIRST + r", expected the 4 per-class IoUs, shape \(4,\), got one number, 0.6519 \(the mean IoU is "
            r"0.6519\): return the per-class tensor",
        ),
        (lambda cm: iou_formula(cm).nanmean().item(), IOU_FIRST + r".*got one number, 0.6519"),
        (lambda cm: iou_formula(cm).nanmean()[None], IOU_FIRST + r".*got one number, 0.6519"),
        (lambda cm: iou_formula(cm).mean(), IOU_FIRST + r".*got one number, nan"),
        (
            iou_python_loop,
            IOU_FIRST + r", your code raised ZeroDivisionError: .* \(a class in neither the truth nor the prediction "
            r"has an empty union: its IoU is 0/0, undefined: give it NaN",
        ),
        (
            lambda cm: cm.diag() // (cm.sum(0) + cm.sum(1) - cm.diag()),
            IOU_FIRST + r", your code raised RuntimeError: ZeroDivisionError \(a class in neither",
        ),
        (
            lambda cm: (iou_formula(cm) * 100).nan_to_num(-1).long(),
            IOU_FIRST + r", expected floats, got dtype torch.int64",
        ),
        (
            lambda cm: cm.diag() / (cm.sum(0, keepdim=True) + cm.sum(1, keepdim=True) - cm.diag()),
            IOU_FIRST + r", expected a torch.Tensor of shape \(4,\), got shape \(4, 4\): one IoU per class: the "
            r"diagonal cm.diag\(\)",
        ),
        (iou_first_case_first, IOU_THIRD + r".*got shape \(4,\): one IoU per row of cm, cm.shape\[0\] = 6 classes"),
        (lambda cm: iou_formula(cm).tolist(), IOU_FIRST + r", expected a torch.Tensor of shape \(4,\), got a list"),
    ],
)
def test_each_iou_mistake_gets_its_own_message(wrong, message):
    assert_rejected(CHECK_IOU, wrong, message)


def test_an_iou_per_class_that_changes_the_matrix_is_rejected():
    def fills_the_diagonal(cm):
        ious = iou_formula(cm)
        cm.fill_diagonal_(0)
        return ious

    assert_rejected(
        CHECK_IOU,
        fills_the_diagonal,
        IOU_FIRST + r", your function changed the matrix it was given",
    )


def test_iou_per_class_is_judged_on_the_reference_matrices():
    """A wrong confusion is reported first; a right one lets iou_per_class be judged, with its own name."""
    assert_rejected(partial(check_mean_iou, confusion_transposed), iou_recall, r"^confusion: ")
    assert_rejected(partial(check_mean_iou, confusion_histc), iou_recall, r"^iou_per_class: ")
