"""An interactive explorer for notebook 4: pick an image, a class and a threshold.

The class holds precomputed per-pixel scores, so moving a control only redraws. The figure is
sent to the page as a PNG in an `ipywidgets.Image` (no Output widget, so nothing depends on
where the callback runs). Callbacks are plain methods, tested without a browser (set a control's
`.value`, read `.figure`, `.picture.value` and `.summary`). `render()` draws the same figure
without any widget, as a static fallback.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

from .i18n import tr
from .segment import scores_to_mask, segmentation_report
from .viz import HEATMAP_CMAP, add_class_legend, mask_to_rgb, to_uint8

#: The option that shows the predicted mask, not one class's heatmap (English; each explorer shows
#: it in the course's language, as its `all_classes`, and accepts either).
ALL_CLASSES = "all classes (mask)"


class FCNExplorer:
    """Image, the heatmap of one class (or the predicted mask), and the true mask side by side.

    Masks are drawn in solid class colours (`mask_to_rgb`) with a legend of the classes shown; a
    heatmap gets a colorbar on the score range of all images and classes, with the threshold marked.

    images (N, 3, H, W), scores (N, K, H, W) from the FCN, masks (N, H, W) true masks.
    """

    def __init__(
        self,
        images: torch.Tensor,
        scores: torch.Tensor,
        masks: torch.Tensor,
        class_names: Sequence[str],
        threshold: float = 0.0,
    ):
        import ipywidgets as w  # a course dependency; imported here so viz-only users need not

        if not (len(images) == len(scores) == len(masks)):
            raise ValueError(
                tr(
                    "need as many images, score maps and masks, got {images}, {scores}, {masks}",
                    images=len(images),
                    scores=len(scores),
                    masks=len(masks),
                )
            )
        if scores.shape[1] != len(class_names):
            raise ValueError(
                tr(
                    "scores have {classes} classes but {names} class names were given",
                    classes=scores.shape[1],
                    names=len(class_names),
                )
            )
        self.images, self.scores, self.masks = images.cpu(), scores.cpu(), masks.cpu()
        self.class_names = list(class_names)
        low, high = float(scores.min()), float(scores.max())
        self.score_range = (low, high)  # one heatmap colour scale for every image and class
        self.image = w.IntSlider(value=0, min=0, max=len(images) - 1, description=tr("image"))
        self.all_classes = tr("all classes (mask)")  # ALL_CLASSES in the course's language
        self.choice = w.Dropdown(
            options=[self.all_classes, *self.class_names], value=self.all_classes, description=tr("show")
        )
        low, high = math.floor(low * 10) / 10, math.ceil(high * 10) / 10  # the whole score range
        self.threshold = w.FloatSlider(
            value=min(max(threshold, low), high), min=low, max=high, step=0.05, description=tr("threshold")
        )
        self.summary = w.HTML()
        self.picture = w.Image(format="png")
        self.figure = None
        for control in (self.image, self.choice, self.threshold):
            control.observe(self.update, names="value")
        self.widget = w.VBox([w.HBox([self.image, self.choice, self.threshold]), self.summary, self.picture])
        self.update()

    def render(self, index: int | None = None, choice: str | None = None, threshold: float | None = None):
        """Draw the current (or the given) settings into a new matplotlib Figure and return it."""
        index = self.image.value if index is None else index
        choice = self.choice.value if choice is None else choice
        threshold = self.threshold.value if threshold is None else threshold
        image, scores, truth = self.images[index], self.scores[index], self.masks[index]
        predicted = scores_to_mask(scores[None], threshold)[0]
        fig, axes = plt.subplots(1, 3, figsize=(10, 4.0), layout="constrained")
        axes[0].imshow(to_uint8(image).permute(1, 2, 0).numpy())
        axes[0].set_title(tr("image {index}", index=index))
        if choice in (ALL_CLASSES, self.all_classes):
            axes[1].imshow(mask_to_rgb(predicted).permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[1].set_title(tr("predicted mask (threshold {threshold:.2f})", threshold=threshold))
            shown_masks = [predicted, truth]
        else:
            k = self.class_names.index(choice)
            low, high = self.score_range
            heatmap = axes[1].imshow(scores[k].numpy(), cmap=HEATMAP_CMAP, vmin=low, vmax=high)
            axes[1].contour((scores[k] > threshold).numpy(), levels=[0.5], colors="red", linewidths=1.5)
            axes[1].set_title(tr("'{name}' score, contour at {threshold:.2f}", name=choice, threshold=threshold))
            bar = fig.colorbar(heatmap, ax=axes[1], shrink=0.8, label=tr("'{name}' score (logit)", name=choice))
            bar.ax.axhline(threshold, color="black", linewidth=1.5)  # the contour's level on the scale
            shown_masks = [truth]
        axes[2].imshow(mask_to_rgb(truth).permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[2].set_title(tr("true mask"))
        for ax in axes:
            ax.axis("off")
        values = set().union(*(mask.unique().tolist() for mask in shown_masks))
        add_class_legend(fig, self.class_names, values)
        return fig

    def describe(self, index: int | None = None, threshold: float | None = None) -> str:
        """One line: the classes found in the current (or given) image and the mask's mIoU."""
        index = self.image.value if index is None else index
        threshold = self.threshold.value if threshold is None else threshold
        predicted = scores_to_mask(self.scores[index][None], threshold)[0]
        report = segmentation_report(predicted, self.masks[index], self.class_names)
        found = sorted({self.class_names[v - 1] for v in predicted.unique().tolist() if v > 0})
        return tr(
            "image {index}: predicted {classes}; mIoU of this image {miou:.2f}",
            index=index,
            classes=", ".join(found) or tr("nothing"),
            miou=report["mean_iou"],
        )

    def update(self, change=None) -> None:
        """Redraw after any control changed (the observer callback)."""
        if self.figure is not None:
            plt.close(self.figure)
        self.figure = self.render()
        self.summary.value = self.describe()
        png = io.BytesIO()
        self.figure.savefig(png, format="png", dpi=80)
        self.picture.value = png.getvalue()
        plt.close(self.figure)  # shown through the Image widget only, not again below the cell
