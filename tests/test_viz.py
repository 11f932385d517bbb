"""Plot helpers draw what they claim (checked on pixels and axes, not by eye)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb

from course_utils.data import CLASSES, IGNORE_INDEX
from course_utils.viz import (
    CLASS_COLORS,
    add_class_legend,
    draw_box,
    mask_to_rgb,
    overlay_mask,
    plot_confusion_matrix,
    plot_heatmaps,
    plot_history,
    show_images,
    show_segmentations,
    to_uint8,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_overlay_colours_exactly_the_mask_pixels():
    image = torch.full((3, 8, 8), 0.5)
    mask = torch.zeros(8, 8, dtype=torch.long)
    mask[2:4, 2:4] = 3  # class 2
    mask[6, 6] = 255
    out = overlay_mask(image, mask, alpha=1.0)
    assert out.dtype == torch.uint8 and out.shape == (3, 8, 8)
    assert out[:, 2, 2].tolist() == list(CLASS_COLORS[3])
    assert out[:, 6, 6].tolist() == [255, 255, 255]
    assert torch.equal(out[:, 0, 0], to_uint8(image)[:, 0, 0])  # background untouched


def test_overlay_of_an_empty_mask_is_the_image():
    image = torch.rand(3, 8, 8)
    assert torch.equal(overlay_mask(image, torch.zeros(8, 8, dtype=torch.long)), to_uint8(image))


def test_draw_box_marks_the_box_edge():
    out = draw_box(torch.zeros(3, 20, 20), torch.tensor([5, 5, 14, 14]))
    assert out[:, 5, 10].sum() > 0 and out[:, 0, 0].sum() == 0


# torchvision's drawing utilities are the oracle: the course draws by hand, pixel for pixel the same.


@pytest.mark.parametrize("box", [[5, 5, 14, 14], [0, 0, 19, 15], [3, 7, 6, 10], [2, 1, 17, 4], [12.0, 4.0, 18.0, 9.0]])
def test_draw_box_draws_what_torchvision_draws(box):
    from torchvision.utils import draw_bounding_boxes

    image = torch.rand(3, 16, 20)
    ours = draw_box(image, torch.tensor(box))
    theirs = draw_bounding_boxes(to_uint8(image), torch.tensor([box]).float(), colors="white", width=2)
    assert torch.equal(ours, theirs), (ours != theirs).any(dim=0).nonzero().tolist()


def test_draw_box_wants_a_tensor_of_four_numbers():
    for box in ([1, 2, 3, 4], torch.tensor([1, 2, 3])):
        with pytest.raises(TypeError, match="tensor of 4 numbers"):
            draw_box(torch.zeros(3, 8, 8), box)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_overlay_draws_what_torchvision_draws(alpha):
    from torchvision.utils import draw_segmentation_masks

    from course_utils.data import ShapesScenes

    image, mask = ShapesScenes(1, image_size=96, seed=2)[0]
    mask[:3] = IGNORE_INDEX
    values = [v for v in mask.unique().tolist() if v != 0]
    colors = [(255, 255, 255) if v == IGNORE_INDEX else CLASS_COLORS[v] for v in values]
    theirs = draw_segmentation_masks(to_uint8(image), torch.stack([mask == v for v in values]), alpha, colors)
    assert torch.equal(overlay_mask(image, mask, alpha), theirs)


def test_show_images_one_axis_per_image_with_titles():
    fig = show_images([torch.rand(3, 8, 8)] * 5, titles=list("abcde"), ncols=3)
    visible = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [ax.get_title() for ax in visible] == list("abcde")


def test_plot_history_draws_train_and_validation():
    history = {
        "train_loss": [1.0, 0.5],
        "train_accuracy": [0.5, 0.9],
        "val_loss": [0.9, 0.6],
        "val_accuracy": [0.6, 0.8],
        "step_loss": [1.2, 0.9, 0.6, 0.4],
    }
    fig = plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 3 and len(acc_ax.lines) == 2
    assert list(acc_ax.lines[1].get_ydata()) == [0.6, 0.8]


def test_confusion_matrix_writes_every_count():
    cm = torch.tensor([[5, 1], [0, 7]])
    fig = plot_confusion_matrix(cm, ["a", "b"])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0", "1", "5", "7"]


def test_heatmaps_one_panel_per_class():
    fig = plot_heatmaps(torch.rand(3, 16, 16), torch.randn(3, 16, 16), ["x", "y", "z"])
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled[0] == "image" and [t.split()[0] for t in titled[1:]] == ["x", "y", "z"]


def test_heatmaps_are_drawn_alone_in_a_perceptually_uniform_colour_map():
    fig = plot_heatmaps(torch.rand(3, 16, 16), torch.randn(3, 16, 16), ["x", "y", "z"])
    maps = [ax for ax in fig.axes if ax.get_title().startswith(("x ", "y ", "z "))]
    assert len(maps) == 3
    for ax in maps:  # one image per panel (no photo blended under it), in viridis, not jet
        assert len(ax.images) == 1 and ax.images[0].get_cmap().name == "viridis"


def test_heatmaps_have_one_labelled_colorbar_on_the_shared_scale():
    scores = torch.randn(3, 16, 16)
    fig = plot_heatmaps(torch.rand(3, 16, 16), scores, ["x", "y", "z"])
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "class score (logit)"
    low, high = bars[0].get_ylim()
    assert (low, high) == pytest.approx((scores.min().item(), scores.max().item()))
    assert not any(
        ax.get_label() == "<colorbar>"
        for ax in plot_heatmaps(torch.rand(3, 16, 16), scores, ["x", "y", "z"], colorbar=False).axes
    )


def test_confusion_matrix_colorbar_is_optional():
    cm = torch.tensor([[5, 1], [0, 7]])
    assert len(plot_confusion_matrix(cm, ["a", "b"]).axes) == 1
    bars = [ax for ax in plot_confusion_matrix(cm, ["a", "b"], colorbar=True).axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "count"


# ----------------------------------------------------------------------------- solid masks, legends


def hand_made_mask():
    """4 x 5: background, every class value 1..7 once, and two ignored pixels."""
    mask = torch.zeros(4, 5, dtype=torch.long)
    mask.view(-1)[1:8] = torch.arange(1, 8)
    mask[3, 3:] = IGNORE_INDEX
    return mask


def test_mask_to_rgb_paints_each_value_its_class_colour():
    mask = hand_made_mask()
    out = mask_to_rgb(mask)
    assert out.dtype == torch.uint8 and out.shape == (3, 4, 5)
    for row in range(4):
        for col in range(5):
            value = mask[row, col].item()
            expected = [255, 255, 255] if value == IGNORE_INDEX else list(CLASS_COLORS[value])
            assert out[:, row, col].tolist() == expected, (row, col, value)
    background = out[:, 0, 0]
    assert background[0] == background[1] == background[2] and background[0] <= 64  # dark grey or black
    assert len({tuple(out[:, 0, i].tolist()) for i in range(5)}) == 5  # different classes, different colours


def test_mask_to_rgb_rejects_values_without_a_colour():
    with pytest.raises(ValueError, match="mask values"):
        mask_to_rgb(torch.tensor([[0, 9]]))


def legend_of(fig):
    (legend,) = fig.legends
    labels = [text.get_text() for text in legend.get_texts()]
    colours = [tuple(round(c * 255) for c in to_rgb(patch.get_facecolor())) for patch in legend.get_patches()]
    return dict(zip(labels, colours)), labels


def rgb_of(value):
    return tuple(mask_to_rgb(torch.tensor([[value]]))[:, 0, 0].tolist())


def test_add_class_legend_lists_the_given_values_in_mask_colours():
    fig, _ = plt.subplots()
    add_class_legend(fig, CLASSES, [0, 2, 5, IGNORE_INDEX])
    colours, labels = legend_of(fig)
    assert labels == ["background", CLASSES[1], CLASSES[4], "ignored (255)"]
    assert colours == {
        "background": rgb_of(0),
        CLASSES[1]: rgb_of(2),
        CLASSES[4]: rgb_of(5),
        "ignored (255)": rgb_of(IGNORE_INDEX),
    }


def test_add_class_legend_without_values_lists_every_class():
    fig, _ = plt.subplots()
    add_class_legend(fig, CLASSES)
    _, labels = legend_of(fig)
    assert labels == ["background", *CLASSES]


def test_add_class_legend_makes_room_below_a_tight_layout():
    fig, ax = plt.subplots(figsize=(4, 3))
    fig.tight_layout()
    bottom, height = ax.get_position().y0 * 3, ax.get_position().height * 3  # inches
    legend = add_class_legend(fig, CLASSES)
    fig.canvas.draw()
    assert fig.get_figheight() > 3
    box = ax.get_position()
    assert box.height * fig.get_figheight() == pytest.approx(height)  # the axes keep their size
    legend_top = legend.get_window_extent().y1 / fig.dpi
    assert legend_top <= box.y0 * fig.get_figheight() + 1e-6 and box.y0 * fig.get_figheight() > bottom


def scenes():
    """3 images of different sizes with true and predicted masks; class 2 (value 3) is in both rows."""
    images = [torch.rand(3, 8, 8), torch.rand(3, 8, 16), (torch.rand(3, 6, 6) * 255).to(torch.uint8)]
    true = [
        torch.zeros(8, 8, dtype=torch.long),
        torch.zeros(8, 16, dtype=torch.long),
        torch.zeros(6, 6, dtype=torch.long),
    ]
    predicted = [m.clone() for m in true]
    true[0][:4, :4] = 3
    true[1][:, 10:] = 6
    true[2][0, 0] = IGNORE_INDEX
    predicted[0][2:6, 2:6] = 3  # the same class, shifted
    predicted[2][3:, 3:] = 3
    return images, {"true": true, "predicted": predicted}


def panel(ax):
    return torch.from_numpy(np.asarray(ax.get_images()[0].get_array()).copy())


def test_show_segmentations_draws_images_then_solid_masks():
    images, rows = scenes()
    fig = show_segmentations(images, rows, CLASSES, titles=["a", "b", "c"])
    grid = [ax for ax in fig.axes if ax.get_images()]
    assert len(grid) == 9
    assert [ax.get_ylabel() for ax in grid[::3]] == ["image", "true", "predicted"]
    assert [ax.get_title() for ax in grid[:3]] == ["a", "b", "c"]
    assert torch.equal(panel(grid[0]), to_uint8(images[0]).permute(1, 2, 0))
    assert torch.equal(panel(grid[2]), images[2].permute(1, 2, 0))  # uint8 shown as is
    for r, masks in enumerate(rows.values(), start=1):
        for c, mask in enumerate(masks):
            assert torch.equal(panel(grid[3 * r + c]), mask_to_rgb(mask).permute(1, 2, 0))


def test_show_segmentations_keeps_a_class_colour_in_every_row():
    images, rows = scenes()
    fig = show_segmentations(images, rows, CLASSES)
    grid = [ax for ax in fig.axes if ax.get_images()]
    seen = set()
    for r, masks in enumerate(rows.values(), start=1):
        for c, mask in enumerate(masks):
            pixels = panel(grid[3 * r + c])[mask == 3]
            seen.update(tuple(p) for p in pixels.tolist())
    assert seen == {CLASS_COLORS[3]}  # one colour for class 2, in "true" and "predicted" alike


def test_show_segmentations_legend_lists_exactly_the_classes_present():
    images, rows = scenes()
    colours, labels = legend_of(show_segmentations(images, rows, CLASSES))
    assert labels == ["background", CLASSES[2], CLASSES[5], "ignored (255)"]
    assert all(
        colours[name] == rgb_of(value)
        for name, value in [("background", 0), (CLASSES[2], 3), (CLASSES[5], 6), ("ignored (255)", IGNORE_INDEX)]
    )
    rows = {
        "true": [
            torch.zeros(8, 8, dtype=torch.long),
            torch.ones(8, 16, dtype=torch.long),
            torch.zeros(6, 6, dtype=torch.long),
        ]
    }
    assert legend_of(show_segmentations(images, rows, CLASSES))[1] == ["background", CLASSES[0]]
    assert not show_segmentations(images, rows, CLASSES, legend=False).legends


def test_show_segmentations_checks_its_inputs():
    images, rows = scenes()
    with pytest.raises(ValueError, match="2 masks for 3 images"):
        show_segmentations(images, {"true": rows["true"][:2]}, CLASSES)
    with pytest.raises(ValueError, match="does not match"):
        show_segmentations(images, {"true": rows["true"][::-1]}, CLASSES)


def test_show_images_adds_a_legend_only_when_asked():
    images, rows = scenes()
    assert not show_images(images, masks=rows["true"]).legends
    fig = show_images(images, masks=rows["true"], class_names=CLASSES)
    colours, labels = legend_of(fig)
    assert labels == [CLASSES[2], CLASSES[5], "ignored (255)"]  # overlays leave the background as the image
    assert colours[CLASSES[5]] == rgb_of(6)
    shown = torch.from_numpy(np.asarray(fig.axes[2].get_images()[0].get_array()).copy())
    assert torch.equal(shown[1:, 1:], images[2].permute(1, 2, 0)[1:, 1:])  # a uint8 image under its overlay
