"""Plot helpers draw what they claim (checked on pixels and axes, not by eye)."""

import matplotlib.pyplot as plt
import pytest
import torch

from course_utils.viz import (
    CLASS_COLORS,
    draw_box,
    overlay_mask,
    plot_confusion_matrix,
    plot_heatmaps,
    plot_history,
    show_images,
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


def test_show_images_one_axis_per_image_with_titles():
    fig = show_images([torch.rand(3, 8, 8)] * 5, titles=list("abcde"), ncols=3)
    visible = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [ax.get_title() for ax in visible] == list("abcde")


def test_plot_history_draws_train_and_validation():
    history = {"train_loss": [1.0, 0.5], "train_accuracy": [0.5, 0.9], "val_loss": [0.9, 0.6],
               "val_accuracy": [0.6, 0.8], "step_loss": [1.2, 0.9, 0.6, 0.4]}
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
