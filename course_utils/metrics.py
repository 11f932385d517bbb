"""Segmentation metrics: confusion matrix, pixel accuracy and (mean) IoU.

Everything here works on *integer label maps*. A segmentation network gives
scores of shape (N, C, H, W); turn them into labels first with
``pred = scores.argmax(dim=1)``, which has shape (N, H, W) like the target.

The confusion matrix is the one object everything else is built from:

    cm[i, j] = number of pixels whose true class is i and predicted class is j

    rows    = target (ground-truth) class
    columns = predicted class

From it, for every class c:

    TP = cm[c, c]                 (true class c, predicted c)
    FN = cm[c, :].sum() - TP      (true class c, predicted something else)
    FP = cm[:, c].sum() - TP      (predicted c, true class something else)
    IoU_c = TP / (TP + FP + FN)   (intersection over union)

Pixels whose target equals ``ignore_index`` (``IGNORE_INDEX`` from
``course_utils.data``, 255 as in PASCAL VOC: object borders and "void") are
skipped everywhere: their prediction does not matter.

Dataset-level scores
--------------------
Following the FCN reference scoring (Long et al., ``score.py``), the metric
for a whole dataset is computed by *summing confusion matrices* over all
batches and then calling :func:`iou_from_confusion` once::

    cm = torch.zeros(C, C, dtype=torch.long)
    for images, targets in loader:
        pred = model(images).argmax(dim=1)
        cm += confusion_matrix(pred, targets, C)
    miou = mean_iou_from_confusion(cm)        # == iou_from_confusion(cm).nanmean()
    accuracy = pixel_accuracy_from_confusion(cm)

This is NOT the same as averaging per-image mIoU values: a small image (or an
image where a class covers three pixels) would then weigh as much as a large
one, and classes absent from an image would change which classes get averaged.
"""

import torch

from .data import IGNORE_INDEX
from .i18n import tr

__all__ = [
    "confusion_matrix",
    "pixel_accuracy",
    "pixel_accuracy_from_confusion",
    "iou_from_confusion",
    "mean_iou_from_confusion",
    "iou_per_class",
    "mean_iou",
]


# ---------------------------------------------------------------------------
# Input checks (kept in one place so every metric reports errors the same way)
# ---------------------------------------------------------------------------


def _check_labels(pred, target):
    """Check that pred and target are integer label tensors of the same shape."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(tr("pred and target must be torch tensors"))
    if pred.is_floating_point() or pred.is_complex():
        raise ValueError(
            tr(
                "pred must hold integer class labels, got dtype {dtype}. "
                "If you have scores of shape (N, C, H, W), take "
                "pred = scores.argmax(dim=1) first.",
                dtype=pred.dtype,
            )
        )
    if target.is_floating_point() or target.is_complex():
        raise ValueError(tr("target must hold integer class labels, got dtype {dtype}", dtype=target.dtype))
    if pred.shape != target.shape:
        raise ValueError(
            tr(
                "pred and target must have the same shape, got pred {pred_shape} and target {target_shape}",
                pred_shape=tuple(pred.shape),
                target_shape=tuple(target.shape),
            )
        )
    if pred.device != target.device:
        raise ValueError(
            tr(
                "pred and target must be on the same device, got {pred_device} and {target_device}",
                pred_device=pred.device,
                target_device=target.device,
            )
        )


def _check_confusion(cm):
    if not isinstance(cm, torch.Tensor) or cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        shape = tuple(cm.shape) if isinstance(cm, torch.Tensor) else type(cm).__name__
        raise ValueError(tr("cm must be a square (C, C) matrix, got {shape}", shape=shape))


def _check_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(tr("num_classes must be an integer >= 1, got {num_classes!r}", num_classes=num_classes))


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def scored_labels(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """The labels ready to be counted, after checking them: (valid, t, p).

    - valid: bool tensor, pred's shape: True where target is not ignore_index;
    - t, p: target and pred as int64, with 0 in place of an ignored pixel's labels.

    Every pixel stays in place (selecting the scored ones would copy them, several times slower):
    a counter sends the ignored pixels to a spare bin instead. int64, since an index such as
    t * C + p would overflow a small input dtype (uint8: 19 * 20 + 19 > 255). A ValueError names
    any label outside [0, num_classes) on a scored pixel.
    """
    _check_labels(pred, target)
    _check_num_classes(num_classes)
    valid = target != ignore_index
    t = torch.where(valid, target, 0).long()
    p = torch.where(valid, pred, 0).long()
    for name, labels in (("target", t), ("pred", p)):
        low, high = torch.aminmax(labels) if labels.numel() else (0, 0)
        if low < 0 or high >= num_classes:
            bad = labels[valid & ((labels < 0) | (labels >= num_classes))].unique().tolist()
            if name == "target":
                raise ValueError(
                    tr(
                        "target has values {values} outside [0, {num_classes}) "
                        "that are not ignore_index={ignore_index}",
                        values=bad,
                        num_classes=num_classes,
                        ignore_index=ignore_index,
                    )
                )
            raise ValueError(
                tr("pred has values {values} outside [0, {num_classes})", values=bad, num_classes=num_classes)
            )
    return valid, t, p


def confusion_matrix(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """Count (true class, predicted class) pairs.

    Inputs:
    - pred: integer tensor of predicted labels, any shape, e.g. (N,), (H, W)
      or (N, H, W). Values in [0, num_classes) wherever target is not ignored.
    - target: integer tensor of true labels, same shape as pred. Values in
      [0, num_classes) or equal to ignore_index.
    - num_classes: int C >= 1.
    - ignore_index: target value marking pixels to skip (their prediction is
      not looked at, so it may be anything).

    Returns:
    - cm: LongTensor of shape (C, C) on the input device, where cm[i, j] is
      the number of pixels with target i and prediction j
      (rows = target, columns = prediction).
    """
    valid, t, p = scored_labels(pred, target, num_classes, ignore_index)
    # Each scored (target, pred) pair gets a unique index t * C + p in [0, C*C), each ignored pixel
    # the spare index C*C; counting the indices and reshaping the first C*C counts gives the matrix.
    index = torch.where(valid, t * num_classes + p, num_classes**2)
    counts = torch.bincount(index.reshape(-1), minlength=num_classes**2 + 1)[: num_classes**2]
    return counts.reshape(num_classes, num_classes)


def pixel_accuracy(pred, target, ignore_index=IGNORE_INDEX):
    """Fraction of non-ignored pixels whose predicted label is correct.

    Inputs:
    - pred: integer tensor of predicted labels, any shape.
    - target: integer tensor of true labels, same shape as pred.
    - ignore_index: target value marking pixels to skip.

    Returns:
    - accuracy: Python float in [0, 1] = (# correct pixels) / (# scored pixels).

    Raises ValueError if every target pixel equals ignore_index.
    """
    _check_labels(pred, target)
    valid = target != ignore_index
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(tr("no pixels to score: every target pixel is ignore_index"))
    num_correct = int(((pred == target) & valid).sum())
    return num_correct / num_valid


def iou_from_confusion(cm):
    """Per-class intersection over union from a confusion matrix.

    Inputs:
    - cm: tensor of shape (C, C), rows = target class, columns = prediction,
      e.g. from confusion_matrix() or a sum of several of them.

    Returns:
    - iou: FloatTensor of shape (C,), iou[c] = TP / (TP + FP + FN).
      iou[c] is NaN when class c appears neither in the targets nor in the
      predictions (union 0): there is nothing to score, which is different
      from scoring 0. Use iou.nanmean() to average over the scored classes.
    """
    _check_confusion(cm)
    cm = cm.float()
    tp = cm.diag()  # (C,)
    union = cm.sum(dim=1) + cm.sum(dim=0) - tp  # TP + FN + TP + FP - TP
    # 0 / 0 = NaN for classes with an empty union, exactly what we want.
    return tp / union


def pixel_accuracy_from_confusion(cm):
    """Fraction of scored pixels whose prediction is right, from a confusion matrix.

    Inputs:
    - cm: tensor of shape (C, C), rows = target class, columns = prediction.

    Returns:
    - accuracy: Python float = trace(cm) / cm.sum() (the diagonal holds the
      right predictions), NaN if cm is all zeros (no pixel scored). The
      same fraction as pixel_accuracy() on the pixels cm counted, divided in
      float32 (the default dtype) like iou_from_confusion().
    """
    _check_confusion(cm)
    return (cm.diag().sum() / cm.sum()).item()


def mean_iou_from_confusion(cm):
    """Mean of iou_from_confusion(cm) over the classes present (NaNs left out).

    Inputs:
    - cm: tensor of shape (C, C), e.g. a sum of confusion matrices over a dataset.

    Returns:
    - miou: Python float. NaN only if cm is all zeros.
    """
    return iou_from_confusion(cm).nanmean().item()


def iou_per_class(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """Per-class IoU of one prediction / target pair.

    Inputs: as for confusion_matrix(): pred and target integer tensors of the
    same shape, num_classes C, ignore_index.

    Returns:
    - iou: FloatTensor of shape (C,); NaN for classes absent from both
      pred and target (see iou_from_confusion()).
    """
    return iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_iou(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """Mean IoU over the classes present in pred or target.

    Classes with NaN IoU (absent from both) are left out of the mean
    (nanmean), as in the FCN reference scoring. For a whole dataset, sum the
    confusion matrices of all batches and call iou_from_confusion() once;
    see the module docstring.

    Inputs: as for confusion_matrix().

    Returns:
    - miou: Python float. NaN only if no pixel is scored at all.
    """
    return mean_iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))
