"""Tests for course_utils.metrics (confusion matrix, pixel accuracy, IoU)."""

import math

import pytest
import torch

from course_utils.metrics import (
    confusion_matrix,
    iou_from_confusion,
    iou_per_class,
    mean_iou,
    mean_iou_from_confusion,
    pixel_accuracy,
    pixel_accuracy_from_confusion,
)

# ---------------------------------------------------------------------------
# A 2x3 example computed by hand
# ---------------------------------------------------------------------------
#
#   target = [[0, 0, 1],      pred = [[0, 1, 1],
#             [1, 2, 2]]              [1, 2, 0]]
#
# Pixel by pixel (target -> pred): 0->0, 0->1, 1->1, 1->1, 2->2, 2->0
#
# Confusion matrix (rows = target, columns = pred):
#              pred 0  pred 1  pred 2
#   target 0 [   1,      1,      0  ]
#   target 1 [   0,      2,      0  ]
#   target 2 [   1,      0,      1  ]
#
# Pixel accuracy = diagonal / total = (1 + 2 + 1) / 6 = 2/3
#
# IoU = TP / (TP + FP + FN):
#   class 0: TP=1, FP=1 (the 2->0 pixel), FN=1 (the 0->1 pixel) -> 1/3
#   class 1: TP=2, FP=1 (the 0->1 pixel), FN=0                  -> 2/3
#   class 2: TP=1, FP=0,                  FN=1 (the 2->0 pixel) -> 1/2
# mean IoU = (1/3 + 2/3 + 1/2) / 3 = 1/2

HAND_TARGET = torch.tensor([[0, 0, 1], [1, 2, 2]])
HAND_PRED = torch.tensor([[0, 1, 1], [1, 2, 0]])
HAND_CM = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
HAND_IOU = torch.tensor([1 / 3, 2 / 3, 1 / 2])


def test_hand_confusion_matrix():
    cm = confusion_matrix(HAND_PRED, HAND_TARGET, num_classes=3)
    assert cm.dtype == torch.long
    assert cm.shape == (3, 3)
    assert torch.equal(cm, HAND_CM)


def test_confusion_matrix_is_not_transposed():
    # One pixel: true class 0 predicted as 1 -> row 0, column 1.
    cm = confusion_matrix(torch.tensor([1]), torch.tensor([0]), num_classes=2)
    assert torch.equal(cm, torch.tensor([[0, 1], [0, 0]]))


def test_hand_pixel_accuracy():
    assert pixel_accuracy(HAND_PRED, HAND_TARGET) == pytest.approx(2 / 3)


def test_hand_iou_per_class_and_mean():
    iou = iou_per_class(HAND_PRED, HAND_TARGET, num_classes=3)
    assert iou.shape == (3,)
    assert iou.is_floating_point()
    assert torch.allclose(iou, HAND_IOU)
    assert mean_iou(HAND_PRED, HAND_TARGET, num_classes=3) == pytest.approx(0.5)


def test_perfect_prediction():
    assert pixel_accuracy(HAND_TARGET, HAND_TARGET) == 1.0
    assert torch.equal(iou_per_class(HAND_TARGET, HAND_TARGET, 3), torch.ones(3))
    assert mean_iou(HAND_TARGET, HAND_TARGET, 3) == 1.0


@pytest.mark.parametrize("shape", [(6,), (2, 3), (1, 2, 3), (3, 1, 2)], ids=["N", "HW", "NHW", "NHW-b3"])
def test_any_shape_gives_same_counts(shape):
    # The metric only looks at pixels, not at their layout.
    pred, target = HAND_PRED.reshape(shape), HAND_TARGET.reshape(shape)
    assert torch.equal(confusion_matrix(pred, target, 3), HAND_CM)
    assert pixel_accuracy(pred, target) == pytest.approx(2 / 3)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64])
def test_integer_dtypes_accepted(dtype):
    cm = confusion_matrix(HAND_PRED.to(dtype), HAND_TARGET.to(dtype), 3)
    assert torch.equal(cm, HAND_CM)


@pytest.mark.parametrize("dtype, num_classes", [(torch.uint8, 20), (torch.int8, 20), (torch.int16, 200)])
def test_small_integer_dtypes_do_not_overflow_the_pair_index(dtype, num_classes):
    """t * C + p reaches C * C - 1 (399 for 20 classes): more than uint8 or int8 can hold."""
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, num_classes, (2, 40, 40), generator=g)
    pred = torch.where(
        torch.rand(target.shape, generator=g) < 0.5, target, torch.randint(0, num_classes, target.shape, generator=g)
    )
    target[0, 0, :4] = num_classes - 1  # the largest index, (C - 1) * C + C - 1, is used
    pred[0, 0, :4] = num_classes - 1
    expected = confusion_matrix(pred, target, num_classes)
    got = confusion_matrix(pred.to(dtype), target.to(dtype), num_classes)
    assert got.dtype == torch.long and torch.equal(got, expected)
    assert got[num_classes - 1, num_classes - 1] >= 4 and got.sum() == target.numel()
    assert mean_iou(pred.to(dtype), target.to(dtype), num_classes) == mean_iou(pred, target, num_classes)


def test_uint8_masks_with_ignored_pixels():
    target = torch.tensor([[19, 255, 0], [18, 19, 255]], dtype=torch.uint8)
    pred = torch.tensor([[19, 3, 0], [19, 18, 7]], dtype=torch.uint8)
    cm = confusion_matrix(pred, target, 20)
    assert cm.sum() == 4
    assert cm[19, 19] == 1 and cm[0, 0] == 1 and cm[18, 19] == 1 and cm[19, 18] == 1


# ---------------------------------------------------------------------------
# Scores from a confusion matrix
# ---------------------------------------------------------------------------


def test_scores_from_the_hand_confusion_matrix():
    assert pixel_accuracy_from_confusion(HAND_CM) == pytest.approx(2 / 3)
    assert mean_iou_from_confusion(HAND_CM) == pytest.approx(0.5)
    assert isinstance(pixel_accuracy_from_confusion(HAND_CM), float)
    assert math.isnan(pixel_accuracy_from_confusion(torch.zeros(3, 3, dtype=torch.long)))
    assert math.isnan(mean_iou_from_confusion(torch.zeros(3, 3, dtype=torch.long)))


@pytest.mark.parametrize("seed", range(4))
def test_scores_from_confusion_agree_with_scores_from_labels(seed):
    pred, target = _random_batch(seed, (3, 9, 11), 6, 5)
    cm = confusion_matrix(pred, target, 6)
    assert pixel_accuracy_from_confusion(cm) == pytest.approx(pixel_accuracy(pred, target), abs=1e-6)
    assert mean_iou_from_confusion(cm) == mean_iou(pred, target, 6)


@pytest.mark.parametrize("function", [pixel_accuracy_from_confusion, mean_iou_from_confusion])
def test_scores_from_confusion_reject_a_non_square_matrix(function):
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        function(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="square.*list"):
        function([[1, 0], [0, 1]])


def test_default_ignore_index_is_the_datasets():
    from course_utils.data import IGNORE_INDEX

    target = torch.tensor([0, 1, IGNORE_INDEX])
    pred = torch.tensor([0, 1, 0])
    assert confusion_matrix(pred, target, 2).sum() == 2
    assert pixel_accuracy(pred, target) == 1.0


# ---------------------------------------------------------------------------
# ignore_index
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("ignored_pred", [0, 1, 2, 255, 99])
def test_ignored_pixel_changes_nothing(ignored_pred):
    # Add a third row whose single scored-looking pixel has target 255.
    target = torch.cat([HAND_TARGET, torch.tensor([[255, 255, 255]])])
    pred = torch.cat([HAND_PRED, torch.full((1, 3), ignored_pred)])
    assert torch.equal(confusion_matrix(pred, target, 3), HAND_CM)
    assert pixel_accuracy(pred, target) == pytest.approx(2 / 3)
    assert torch.allclose(iou_per_class(pred, target, 3), HAND_IOU)
    assert mean_iou(pred, target, 3) == pytest.approx(0.5)


def test_custom_ignore_index():
    target = torch.tensor([0, 1, -1])
    pred = torch.tensor([0, 0, 1])
    cm = confusion_matrix(pred, target, 2, ignore_index=-1)
    assert torch.equal(cm, torch.tensor([[1, 0], [1, 0]]))
    assert pixel_accuracy(pred, target, ignore_index=-1) == pytest.approx(0.5)
    # With the default ignore_index, -1 is an invalid label.
    with pytest.raises(ValueError, match="target"):
        confusion_matrix(pred, target, 2)


# ---------------------------------------------------------------------------
# Classes absent from both prediction and target
# ---------------------------------------------------------------------------


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    # num_classes = 5, but only classes 0 and 1 occur.
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 1, 1, 1])
    # class 0: TP=1, FP=0, FN=1 -> 1/2 ; class 1: TP=2, FP=1, FN=0 -> 2/3
    iou = iou_per_class(pred, target, num_classes=5)
    assert iou[:2].tolist() == pytest.approx([1 / 2, 2 / 3])
    assert torch.isnan(iou[2:]).all()

    miou = mean_iou(pred, target, num_classes=5)
    assert miou == pytest.approx((1 / 2 + 2 / 3) / 2)  # 7/12, over 2 classes
    assert miou != pytest.approx((1 / 2 + 2 / 3) / 5)  # absent counted as 0
    assert miou != pytest.approx((1 / 2 + 2 / 3 + 3) / 5)  # absent counted as 1


def test_class_only_in_prediction_counts_as_zero():
    # Class 2 is never true but is predicted once: union 1, IoU 0 (not NaN),
    # so it IS part of the mean.
    target = torch.tensor([0, 1, 1])
    pred = torch.tensor([0, 1, 2])
    iou = iou_per_class(pred, target, num_classes=4)
    assert iou[:3].tolist() == pytest.approx([1.0, 1 / 2, 0.0])
    assert math.isnan(iou[3])
    assert mean_iou(pred, target, num_classes=4) == pytest.approx(1.5 / 3)


def test_iou_from_confusion_direct():
    cm = torch.tensor([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    iou = iou_from_confusion(cm)
    # class 0: 3 / (3 + 2 + 1) ; class 1: 4 / (4 + 1 + 2) ; class 2: 0/0
    assert iou[:2].tolist() == pytest.approx([3 / 6, 4 / 7])
    assert math.isnan(iou[2])


def test_mean_iou_with_no_scored_pixel_is_nan():
    target = torch.full((2, 2), 255)
    pred = torch.zeros(2, 2, dtype=torch.long)
    assert torch.equal(confusion_matrix(pred, target, 3), torch.zeros(3, 3, dtype=torch.long))
    assert math.isnan(mean_iou(pred, target, 3))


# ---------------------------------------------------------------------------
# torchmetrics as an oracle
# ---------------------------------------------------------------------------


def _random_batch(seed, shape, num_classes, used_classes, ignore_frac=0.1):
    """Random labels in [0, used_classes) with ~ignore_frac target pixels = 255."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, used_classes, shape, generator=g)
    pred = torch.randint(0, used_classes, shape, generator=g)
    # Make predictions better than chance so IoUs are not all alike.
    keep = torch.rand(shape, generator=g) < 0.5
    pred = torch.where(keep, target, pred)
    ignore = torch.rand(shape, generator=g) < ignore_frac
    target = target.masked_fill(ignore, 255)
    assert used_classes <= num_classes
    return pred, target


ORACLE_CASES = [
    # seed, shape, num_classes, classes actually used
    (0, (4, 16, 16), 5, 5),
    (1, (2, 8, 12), 21, 7),  # VOC-sized, most classes absent
    (2, (500,), 3, 3),
    (3, (16, 16), 6, 2),
]


@pytest.mark.parametrize("seed,shape,num_classes,used", ORACLE_CASES)
def test_matches_torchmetrics(seed, shape, num_classes, used):
    tmc = pytest.importorskip("torchmetrics.functional.classification")
    pred, target = _random_batch(seed, shape, num_classes, used)

    cm = confusion_matrix(pred, target, num_classes)
    cm_tm = tmc.multiclass_confusion_matrix(pred, target, num_classes, ignore_index=255)
    assert torch.equal(cm, cm_tm)  # same orientation too: rows = target

    acc_tm = tmc.multiclass_accuracy(pred, target, num_classes, average="micro", ignore_index=255)
    assert pixel_accuracy(pred, target) == pytest.approx(acc_tm.item(), abs=1e-6)

    # Per-class IoU: compare only classes present in pred or target.
    # torchmetrics' convention for absent classes differs: by default
    # (zero_division=0.0) it reports IoU 0 for them, where we report NaN.
    iou = iou_per_class(pred, target, num_classes)
    iou_tm = tmc.multiclass_jaccard_index(pred, target, num_classes, average=None, ignore_index=255)
    present = (cm.sum(dim=0) + cm.sum(dim=1)) > 0
    assert present.sum() == used
    assert torch.allclose(iou[present], iou_tm[present], atol=1e-6)
    assert torch.isnan(iou[~present]).all()
    assert (iou_tm[~present] == 0).all()


@pytest.mark.parametrize("seed,shape,num_classes,used", ORACLE_CASES)
def test_mean_iou_matches_torchmetrics_macro(seed, shape, num_classes, used):
    # In torchmetrics 1.9 average="macro" skips classes absent from both pred
    # and target, i.e. it is the same nanmean as the FCN scoring (even though
    # average=None reports those classes as 0).
    tmc = pytest.importorskip("torchmetrics.functional.classification")
    pred, target = _random_batch(seed, shape, num_classes, used)
    miou_tm = tmc.multiclass_jaccard_index(pred, target, num_classes, average="macro", ignore_index=255)
    assert mean_iou(pred, target, num_classes) == pytest.approx(miou_tm.item(), abs=1e-6)


# ---------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------


def test_shape_mismatch_names_both_shapes():
    pred = torch.zeros(2, 3, dtype=torch.long)
    target = torch.zeros(3, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(3, 2\)"):
        confusion_matrix(pred, target, 3)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        pixel_accuracy(pred, target)


def test_scores_instead_of_labels_says_argmax():
    scores = torch.randn(2, 3, 4, 4)  # (N, C, H, W)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"argmax\(dim=1\)"):
        confusion_matrix(scores, target, 3)
    with pytest.raises(ValueError, match=r"argmax\(dim=1\)"):
        mean_iou(scores, target, 3)
    # Right shape but float dtype: still refused.
    with pytest.raises(ValueError, match=r"argmax\(dim=1\)"):
        pixel_accuracy(scores.argmax(dim=1).float(), target)


def test_float_target_rejected():
    with pytest.raises(ValueError, match="target must hold integer"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0.0, 1.0]), 2)


@pytest.mark.parametrize("bad", [3, 7, -1])
def test_target_out_of_range(bad):
    target = torch.tensor([0, 1, bad])
    pred = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=rf"target has values \[{bad}\] outside \[0, 3\)"):
        confusion_matrix(pred, target, 3)
    with pytest.raises(ValueError, match="target has values"):
        mean_iou(pred, target, 3)


@pytest.mark.parametrize("bad", [3, -2])
def test_pred_out_of_range(bad):
    target = torch.tensor([0, 1, 2])
    pred = torch.tensor([0, bad, 2])
    with pytest.raises(ValueError, match=rf"pred has values \[{bad}\] outside \[0, 3\)"):
        confusion_matrix(pred, target, 3)
    with pytest.raises(ValueError, match="pred has values"):
        iou_per_class(pred, target, 3)


@pytest.mark.parametrize("num_classes", [0, -1, 2.0])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        confusion_matrix(torch.tensor([0]), torch.tensor([0]), num_classes)


def test_pixel_accuracy_all_ignored():
    target = torch.full((2, 3), 255)
    pred = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="no pixels to score: every target pixel is ignore_index"):
        pixel_accuracy(pred, target)


def test_iou_from_confusion_rejects_non_square():
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        iou_from_confusion(torch.zeros(2, 3))


# ---------------------------------------------------------------------------
# Dataset-level accumulation
# ---------------------------------------------------------------------------


def test_summed_confusion_equals_confusion_of_concatenation():
    p1, t1 = _random_batch(10, (3, 8, 8), 4, 4)
    p2, t2 = _random_batch(11, (5, 8, 8), 4, 4)
    cm_sum = confusion_matrix(p1, t1, 4) + confusion_matrix(p2, t2, 4)
    cm_all = confusion_matrix(torch.cat([p1, p2]), torch.cat([t1, t2]), 4)
    assert torch.equal(cm_sum, cm_all)
    assert torch.allclose(iou_from_confusion(cm_sum), iou_per_class(torch.cat([p1, p2]), torch.cat([t1, t2]), 4))


def test_dataset_miou_is_not_mean_of_per_image_miou():
    # Image A: 1 pixel of class 1, predicted wrong as 0, plus 3 correct 0s.
    # Image B: 4 pixels of class 1, all correct.
    pa, ta = torch.tensor([0, 0, 0, 0]), torch.tensor([0, 0, 0, 1])
    pb, tb = torch.tensor([1, 1, 1, 1]), torch.tensor([1, 1, 1, 1])
    # Per image: A -> IoU0 = 3/4, IoU1 = 0/1 = 0 -> mIoU 3/8 ; B -> mIoU 1
    per_image = (mean_iou(pa, ta, 2) + mean_iou(pb, tb, 2)) / 2
    assert per_image == pytest.approx((3 / 8 + 1) / 2)  # 11/16
    # Summed: cm = [[3, 0], [1, 4]] -> IoU0 = 3/4, IoU1 = 4/5 -> mIoU 31/40
    cm = confusion_matrix(pa, ta, 2) + confusion_matrix(pb, tb, 2)
    assert torch.equal(cm, torch.tensor([[3, 0], [1, 4]]))
    dataset = iou_from_confusion(cm).nanmean().item()
    assert dataset == pytest.approx(31 / 40)
    assert dataset != pytest.approx(per_image)


# ---------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------


def test_result_stays_on_input_device_cpu():
    cm = confusion_matrix(HAND_PRED, HAND_TARGET, 3)
    assert cm.device.type == "cpu"
    assert iou_from_confusion(cm).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    pred, target = _random_batch(5, (2, 32, 32), 6, 6)
    cm_cpu = confusion_matrix(pred, target, 6)
    cm_gpu = confusion_matrix(pred.cuda(), target.cuda(), 6)
    assert cm_gpu.device.type == "cuda"
    assert torch.equal(cm_gpu.cpu(), cm_cpu)
    assert pixel_accuracy(pred.cuda(), target.cuda()) == pixel_accuracy(pred, target)
    assert mean_iou(pred.cuda(), target.cuda(), 6) == pytest.approx(mean_iou(pred, target, 6))


def test_pred_and_target_on_different_devices_rejected():
    meta = torch.zeros(3, dtype=torch.long, device="meta")
    with pytest.raises(ValueError, match="same device"):
        confusion_matrix(meta, torch.zeros(3, dtype=torch.long), 3)
