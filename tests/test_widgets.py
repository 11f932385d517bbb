"""FCNExplorer without a browser: set a control's value, then read the figure and the summary."""

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from course_utils.data import CLASSES
from course_utils.viz import mask_to_rgb, to_uint8
from course_utils.widgets import ALL_CLASSES, FCNExplorer

pytest.importorskip("ipywidgets")

SIZE = 32
#: image i: a strong class (score 2.0) in the top-left quarter, a weak one (score 1.0) in the
#: bottom-right quarter, every other score 0. So threshold 0.5 finds both, 1.5 only the strong
#: one and 2.0 (the slider's maximum) nothing.
OBJECTS = [("circle", "triangle"), ("cross", "ring"), ("square", "star")]
STRONG, WEAK = (slice(0, 16), slice(0, 16)), (slice(16, 32), slice(16, 32))


def synthetic_inputs():
    images = torch.rand(len(OBJECTS), 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    scores = torch.zeros(len(OBJECTS), len(CLASSES), SIZE, SIZE)
    masks = torch.zeros(len(OBJECTS), SIZE, SIZE, dtype=torch.long)
    for i, (strong, weak) in enumerate(OBJECTS):
        scores[i, CLASSES.index(strong)][STRONG] = 2.0
        scores[i, CLASSES.index(weak)][WEAK] = 1.0
        masks[i][STRONG] = CLASSES.index(strong) + 1
        masks[i][WEAK] = CLASSES.index(weak) + 1
    return images, scores, masks


@pytest.fixture
def explorer():
    images, scores, masks = synthetic_inputs()
    made = FCNExplorer(images, scores, masks, CLASSES, threshold=0.5)
    yield made
    plt.close("all")


def titles(figure):
    return [ax.get_title() for ax in figure.axes if ax.get_label() != "<colorbar>"]


def colorbars(figure):
    return [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]


def legend_labels(figure):
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def middle_picture(figure):
    return torch.from_numpy(figure.axes[1].images[0].get_array().data.copy())


def expected_overlay(index, mask):
    """The mask in solid class colours (the image does not show through)."""
    return mask_to_rgb(mask).permute(1, 2, 0)


# ----------------------------------------------------------------------------- initial state


def test_initial_state_is_drawn(explorer):
    assert isinstance(explorer.figure, Figure)
    assert titles(explorer.figure) == ["image 0", "predicted mask (threshold 0.50)", "true mask"]
    assert explorer.summary.value == "image 0: predicted circle, triangle; mIoU of this image 1.00"
    assert explorer.image.value == 0 and (explorer.image.min, explorer.image.max) == (0, 2)
    assert explorer.choice.value == ALL_CLASSES
    assert explorer.choice.options == (ALL_CLASSES, *CLASSES)
    assert explorer.threshold.value == 0.5
    assert (explorer.threshold.min, explorer.threshold.max) == (0.0, 2.0)  # the range of the scores
    # the controls, the summary and the picture are all in the one widget to display
    assert explorer.summary in explorer.widget.children
    assert explorer.picture in explorer.widget.children
    assert bytes(explorer.picture.value).startswith(b"\x89PNG")


def test_changing_a_control_sends_a_new_picture(explorer):
    first = bytes(explorer.picture.value)
    explorer.image.value = 1
    second = bytes(explorer.picture.value)
    explorer.threshold.value = 2.0
    assert second.startswith(b"\x89PNG") and len({first, second, bytes(explorer.picture.value)}) == 3


def test_the_middle_panel_shows_the_predicted_mask(explorer):
    _, _, masks = synthetic_inputs()
    assert torch.equal(middle_picture(explorer.figure), expected_overlay(0, masks[0]))


def test_masks_are_solid_with_a_legend_and_no_colorbar(explorer):
    _, _, masks = synthetic_inputs()
    true_panel = torch.from_numpy(explorer.figure.axes[2].images[0].get_array().data.copy())
    assert torch.equal(true_panel, mask_to_rgb(masks[0]).permute(1, 2, 0))
    assert legend_labels(explorer.figure) == ["background", "circle", "triangle"]
    assert not colorbars(explorer.figure)


# ----------------------------------------------------------------------------- controls


def test_moving_the_image_slider_redraws_for_that_image(explorer):
    before = explorer.summary.value
    explorer.image.value = 2
    assert explorer.summary.value != before
    assert explorer.summary.value == "image 2: predicted square, star; mIoU of this image 1.00"
    assert titles(explorer.figure)[0] == "image 2"
    images, _, masks = synthetic_inputs()
    shown = torch.from_numpy(explorer.figure.axes[0].images[0].get_array().data.copy())
    assert torch.equal(shown, to_uint8(images[2]).permute(1, 2, 0))
    assert torch.equal(middle_picture(explorer.figure), expected_overlay(2, masks[2]))


def test_choosing_a_class_shows_its_heatmap(explorer):
    explorer.choice.value = "triangle"
    assert titles(explorer.figure)[1] == "'triangle' score, contour at 0.50"
    heatmap = explorer.figure.axes[1].images[0].get_array()  # the map alone, not blended over the image
    _, scores, _ = synthetic_inputs()
    assert torch.equal(torch.from_numpy(heatmap.data.copy()), scores[0, CLASSES.index("triangle")])
    (bar,) = colorbars(explorer.figure)
    assert bar.get_ylabel() == "'triangle' score (logit)"
    assert bar.get_ylim() == pytest.approx((0.0, 2.0))  # the score range of all images and classes
    assert legend_labels(explorer.figure) == ["background", "circle", "triangle"]  # the true mask's
    # the class shown does not change what is predicted
    assert explorer.summary.value == "image 0: predicted circle, triangle; mIoU of this image 1.00"
    explorer.choice.value = ALL_CLASSES
    assert titles(explorer.figure)[1] == "predicted mask (threshold 0.50)"


def test_the_threshold_decides_which_classes_are_predicted(explorer):
    explorer.threshold.value = 1.5  # the weak triangle (score 1.0) becomes background
    # background 512 / 768, circle 1, triangle 0 -> 0.56
    assert explorer.summary.value == "image 0: predicted circle; mIoU of this image 0.56"
    assert titles(explorer.figure)[1] == "predicted mask (threshold 1.50)"
    _, _, masks = synthetic_inputs()
    only_strong = masks[0].clone()
    only_strong[WEAK] = 0
    assert torch.equal(middle_picture(explorer.figure), expected_overlay(0, only_strong))

    explorer.threshold.value = 2.0  # no score exceeds the slider's maximum
    # background 512 / 1024, circle 0, triangle 0 -> 0.17
    assert explorer.summary.value == "image 0: predicted nothing; mIoU of this image 0.17"

    explorer.threshold.value = 0.0  # the zero scores are not above 0, so the background stays 0
    assert explorer.summary.value == "image 0: predicted circle, triangle; mIoU of this image 1.00"


def test_the_threshold_stays_when_the_image_changes(explorer):
    explorer.threshold.value = 1.5
    explorer.image.value = 1
    assert explorer.summary.value == "image 1: predicted cross; mIoU of this image 0.56"


# ----------------------------------------------------------------------------- static fallback


def test_render_draws_given_settings_without_touching_the_controls(explorer):
    summary, figure = explorer.summary.value, explorer.figure
    drawn = explorer.render(index=1, choice="ring", threshold=1.5)
    try:
        assert isinstance(drawn, Figure) and drawn is not figure
        assert titles(drawn) == ["image 1", "'ring' score, contour at 1.50", "true mask"]
        assert (explorer.image.value, explorer.choice.value, explorer.threshold.value) == (0, ALL_CLASSES, 0.5)
        assert explorer.summary.value == summary
        assert explorer.figure is figure
    finally:
        plt.close(drawn)


def test_render_without_arguments_uses_the_controls(explorer):
    explorer.image.value = 2
    drawn = explorer.render(threshold=1.5)
    try:
        assert titles(drawn)[:2] == ["image 2", "predicted mask (threshold 1.50)"]
        _, _, masks = synthetic_inputs()
        only_strong = masks[2].clone()
        only_strong[WEAK] = 0
        assert torch.equal(middle_picture(drawn), expected_overlay(2, only_strong))
    finally:
        plt.close(drawn)


# ----------------------------------------------------------------------------- errors, cleanup


def test_mismatched_lengths_raise():
    images, scores, masks = synthetic_inputs()
    with pytest.raises(ValueError, match="as many images"):
        FCNExplorer(images[:2], scores, masks, CLASSES)
    with pytest.raises(ValueError, match="as many images"):
        FCNExplorer(images, scores, masks[:1], CLASSES)


def test_wrong_number_of_class_names_raises():
    images, scores, masks = synthetic_inputs()
    with pytest.raises(ValueError, match="7 classes but 6 class names"):
        FCNExplorer(images, scores, masks, CLASSES[:6])


def test_old_figures_are_closed(explorer):
    open_before = len(plt.get_fignums())
    for step in range(12):
        explorer.image.value = step % 3
        explorer.threshold.value = [0.5, 1.5][step % 2]
        explorer.choice.value = [ALL_CLASSES, "circle", "star"][step % 3]
    assert len(plt.get_fignums()) <= open_before
    assert not plt.fignum_exists(explorer.figure.number)  # shown in the Output widget only
    assert titles(explorer.figure)[0] == f"image {11 % 3}"
