"""Pictures for the notebooks: image grids with mask overlays, boxes, heatmaps, training curves.

Overlays and boxes are drawn with torchvision's utilities (`draw_segmentation_masks`,
`draw_bounding_boxes`); figures are matplotlib. Every function returns the Figure, so a
notebook cell ends with `plt.show()`.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from .data import IGNORE_INDEX


#: One colour per mask value: background (unused in overlays) then the 7 classes.
CLASS_COLORS = [
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
]


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Float image (3, H, W) in [0, 1] -> uint8 image (3, H, W) for torchvision's drawing tools."""
    return (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def overlay_mask(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Colour each object class of `mask` (H, W) over `image` (3, H, W); ignored pixels in white.

    Returns a uint8 image (3, H, W). Mask values: 0 background, k + 1 class k, 255 ignore.
    """
    values = [v for v in mask.unique().tolist() if v != 0]
    if not values:
        return to_uint8(image)
    layers = torch.stack([mask == v for v in values]).cpu()
    colors = [(255, 255, 255) if v == IGNORE_INDEX else CLASS_COLORS[v % len(CLASS_COLORS)] for v in values]
    return draw_segmentation_masks(to_uint8(image), layers, alpha=alpha, colors=colors)


def draw_box(image: torch.Tensor, box: torch.Tensor, label: str | None = None) -> torch.Tensor:
    """Draw one box [x_min, y_min, x_max, y_max] on `image` (3, H, W); returns uint8 (3, H, W)."""
    return draw_bounding_boxes(
        to_uint8(image), box.reshape(1, 4).float(), labels=[label] if label else None, colors="white", width=2
    )


def _grid(n: int, ncols: int, size: float):
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def show_images(
    images: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor] | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.8,
    alpha: float = 0.5,
):
    """A grid of images (each (3, H, W), float in [0, 1] or uint8), optionally with mask overlays."""
    fig, axes = _grid(len(images), ncols, size)
    for i, (ax, image) in enumerate(zip(axes, images)):
        if masks is not None:
            image = overlay_mask(image, masks[i], alpha)
        elif image.dtype != torch.uint8:
            image = to_uint8(image)
        ax.imshow(image.permute(1, 2, 0).cpu().numpy())
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(history: dict):
    """Loss per step and per epoch, and accuracy per epoch, from `course_utils.train.fit`."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = history.get("step_loss", [])
    epochs = len(history["train_loss"])
    steps_per_epoch = len(steps) / max(epochs, 1)
    if steps:
        ax_loss.plot([i / steps_per_epoch for i in range(1, len(steps) + 1)], steps, alpha=0.35, label="train (step)")
    ax_loss.plot(range(1, epochs + 1), history["train_loss"], "o-", label="train (epoch)")
    if history.get("val_loss"):
        ax_loss.plot(range(1, epochs + 1), history["val_loss"], "s-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss", yscale="log")
    ax_loss.legend()
    ax_acc.plot(range(1, epochs + 1), history["train_accuracy"], "o-", label="train")
    if history.get("val_accuracy"):
        ax_acc.plot(range(1, epochs + 1), history["val_accuracy"], "s-", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    ax_acc.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm: torch.Tensor, class_names: Sequence[str], title: str = "confusion matrix"):
    """Counts (K, K) with rows = true class, columns = predicted class, written in each cell."""
    fig, ax = plt.subplots(figsize=(0.7 * len(class_names) + 2, 0.7 * len(class_names) + 1.5))
    ax.imshow(cm.cpu().numpy(), cmap="Blues")
    for row, counts in enumerate(cm.tolist()):
        for col, value in enumerate(counts):
            color = "white" if value > cm.max() / 2 else "black"
            ax.text(col, row, str(value), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def plot_heatmaps(image: torch.Tensor, scores: torch.Tensor, class_names: Sequence[str], ncols: int = 4, size: float = 2.2):
    """The image, then one heatmap per class of `scores` (K, H, W), all on one colour scale.

    A shared scale shows which class is strong where; per-class scales would make every map look
    equally "hot".
    """
    fig, axes = _grid(len(class_names) + 1, ncols, size)
    axes = list(axes)
    axes[0].imshow(to_uint8(image).permute(1, 2, 0).numpy())
    axes[0].set_title("image", fontsize=9)
    scores = scores.detach().cpu()
    low, high = scores.min().item(), scores.max().item()
    for ax, name, heatmap in zip(axes[1:], class_names, scores):
        ax.imshow(to_uint8(image).permute(1, 2, 0).numpy())
        ax.imshow(heatmap.numpy(), cmap="jet", alpha=0.5, vmin=low, vmax=high)
        ax.set_title(f"{name} (max {heatmap.max():.1f})", fontsize=9)
    fig.tight_layout()
    return fig
