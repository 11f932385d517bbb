"""From per-pixel class scores to masks, and from masks to a score table.

The converted classifier has one score map per object class and none for the background (it was
never taught what background is). So a pixel is called background when even its best class
score is low, below a threshold chosen on validation images, and the best class otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .data import IGNORE_INDEX
from .i18n import tr
from .metrics import (
    confusion_matrix,
    iou_from_confusion,
    mean_iou_from_confusion,
    pixel_accuracy_from_confusion,
    scored_labels,
)


def scores_to_mask(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Scores (N, K, H, W) of K object classes -> mask (N, H, W) in {0 (background), 1..K}.

    Pixel (h, w) gets class argmax_k scores[:, k, h, w] + 1 if that best score exceeds
    `threshold`, else 0.
    """
    return threshold_best_class(*best_class_scores(scores), threshold)


def best_class_scores(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (N, K, H, W) -> (best score, best class), each (N, H, W): scores.max(dim=1)."""
    if scores.dim() != 4:
        raise ValueError(tr("expected scores shaped (N, K, H, W), got {shape}", shape=tuple(scores.shape)))
    return scores.max(dim=1)


def threshold_best_class(best_score: torch.Tensor, best_class: torch.Tensor, threshold: float) -> torch.Tensor:
    """scores_to_mask's rule on the best score and class (each (N, H, W)) of best_class_scores."""
    return torch.where(best_score > threshold, best_class + 1, torch.zeros_like(best_class))


def segmentation_report(
    pred: torch.Tensor, target: torch.Tensor, class_names: Sequence[str], ignore_index: int = IGNORE_INDEX
) -> dict:
    """Pixel accuracy, mIoU and per-class IoU of predicted masks against true masks.

    pred, target: (N, H, W) masks with 0 = background and k + 1 = class_names[k].
    Scores are computed by course_utils.metrics from one confusion matrix summed over all images
    (pixels where target == ignore_index are not scored). Returns
    {"pixel_accuracy": float, "mean_iou": float, "iou": {name: float}} with "background" first;
    a class absent from both prediction and target gets NaN and is left out of the mean.
    """
    names = ["background", *class_names]
    cm = confusion_matrix(pred, target, len(names), ignore_index)
    return {
        "pixel_accuracy": pixel_accuracy_from_confusion(cm),
        "mean_iou": mean_iou_from_confusion(cm),
        "iou": dict(zip(names, iou_from_confusion(cm).tolist())),
    }


def choose_threshold(
    scores: torch.Tensor, target: torch.Tensor, candidates: Sequence[float], class_names: Sequence[str]
) -> tuple[float, dict]:
    """The candidate threshold with the best mIoU on (validation) scores; returns it and {t: mIoU},
    the candidates in the order given. Each mIoU is segmentation_report's for scores_to_mask(scores, t).

    One count over the pixels serves every candidate. A pixel whose best score beats exactly k of
    the (sorted) candidates gets its best class under the first k and background under the rest,
    so counting the pixels by (k, true class, best class) gives every candidate's confusion matrix.
    """
    best_score, best_class = best_class_scores(scores)  # (N, H, W) each
    num_classes = len(class_names) + 1  # background first
    ordered = sorted({float(t) for t in candidates})
    thresholds = torch.tensor(ordered, dtype=best_score.dtype, device=best_score.device)
    beaten = torch.searchsorted(thresholds, best_score.contiguous())  # how many candidates t < best score
    # The labels checked and made countable as confusion_matrix makes them (best class + 1: its mask value).
    valid, true_class, best_label = scored_labels(best_class + 1, target, num_classes)
    shape = (len(ordered) + 1, num_classes, num_classes)  # (k, true class, best class + 1)
    spare = shape[0] * shape[1] * shape[2]  # the bin of the ignored pixels, dropped below
    bins = torch.where(valid, (beaten * num_classes + true_class) * num_classes + best_label, spare)
    counts = torch.bincount(bins.flatten(), minlength=spare + 1)[:spare].reshape(shape)
    beat_at_least = counts.flip(0).cumsum(0).flip(0)  # beat_at_least[k]: pixels that beat k or more
    miou = {}
    for rank, t in enumerate(ordered):  # candidate t is beaten by the pixels that beat rank + 1 or more
        cm = beat_at_least[rank + 1].clone()  # those get their best class
        cm[:, 0] += counts[: rank + 1].sum(dim=(0, 2))  # the others background
        miou[t] = mean_iou_from_confusion(cm)
    results = {float(t): miou[float(t)] for t in candidates}
    best = max(results, key=results.get)
    return best, results


def format_report(reports: dict[str, dict]) -> str:
    """A text table: one row per method, columns pixel accuracy, mIoU, then IoU per class."""
    if not reports:
        raise ValueError(tr("no reports to format"))
    first = next(iter(reports.values()))
    names = list(first["iou"])
    header = f"{'':<24}{'pix.acc':>8}{'mIoU':>7}" + "".join(f"{n[:10]:>11}" for n in names)
    lines = [header]
    for method, report in reports.items():
        cells = "".join(f"{v:>11.3f}" if v == v else f"{'-':>11}" for v in report["iou"].values())
        lines.append(f"{method:<24}{report['pixel_accuracy']:>8.3f}{report['mean_iou']:>7.3f}{cells}")
    return "\n".join(lines)
