"""From score maps to masks (threshold for the background), the score table, the threshold choice."""

import math

import pytest
import torch

from course_utils.data import IGNORE_INDEX
from course_utils.metrics import confusion_matrix, iou_from_confusion, mean_iou, pixel_accuracy
from course_utils.segment import choose_threshold, format_report, scores_to_mask, segmentation_report

NAMES = ["a", "b", "c"]


# ----------------------------------------------------------------------------- scores_to_mask


def hand_made_scores():
    """(1, 3, 2, 2) scores; values are exact in binary so comparisons with the threshold are exact."""
    per_pixel = {
        (0, 0): [0.875, 0.125, 0.25],  # best: class 0 (0.875)
        (0, 1): [0.125, 0.25, 0.75],  # best: class 2 (0.75)
        (1, 0): [0.25, 0.375, 0.125],  # best: class 1, but only 0.375
        (1, 1): [0.125, 0.625, 0.5],  # best: class 1 (0.625)
    }
    scores = torch.zeros(1, 3, 2, 2)
    for (h, w), values in per_pixel.items():
        scores[0, :, h, w] = torch.tensor(values)
    return scores


def test_scores_to_mask_is_argmax_plus_one_above_the_threshold_and_background_below():
    mask = scores_to_mask(hand_made_scores(), threshold=0.5)
    # class k -> k + 1 (so class 0 is 1, never 0, and the last class is K = 3); the weak pixel -> 0
    assert mask.tolist() == [[[1, 3], [0, 2]]]
    assert mask.shape == (1, 2, 2)
    assert not mask.is_floating_point()


def test_scores_to_mask_threshold_direction_and_strictness():
    scores = hand_made_scores()
    # below every best score: nothing is background
    assert scores_to_mask(scores, threshold=0.0).tolist() == [[[1, 3], [2, 2]]]
    # above every score: everything is background
    assert scores_to_mask(scores, threshold=0.9).tolist() == [[[0, 0], [0, 0]]]
    # a best score equal to the threshold does not "exceed" it: (1, 1) has best score 0.625
    assert scores_to_mask(scores, threshold=0.625).tolist() == [[[1, 3], [0, 0]]]
    # raising the threshold only ever turns pixels into background
    assert scores_to_mask(scores, threshold=0.8).tolist() == [[[1, 0], [0, 0]]]


def test_scores_to_mask_works_with_negative_logits_and_several_images():
    scores = torch.stack([hand_made_scores()[0] - 2.0, hand_made_scores()[0]])  # (2, 3, 2, 2)
    mask = scores_to_mask(scores, threshold=-1.5)
    # image 0: best scores -1.125, -1.25, -1.625, -1.375 -> only (1, 0) is below -1.5
    assert mask[0].tolist() == [[1, 3], [0, 2]]
    assert mask[1].tolist() == [[1, 3], [2, 2]]


@pytest.mark.parametrize("shape", [(3, 2, 2), (1, 1, 3, 2, 2), (5,)])
def test_scores_to_mask_rejects_inputs_that_are_not_4d(shape):
    with pytest.raises(ValueError, match="N, K, H, W"):
        scores_to_mask(torch.zeros(shape), threshold=0.0)


# ----------------------------------------------------------------------------- segmentation_report


def tiny_pred_and_target():
    """(1, 2, 4) masks: 0 background, 1..3 = a, b, c; the last column of the target is ignored."""
    target = torch.tensor([[[0, 0, 1, 255], [1, 2, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1, 3], [1, 2, 0, 0]]])  # 'c' is predicted only on an ignored pixel
    return pred, target


def test_segmentation_report_matches_hand_computed_values():
    pred, target = tiny_pred_and_target()
    report = segmentation_report(pred, target, NAMES)
    # scored pixels: 6 (two ignored); right: (0,0), (0,2), (1,0), (1,1)
    assert report["pixel_accuracy"] == pytest.approx(4 / 6)
    iou = report["iou"]
    assert list(iou) == ["background", "a", "b", "c"]  # background first, then the class names
    assert iou["background"] == pytest.approx(1 / 3)  # TP 1, target 2, predicted 2
    assert iou["a"] == pytest.approx(2 / 3)  # TP 2, target 2, predicted 3
    assert iou["b"] == pytest.approx(1 / 2)  # TP 1, target 2, predicted 1
    assert math.isnan(iou["c"])  # in neither (its one prediction sits on an ignored pixel)
    # the mean leaves the NaN out: (1/3 + 2/3 + 1/2) / 3, not divided by 4 and not NaN
    assert report["mean_iou"] == pytest.approx(0.5)
    assert isinstance(report["pixel_accuracy"], float) and isinstance(report["mean_iou"], float)


def test_segmentation_report_sums_one_confusion_matrix_over_all_images():
    target = torch.tensor([[[1, 1, 1, 1]], [[0, 0, 0, 1]]])
    pred = torch.tensor([[[1, 1, 1, 1]], [[0, 0, 0, 0]]])
    report = segmentation_report(pred, target, ["a"])
    # summed: background TP 3 / union 4, 'a' TP 4 / union 5 -> mIoU 0.775
    # (the mean of per-image mIoUs would be (1.0 + 0.375) / 2 = 0.6875)
    assert report["iou"]["background"] == pytest.approx(3 / 4)
    assert report["iou"]["a"] == pytest.approx(4 / 5)
    assert report["mean_iou"] == pytest.approx(0.775)
    assert report["pixel_accuracy"] == pytest.approx(7 / 8)


def test_segmentation_report_of_a_perfect_prediction():
    _, target = tiny_pred_and_target()
    report = segmentation_report(target.clone(), target, NAMES)
    assert report["pixel_accuracy"] == 1.0
    assert report["mean_iou"] == 1.0
    assert math.isnan(report["iou"]["c"])


def random_masks(seed, shape=(3, 13, 17), classes=4):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, shape, generator=g)
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, target, torch.randint(0, classes, shape, generator=g))
    return pred, target.masked_fill(torch.rand(shape, generator=g) < 0.1, IGNORE_INDEX)


@pytest.mark.parametrize("seed", range(3))
def test_segmentation_report_agrees_with_course_utils_metrics(seed):
    pred, target = random_masks(seed)
    report = segmentation_report(pred, target, NAMES)
    assert report["pixel_accuracy"] == pytest.approx(pixel_accuracy(pred, target), abs=1e-6)
    assert report["mean_iou"] == mean_iou(pred, target, 4)
    assert list(report["iou"].values()) == iou_from_confusion(confusion_matrix(pred, target, 4)).tolist()


def test_segmentation_report_is_the_same_for_uint8_masks():
    pred, target = random_masks(5)
    assert segmentation_report(pred.to(torch.uint8), target.to(torch.uint8), NAMES) == segmentation_report(
        pred, target, NAMES
    )


def test_segmentation_report_numbers_are_exactly_as_before():
    """The notebooks' stored tables were printed from these values (float32 division)."""
    pred, target = random_masks(7)
    cm = confusion_matrix(pred, target, 4)
    iou = cm.diag().float() / (cm.sum(0) + cm.sum(1) - cm.diag()).float()
    report = segmentation_report(pred, target, NAMES)
    assert report["pixel_accuracy"] == (cm.diag().sum() / cm.sum()).item()
    assert report["mean_iou"] == iou.nanmean().item()
    assert list(report["iou"].values()) == iou.tolist()


def test_segmentation_report_skips_ignore_index_by_default():
    target = torch.tensor([[[1, IGNORE_INDEX]]])
    report = segmentation_report(torch.tensor([[[1, 2]]]), target, NAMES)
    assert report["pixel_accuracy"] == 1.0 and math.isnan(report["iou"]["b"])


# ----------------------------------------------------------------------------- choose_threshold


def test_choose_threshold_picks_the_candidate_with_the_best_miou():
    # one class; scores rise from left to right, the object is the right half
    scores = torch.tensor([0.2, 0.4, 0.6, 0.8]).reshape(1, 1, 1, 4)
    target = torch.tensor([[[0, 0, 1, 1]]])
    best, results = choose_threshold(scores, target, [0.9, 0.1, 0.5, 0.7], ["a"])
    assert best == 0.5  # neither the first nor the last candidate, nor the smallest or largest
    assert list(results) == [0.9, 0.1, 0.5, 0.7]  # every candidate, in the order given
    assert results[0.5] == pytest.approx(1.0)  # exactly the right half
    assert results[0.1] == pytest.approx(0.25)  # all object: background 0, 'a' 2/4
    assert results[0.7] == pytest.approx((2 / 3 + 1 / 2) / 2)  # one object pixel lost
    assert results[0.9] == pytest.approx(0.25)  # all background: background 2/4, 'a' 0
    assert all(isinstance(t, float) for t in results)


def test_choose_threshold_agrees_with_segmentation_report():
    torch.manual_seed(0)
    scores = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 4, (2, 8, 8))
    candidates = [-1.0, 0.0, 0.5, 1.0, 2.0]
    best, results = choose_threshold(scores, target, candidates, NAMES)
    for t in candidates:
        expected = segmentation_report(scores_to_mask(scores, t), target, NAMES)["mean_iou"]
        assert results[t] == pytest.approx(expected)
    assert results[best] == max(results.values())


def test_choose_threshold_counts_as_scores_to_mask_and_segmentation_report_do_ties_and_ignored_pixels_included():
    """The one-pass count against the obvious loop: a mask per candidate, a report per mask."""
    torch.manual_seed(1)
    scores = torch.randint(-4, 5, (3, 4, 16, 16)).float() / 2  # many scores exactly equal to a candidate
    target = torch.randint(0, 5, (3, 16, 16))
    target[:, :3] = IGNORE_INDEX
    candidates = [1.5, -1.0, 0.0, 0.5, 2.0, 0.0, -3.0]  # unsorted, a duplicate, one below every score
    best, results = choose_threshold(scores, target, candidates, ["a", "b", "c", "d"])
    assert list(results) == [1.5, -1.0, 0.0, 0.5, 2.0, -3.0]
    for t in candidates:
        expected = segmentation_report(scores_to_mask(scores, t), target, ["a", "b", "c", "d"])["mean_iou"]
        assert results[t] == pytest.approx(expected, abs=1e-12), t
    assert best == max(results, key=results.get)
    many = [i / 10 for i in range(-40, 41)]  # enough bins that an ignored pixel's (255) would land among them
    _, results = choose_threshold(scores, target, many, ["a", "b", "c", "d"])
    for t in many[::10]:
        expected = segmentation_report(scores_to_mask(scores, t), target, ["a", "b", "c", "d"])["mean_iou"]
        assert results[t] == pytest.approx(expected, abs=1e-12), t
    with pytest.raises(ValueError, match="target"):
        choose_threshold(scores, torch.full_like(target, 7), candidates, ["a", "b", "c", "d"])


# ----------------------------------------------------------------------------- format_report


def test_format_report_has_a_header_and_one_row_per_method_with_nan_as_dash():
    pred, target = tiny_pred_and_target()
    reports = {
        "hand-made": segmentation_report(pred, target, NAMES),  # 'c' is NaN
        "perfect": segmentation_report(target.clone(), target, NAMES),
        "all-background": segmentation_report(torch.zeros_like(target), target, NAMES),
    }
    text = format_report(reports)
    lines = text.splitlines()
    assert len(lines) == 1 + len(reports)
    header = lines[0].split()
    assert header == ["pix.acc", "mIoU", "background", "a", "b", "c"]  # names up to 10 characters
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(rows) == list(reports)  # the order of the dict
    assert rows["hand-made"] == ["0.667", "0.500", "0.333", "0.667", "0.500", "-"]
    assert rows["perfect"] == ["1.000", "1.000", "1.000", "1.000", "1.000", "-"]
    # all background: background TP 2 / union 6, a and b 0, c NaN
    assert rows["all-background"] == ["0.333", "0.111", "0.333", "0.000", "0.000", "-"]
    assert "nan" not in text.lower()
    # columns line up: every row is as long as the header
    assert {len(line) for line in lines} == {len(lines[0])}
