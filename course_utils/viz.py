"""Pictures for the notebooks: image grids with mask overlays, boxes, heatmaps, training curves.

Overlays and boxes are drawn in a few lines of torch, pixel for pixel as torchvision's
`draw_segmentation_masks` and `draw_bounding_boxes` draw them (the tests compare the two):
importing torchvision takes about 3 s on a laptop CPU, which notebook 1 would wait for at every
start only to draw a rectangle.
Figures are matplotlib. Every function returns the Figure, so a notebook cell ends with `plt.show()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patches import Patch

from .data import IGNORE_INDEX
from .i18n import tr

#: One colour per mask value: background (dark grey; unused in overlays) then the 7 classes, so
#: mask value v is drawn in CLASS_COLORS[v] everywhere (solid masks, overlays, legends).
CLASS_COLORS = [
    (40, 40, 40),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
]


#: Colour of IGNORE_INDEX pixels (white), in solid masks, overlays and legends alike.
IGNORE_COLOR = (255, 255, 255)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Float image (3, H, W) in [0, 1] -> uint8 image (3, H, W), the drawing functions' format.

    A uint8 image is returned as it is (on the CPU).
    """
    if image.dtype == torch.uint8:
        return image.detach().cpu()
    return (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def _as_picture(image: torch.Tensor):
    """Image (3, H, W), float in [0, 1] or uint8 -> numpy uint8 (H, W, 3) for `imshow`."""
    return to_uint8(image).permute(1, 2, 0).numpy()


def _palette() -> torch.Tensor:
    """Lookup table (256, 3) uint8: row v is the colour of mask value v (unused rows stay 0)."""
    palette = torch.zeros(256, 3, dtype=torch.uint8)
    palette[: len(CLASS_COLORS)] = torch.tensor(CLASS_COLORS, dtype=torch.uint8)
    palette[IGNORE_INDEX] = torch.tensor(IGNORE_COLOR, dtype=torch.uint8)
    return palette


def mask_to_rgb(mask: torch.Tensor) -> torch.Tensor:
    """Mask (H, W) of class values -> uint8 picture (3, H, W) with one solid colour per value.

    Value v (0 background, k + 1 class k of CLASSES) gets CLASS_COLORS[v]; IGNORE_INDEX (255)
    is white. Unlike `overlay_mask`, the colour does not depend on the image below, so a class
    looks the same in every panel. Any other value raises ValueError.
    """
    mask = mask.detach().cpu().long()
    values = mask.unique()
    valid = ((values >= 0) & (values < len(CLASS_COLORS))) | (values == IGNORE_INDEX)
    if not bool(valid.all()):
        raise ValueError(
            tr(
                "mask values must be 0..{largest} or {ignore}, got {values}",
                largest=len(CLASS_COLORS) - 1,
                ignore=IGNORE_INDEX,
                values=values[~valid].tolist(),
            )
        )
    return _palette()[mask].permute(2, 0, 1).contiguous()


def _legend_entries(class_names: Sequence[str], values, background: bool) -> list[tuple[str, tuple]]:
    """(label, RGB colour 0-255) per legend entry: background, the classes, then ignored."""
    if values is None:
        values = range(len(class_names) + 1)
    present = {int(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)}
    entries = [(tr("background"), CLASS_COLORS[0])] if background else []
    for value in sorted(present - {0, IGNORE_INDEX}):
        if not 1 <= value < len(CLASS_COLORS):
            raise ValueError(tr("no colour for mask value {value}", value=value))
        name = class_names[value - 1] if value - 1 < len(class_names) else tr("value {value}", value=value)
        entries.append((name, CLASS_COLORS[value]))
    if IGNORE_INDEX in present:
        entries.append((tr("ignored ({ignore})", ignore=IGNORE_INDEX), IGNORE_COLOR))
    return entries


def add_class_legend(fig, class_names: Sequence[str], values=None, background: bool = True, fontsize: float = 9):
    """Add one legend of mask colours below the axes of `fig`; returns the Legend.

    Lists "background" (unless background=False, e.g. under overlays, where the background is
    the image), the class of each mask value in `values` (any iterable or tensor of mask values,
    e.g. `mask.unique()`; None: every class of `class_names`), and "ignored (255)" when 255 is
    among `values`. Colours are exactly those of `mask_to_rgb`. Mask value k + 1 is
    class_names[k].

    With constrained layout the legend gets its own room; otherwise call this after the layout
    is done (`tight_layout`): the figure grows by the legend's height, the axes keep their size.
    """
    entries = _legend_entries(class_names, values, background)
    handles = [
        Patch(facecolor=[c / 255 for c in color], edgecolor="0.5", linewidth=0.5, label=label)
        for label, color in entries
    ]
    width = fig.get_figwidth()
    longest = max((len(label) for label, _ in entries), default=1)
    per_entry = 0.45 + 0.075 * longest * fontsize / 9  # inches: a patch, a gap and the text
    ncols = max(1, min(len(handles), int(width // per_entry)))
    options = dict(
        handles=handles,
        ncols=ncols,
        fontsize=fontsize,
        frameon=False,
        handlelength=1.2,
        handleheight=1.2,
        columnspacing=1.2,
    )
    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        return fig.legend(loc="outside lower center", **options)
    legend = fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.0), **options)
    # make room below the axes: grow the figure, then move every axes up by the legend's height
    extra = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi + 0.05
    old_height = fig.get_figheight()
    new_height = old_height + extra
    for ax in fig.axes:
        box = ax.get_position()
        ax.set_position(
            [box.x0, (box.y0 * old_height + extra) / new_height, box.width, box.height * old_height / new_height]
        )
    fig.set_figheight(new_height)
    return legend


def overlay_mask(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Colour each object class of `mask` (H, W) over `image` (3, H, W); ignored pixels in white.

    Returns a uint8 image (3, H, W): alpha * colour + (1 - alpha) * image on the pixels of each
    class, the image itself on the background. Mask values: 0 background, k + 1 class k, 255 ignore.
    """
    base = to_uint8(image)
    mask = mask.detach().cpu()
    painted = base.clone()
    for value in mask.unique().tolist():
        if value != 0:
            color = IGNORE_COLOR if value == IGNORE_INDEX else CLASS_COLORS[value % len(CLASS_COLORS)]
            painted[:, mask == value] = torch.tensor(color, dtype=torch.uint8)[:, None]
    return (base * (1 - alpha) + painted * alpha).to(torch.uint8)


def draw_box(image: torch.Tensor, box: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Draw one box [x_min, y_min, x_max, y_max] (a tensor, inclusive pixel coordinates) on
    `image` (3, H, W) as a white outline `width` pixels thick, inside the box; returns uint8 (3, H, W)."""
    if not isinstance(box, torch.Tensor) or box.numel() != 4:
        raise TypeError(tr("box must be a tensor of 4 numbers [x_min, y_min, x_max, y_max], got {box!r}", box=box))
    x0, y0, x1, y1 = box.reshape(4).round().long().tolist()
    out = to_uint8(image).clone()
    white = torch.tensor(IGNORE_COLOR, dtype=torch.uint8)[:, None]
    for t in range(width):  # the outline's t-th ring, inside the box
        out[:, y0 + t, x0 : x1 + 1] = out[:, y1 - t, x0 : x1 + 1] = white
        out[:, y0 : y1 + 1, x0 + t] = out[:, y0 : y1 + 1, x1 - t] = white
    return out


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
    class_names: Sequence[str] | None = None,
):
    """A grid of images (each (3, H, W), float in [0, 1] or uint8), optionally with mask overlays.

    masks: one mask (H, W) per image (same H, W), coloured over it with `overlay_mask`; with
    `class_names` (e.g. CLASSES) a legend of the class colours present is added below. Overlays
    blend with the image, so the same class can look different on different objects: to compare
    masks, use `show_segmentations` (solid colours).
    """
    fig, axes = _grid(len(images), ncols, size)
    for i, (ax, image) in enumerate(zip(axes, images)):
        if masks is not None:
            image = overlay_mask(image, masks[i], alpha)
        ax.imshow(_as_picture(image))
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    if masks is not None and class_names is not None:
        values = set().union(*(mask.unique().tolist() for mask in masks))
        add_class_legend(fig, class_names, values, background=False)
    return fig


def show_segmentations(
    images: Sequence[torch.Tensor],
    rows: Mapping[str, Sequence[torch.Tensor]],
    class_names: Sequence[str],
    size: float = 1.8,
    legend: bool = True,
    titles: Sequence[str] | None = None,
):
    """Images on top, then one row of solid-colour masks per entry of `rows`, one legend below.

    images: n images (3, H, W), float in [0, 1] or uint8; columns may differ in size.
    rows: {row title: n masks (H, W)}, e.g. {"true": true_masks, "predicted": predicted}; mask i
    has the size of image i. Masks are drawn with `mask_to_rgb`, so a class has the same colour
    in every panel. class_names: mask value k + 1 is class_names[k] (e.g. CLASSES).
    size: height in inches of a row. titles: optional n titles for the image row.
    The legend lists background, each class present in any mask, and "ignored (255)" if present.
    """
    n = len(images)
    for name, masks in rows.items():
        if len(masks) != n:
            raise ValueError(
                tr("row {name!r} has {masks} masks for {images} images", name=name, masks=len(masks), images=n)
            )
        for i, (image, mask) in enumerate(zip(images, masks)):
            if tuple(mask.shape) != tuple(image.shape[-2:]):
                raise ValueError(
                    tr(
                        "row {name!r}, column {column}: mask {mask_shape} does not match image {image_shape}",
                        name=name,
                        column=i,
                        mask_shape=tuple(mask.shape),
                        image_shape=tuple(image.shape[-2:]),
                    )
                )
    widths = [image.shape[-1] / image.shape[-2] for image in images]
    nrows = 1 + len(rows)
    fig, axes = plt.subplots(
        nrows,
        n,
        figsize=(size * sum(widths) + 0.4, size * nrows + 0.4),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": widths},
    )
    pictures = [[_as_picture(image) for image in images]]
    pictures += [[mask_to_rgb(mask).permute(1, 2, 0).numpy() for mask in masks] for masks in rows.values()]
    values = set()
    for masks in rows.values():
        for mask in masks:
            values.update(mask.unique().tolist())
    for r, (row_title, row) in enumerate(zip([tr("image"), *rows], pictures)):
        for c, picture in enumerate(row):
            ax = axes[r, c]
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c == 0:
                ax.set_ylabel(row_title, fontsize=10)
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=9)
    if legend:
        add_class_legend(fig, class_names, values)
    return fig


def plot_history(history: dict):
    """Loss per step and per epoch, and accuracy per epoch, from `course_utils.train.fit`."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = history.get("step_loss", [])
    epochs = len(history["train_loss"])
    steps_per_epoch = len(steps) / max(epochs, 1)
    if steps:
        ax_loss.plot(
            [i / steps_per_epoch for i in range(1, len(steps) + 1)], steps, alpha=0.35, label=tr("train (step)")
        )
    ax_loss.plot(range(1, epochs + 1), history["train_loss"], "o-", label=tr("train (epoch)"))
    if history.get("val_loss"):
        ax_loss.plot(range(1, epochs + 1), history["val_loss"], "s-", label=tr("validation"))
    ax_loss.set(xlabel=tr("epoch"), ylabel=tr("cross-entropy"), title=tr("loss"), yscale="log")
    ax_loss.legend()
    ax_acc.plot(range(1, epochs + 1), history["train_accuracy"], "o-", label=tr("train"))
    if history.get("val_accuracy"):
        ax_acc.plot(range(1, epochs + 1), history["val_accuracy"], "s-", label=tr("validation"))
    ax_acc.set(xlabel=tr("epoch"), ylabel=tr("accuracy"), title=tr("accuracy"), ylim=(0, 1.02))
    ax_acc.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    cm: torch.Tensor, class_names: Sequence[str], title: str | None = None, colorbar: bool = False
):
    """Counts (K, K) with rows = true class, columns = predicted class, written in each cell.

    title: None gives "confusion matrix" (in the course's language).
    colorbar: also add a colour scale of the counts (off by default: every cell states its count).
    """
    if title is None:
        title = tr("confusion matrix")
    fig, ax = plt.subplots(
        figsize=(0.7 * len(class_names) + 2 + 1.2 * colorbar, 0.7 * len(class_names) + 1.5),
        layout="constrained" if colorbar else None,
    )
    shown = ax.imshow(cm.cpu().numpy(), cmap="Blues")
    for row, counts in enumerate(cm.tolist()):
        for col, value in enumerate(counts):
            color = "white" if value > cm.max() / 2 else "black"
            ax.text(col, row, str(value), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel=tr("predicted"), ylabel=tr("true"), title=title)
    if colorbar:
        fig.colorbar(shown, ax=ax, label=tr("count"), shrink=0.8)
    else:
        fig.tight_layout()  # unchanged default look (tight_layout cannot place a colorbar axes)
    return fig


#: The colour map of every score heatmap: perceptually uniform, and readable in grey.
HEATMAP_CMAP = "viridis"


def plot_heatmaps(
    image: torch.Tensor,
    scores: torch.Tensor,
    class_names: Sequence[str],
    ncols: int = 4,
    size: float = 2.2,
    colorbar: bool = True,
):
    """The image (3, H, W), then one heatmap per class of `scores` (K, H, W), all on one colour scale.

    A shared scale shows which class is strong where; per-class scales would make every map look
    equally "hot". The colorbar (labelled "class score (logit)") gives that scale, and each title
    the map's maximum. The maps are drawn alone, in HEATMAP_CMAP (perceptually uniform: equal
    steps in score look like equal steps in colour): a map blended over a colourful image could
    not be read against its colourbar.
    """
    n = len(class_names) + 1
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols + 0.9 * colorbar, size * nrows), squeeze=False, layout="constrained"
    )
    axes = list(axes.flat)
    for ax in axes:
        ax.axis("off")
    picture = _as_picture(image)
    axes[0].imshow(picture)
    axes[0].set_title(tr("image"), fontsize=9)
    scores = scores.detach().cpu()
    low, high = scores.min().item(), scores.max().item()
    shown = None
    for ax, name, heatmap in zip(axes[1:], class_names, scores):
        shown = ax.imshow(heatmap.numpy(), cmap=HEATMAP_CMAP, vmin=low, vmax=high)
        ax.set_title(tr("{name} (max {maximum:.1f})", name=name, maximum=heatmap.max()), fontsize=9)
    if colorbar and shown is not None:
        fig.colorbar(shown, ax=axes, shrink=min(0.9, 0.5 + 0.2 * nrows), label=tr("class score (logit)"))
    return fig
