"""Tests for course_utils.data (the synthetic shapes data sets)."""

import itertools
import math
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.ops import masks_to_boxes

from course_utils.data import (
    CLASSES,
    IGNORE_INDEX,
    MAX_DRAWING_WORKERS,
    NUM_CLASSES,
    OBJECT_GAP,
    PARALLEL_DRAWING_MIN_ITEMS,
    RADIUS_RANGE,
    ShapesDataset,
    ShapesScenes,
    bounding_box,
    class_index,
    drawing_workers,
    fill_ratio,
    materialize,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def items_equal(a, b) -> bool:
    """True when two items (tuples of tensors and ints) are identical."""
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(a, b))


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Boolean (H, W) mask grown by `radius` pixels (square window)."""
    x = mask.float()[None, None]
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0


# ---------------------------------------------------------------------------------------------
# Classes
# ---------------------------------------------------------------------------------------------


def test_class_constants():
    assert len(CLASSES) == NUM_CLASSES == 7
    assert len(set(CLASSES)) == 7
    assert IGNORE_INDEX == 255
    for k, name in enumerate(CLASSES):
        assert class_index(name) == k


def test_class_index_rejects_unknown_names_and_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown class 'hexagon'.*circle.*crescent"):
        class_index("hexagon")


# ---------------------------------------------------------------------------------------------
# ShapesDataset: shapes, dtypes, mask convention
# ---------------------------------------------------------------------------------------------


def test_item_shapes_dtypes_and_ranges():
    ds = ShapesDataset(20, image_size=64, seed=0)
    for i in range(len(ds)):
        image, label, mask = ds[i]
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert isinstance(label, int) and 0 <= label < NUM_CLASSES
        assert mask.shape == (64, 64) and mask.dtype == torch.int64
        assert set(mask.unique().tolist()) == {0, label + 1}


def test_other_image_sizes():
    image, _, mask = ShapesDataset(3, image_size=40)[2]
    assert image.shape == (3, 40, 40) and mask.shape == (40, 40)


def test_object_is_fully_inside_the_image_and_inside_its_circle():
    ds = ShapesDataset(100, seed=4)
    ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    for i in range(len(ds)):
        _, label, mask = ds[i]
        shape = ds.shape(i)
        assert shape.label == label
        border = torch.cat([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert (border == 0).all()
        obj = mask == label + 1
        distance = torch.hypot(xs[obj] - shape.x, ys[obj] - shape.y)
        assert distance.max() <= shape.radius + 1
        lo, hi = (f * 64 for f in RADIUS_RANGE)
        assert lo <= shape.radius <= hi


def test_objects_are_big_enough_to_recognise():
    ds = ShapesDataset(70, image_size=64, seed=5)
    for i in range(len(ds)):
        _, _, mask = ds[i]
        x_min, y_min, x_max, y_max = bounding_box(mask).tolist()
        assert max(x_max - x_min, y_max - y_min) + 1 >= 18  # smallest radius is 12.8 px


def test_boundary_ignore_band():
    k = 3
    plain, banded = ShapesDataset(30, seed=2), ShapesDataset(30, seed=2, boundary_ignore=k)
    for i in range(len(plain)):
        image, label, mask = plain[i]
        image_b, label_b, mask_b = banded[i]
        assert torch.equal(image, image_b) and label == label_b  # only the mask changes
        assert set(mask_b.unique().tolist()) == {0, label + 1, IGNORE_INDEX}
        band = mask_b == IGNORE_INDEX
        assert torch.equal(mask_b[~band], mask[~band])  # elsewhere the labels are kept
        obj = mask > 0
        # Every ignored pixel is near both the object and the background ...
        assert (band <= dilate(obj, k) & dilate(~obj, k)).all()
        # ... and the whole boundary (pixels with a neighbour of the other kind) is ignored.
        boundary = (dilate(obj, 1) & ~obj) | (dilate(~obj, 1) & obj)
        assert band[boundary].all()
        # The band is about k pixels wide: its area is close to k times the boundary length.
        outline = (dilate(obj, 1) & ~obj).sum().item()
        assert 0.5 * k * outline <= band.sum().item() <= 1.5 * k * outline


def test_wider_boundary_ignores_more_pixels():
    counts = [(ShapesDataset(1, boundary_ignore=k)[0][2] == IGNORE_INDEX).sum().item() for k in (1, 3, 5)]
    assert 0 < counts[0] < counts[1] < counts[2]


def test_backgrounds_are_not_trivial_and_objects_stand_out():
    ds = ShapesDataset(100, seed=6)
    background_means = []
    for i in range(len(ds)):
        image, _, mask = ds[i]
        obj = mask > 0
        around = dilate(obj, 3) & ~obj
        background = image[:, ~obj]  # (3, P)
        assert background.std(dim=1).mean() > 0.03  # not a flat colour
        contrast = (image[:, obj].mean(dim=1) - image[:, around].mean(dim=1)).norm()
        assert contrast > 0.2
        background_means.append(background.mean(dim=1))
    assert (torch.stack(background_means).std(dim=0) > 0.1).all()  # varies between images


def test_dataloader_batches():
    images, labels, masks = next(iter(DataLoader(ShapesDataset(16), batch_size=8)))
    assert images.shape == (8, 3, 64, 64) and labels.shape == (8,) and masks.shape == (8, 64, 64)


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


def test_same_arguments_give_identical_items():
    a, b = ShapesDataset(50, seed=7), ShapesDataset(50, seed=7)
    for i in (0, 1, 13, 49):
        assert items_equal(a[i], b[i])
        assert items_equal(a[i], a[i])


def test_different_seeds_give_different_items():
    a, b = ShapesDataset(50, seed=0), ShapesDataset(50, seed=1)
    for i in range(10):
        assert not torch.equal(a[i][0], b[i][0])
    assert [a.label(i) for i in range(50)] != [b.label(i) for i in range(50)]


def test_access_order_is_irrelevant():
    forward = [ShapesDataset(12, seed=3)[i] for i in range(12)]
    ds = ShapesDataset(12, seed=3)
    for i in [11, 5, 0, 7, 2, 9, 1, 10, 3, 8, 4, 6]:
        assert items_equal(ds[i], forward[i])


def test_negative_index_and_out_of_range():
    ds = ShapesDataset(10)
    assert items_equal(ds[-1], ds[9])
    for bad in (10, -11, 1000):
        with pytest.raises(IndexError):
            ds[bad]


FINGERPRINT_CODE = """
import hashlib
from course_utils.data import ShapesDataset, ShapesScenes

def fingerprint():
    h = hashlib.sha256()
    dataset = ShapesDataset(500, seed=5, boundary_ignore=2)
    for image, label, mask in (dataset[i] for i in (0, 123, 499)):
        h.update(image.numpy().tobytes() + bytes([label]) + mask.numpy().tobytes())
    image, mask = ShapesScenes(10, seed=5)[3]
    h.update(image.numpy().tobytes() + mask.numpy().tobytes())
    return h.hexdigest()
"""


def test_same_bytes_in_a_fresh_process():
    namespace = {}
    exec(FINGERPRINT_CODE, namespace)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", FINGERPRINT_CODE + "print(fingerprint())"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == namespace["fingerprint"]()


def test_last_item_of_a_million_is_drawn_alone(monkeypatch):
    """Items are drawn on demand: asking for the last one of a million draws that one only."""
    import course_utils.data as data_module

    drawn = []
    paint_scene = data_module.paint_scene
    monkeypatch.setattr(
        data_module, "paint_scene", lambda *args, **kwargs: drawn.append(1) or paint_scene(*args, **kwargs)
    )
    ds = ShapesDataset(1_000_000, seed=0)
    image, label, mask = ds[999_999]
    scene_image, scene_mask = ShapesScenes(1_000_000)[999_999]
    assert len(drawn) == 2
    assert image.shape == (3, 64, 64) and scene_mask.shape == (128, 128)
    assert items_equal(ds[999_999], (image, label, mask))


def test_repr_gives_the_arguments_and_rebuilds_the_dataset():
    ds = ShapesDataset(30, image_size=48, seed=4, boundary_ignore=2)
    assert repr(ds) == "ShapesDataset(num_samples=30, image_size=48, seed=4, boundary_ignore=2)"
    scenes = ShapesScenes(5, image_size=(96, 160), seed=2, num_objects=(2, 3), object_scale=48)
    assert repr(scenes) == (
        "ShapesScenes(num_samples=5, image_size=(96, 160), seed=2, num_objects=(2, 3), object_scale=48)"
    )
    namespace = {"ShapesDataset": ShapesDataset, "ShapesScenes": ShapesScenes}
    assert items_equal(eval(repr(ds), namespace)[7], ds[7])
    assert items_equal(eval(repr(scenes), namespace)[4], scenes[4])


# ---------------------------------------------------------------------------------------------
# Labels and geometry
# ---------------------------------------------------------------------------------------------


def test_labels_are_balanced():
    ds = ShapesDataset(700, seed=0)
    labels = [ds.label(i) for i in range(len(ds))]
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    assert ((60 <= counts) & (counts <= 140)).all(), counts
    assert labels[:14] != [i % NUM_CLASSES for i in range(14)]  # shuffled, not 0, 1, 2, ...
    assert all(ds[i][1] == labels[i] for i in range(0, 700, 50))  # label() agrees with items


def test_every_class_keeps_its_fill_ratio_under_rotation():
    """Area / circumscribed-circle area is rotation invariant and different for every class.

    Fails if two classes share a geometry (e.g. square and triangle), or if a class changes
    geometry under rotation (e.g. a rectangle whose aspect varies).
    """
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, size=8)
    ranges = []
    for label in range(NUM_CLASSES):
        ratios = [fill_ratio(label, radius=40.0, angle=a) for a in angles]
        assert max(ratios) - min(ratios) < 0.03, CLASSES[label]
        ranges.append((min(ratios), max(ratios), CLASSES[label]))
    ranges.sort()
    for (_, high, name), (low, _, next_name) in zip(ranges, ranges[1:]):
        assert low - high > 0.03, f"{name} and {next_name} are too alike"


def test_dataset_masks_have_the_fill_ratio_of_their_class():
    reference = np.array([fill_ratio(label) for label in range(NUM_CLASSES)])
    ds = ShapesDataset(140, seed=9)
    correct = 0
    for i in range(len(ds)):
        _, label, mask = ds[i]
        radius = ds.shape(i).radius
        ratio = (mask > 0).sum().item() / (math.pi * radius**2)
        correct += int(np.abs(reference - ratio).argmin() == label)
    assert correct >= 0.95 * len(ds)


def test_ring_has_a_hole_and_circle_has_none():
    for name, centre_label in (("ring", 0), ("circle", class_index("circle") + 1)):
        ds = ShapesDataset(7, seed=0)
        i = next(i for i in range(7) if ds.label(i) == class_index(name))
        shape, mask = ds.shape(i), ds[i][2]
        assert mask[int(shape.y), int(shape.x)].item() == centre_label


# ---------------------------------------------------------------------------------------------
# ShapesScenes
# ---------------------------------------------------------------------------------------------


def check_scene(scenes: ShapesScenes, index: int):
    image, mask = scenes[index]
    height, width = scenes.image_size
    assert image.shape == (3, height, width) and image.dtype == torch.float32
    assert mask.shape == (height, width) and mask.dtype == torch.int64
    assert 0.0 <= image.min() and image.max() <= 1.0
    shapes = scenes.shapes(index)
    labels = [s.label for s in shapes]
    assert scenes.min_objects <= len(shapes) <= scenes.max_objects
    assert len(set(labels)) == len(labels)  # different classes
    assert set(mask.unique().tolist()) == {0} | {label + 1 for label in labels}
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    for s in shapes:
        lo, hi = (f * scenes.object_scale for f in RADIUS_RANGE)
        assert lo <= s.radius <= hi  # absolute sizes, as in ShapesDataset(object_scale)
        assert s.radius <= s.x <= width - s.radius and s.radius <= s.y <= height - s.radius
        obj = mask == s.label + 1
        assert obj.sum() > 0.3 * math.pi * s.radius**2  # visible, not hidden by another
        assert torch.hypot(xs[obj] - s.x, ys[obj] - s.y).max() <= s.radius + 1
    for a, b in itertools.combinations(shapes, 2):  # circles don't overlap, with a gap
        assert math.hypot(a.x - b.x, a.y - b.y) >= a.radius + b.radius + OBJECT_GAP - 1e-6


def test_scenes_have_distinct_non_overlapping_objects():
    scenes = ShapesScenes(40, seed=0)
    for i in range(len(scenes)):
        check_scene(scenes, i)
    counts = {len(scenes.shapes(i)) for i in range(len(scenes))}
    assert counts == {2, 3, 4}


def test_rectangular_and_large_scenes():
    for scenes in (
        ShapesScenes(10, image_size=(96, 160), seed=1),
        ShapesScenes(10, image_size=200, num_objects=7, seed=2),
        ShapesScenes(10, image_size=(128, 64), num_objects=(1, 2), object_scale=48),
    ):
        for i in range(len(scenes)):
            check_scene(scenes, i)


def test_scenes_are_deterministic():
    a, b, c = ShapesScenes(20, seed=3), ShapesScenes(20, seed=3), ShapesScenes(20, seed=4)
    for i in (0, 19, 7):
        assert items_equal(a[i], b[i])
        assert not torch.equal(a[i][0], c[i][0])


# ---------------------------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ShapesDataset(0), "a dataset needs at least one sample, got 0"),
        (lambda: ShapesDataset(-5), "at least one sample"),
        (lambda: ShapesDataset(2.5), "num_samples must be an integer"),
        (lambda: ShapesDataset(10, image_size=16), "image_size must be at least 32, got 16"),
        (lambda: ShapesDataset(10, image_size=64.0), "image_size must be an integer"),
        (lambda: ShapesDataset(10, seed=-1), "seed must be at least 0"),
        (lambda: ShapesDataset(10, boundary_ignore=-1), "boundary_ignore must be at least 0"),
        (lambda: ShapesScenes(0), "at least one sample"),
        (lambda: ShapesScenes(10, image_size=(128, 20)), "image width must be at least 32"),
        (lambda: ShapesScenes(10, image_size=(128, 128, 3)), r"\(H, W\) pair"),
        (lambda: ShapesScenes(10, num_objects=(2, 8)), "at most 7"),
        (lambda: ShapesScenes(10, num_objects=(3, 2)), "num_objects must be at least 3"),
        (lambda: ShapesScenes(10, num_objects=0), "num_objects must be at least 1"),
        (lambda: ShapesScenes(10, image_size=64, num_objects=(2, 4)), "do not fit"),
        (lambda: ShapesScenes(10, image_size=64, object_scale=128), "too large"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---------------------------------------------------------------------------------------------
# materialize and bounding_box
# ---------------------------------------------------------------------------------------------


def test_materialize_stacks_every_item():
    ds = ShapesDataset(9, seed=1)
    images, labels, masks = materialize(ds)
    assert images.shape == (9, 3, 64, 64) and labels.shape == (9,) and masks.shape == (9, 64, 64)
    assert labels.dtype == torch.int64
    for i in range(len(ds)):
        assert items_equal((images[i], labels[i].item(), masks[i]), ds[i])
    scene_images, scene_masks = materialize(ShapesScenes(3, image_size=(96, 128)))
    assert scene_images.shape == (3, 3, 96, 128) and scene_masks.shape == (3, 96, 128)


def test_materialize_with_worker_processes_draws_the_very_same_tensors():
    ds = ShapesDataset(150, image_size=32, seed=4)  # 3 batches: the last one short
    in_process, in_workers = materialize(ds, workers=0), materialize(ds, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(in_process, in_workers))
    assert [t.dtype for t in in_workers] == [torch.float32, torch.int64, torch.int64]
    assert items_equal((in_workers[0][149], in_workers[1][149].item(), in_workers[2][149]), ds[149])


def test_only_large_datasets_are_drawn_by_one_worker_per_core(monkeypatch):
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "fork")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert drawing_workers(PARALLEL_DRAWING_MIN_ITEMS - 1) == 0 and drawing_workers(PARALLEL_DRAWING_MIN_ITEMS) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)), raising=False)
    assert drawing_workers(10_000) == MAX_DRAWING_WORKERS
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert drawing_workers(10_000) == 0  # one core: a worker would only add its start-up
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "spawn")
    assert drawing_workers(10_000) == 0  # a worker that imports torch first costs seconds


def test_materialize_refuses_an_empty_dataset():
    with pytest.raises(ValueError, match="empty dataset"):
        materialize(torch.utils.data.TensorDataset(torch.empty(0, 3, 8, 8)))


def test_materialize_progress_goes_to_stderr(capsys):
    materialize(ShapesDataset(4), progress=True)
    captured = capsys.readouterr()
    assert "4/4" in captured.err and captured.out == ""


def test_bounding_box_of_a_hand_made_mask():
    mask = torch.zeros(10, 12, dtype=torch.int64)
    mask[2:5, 3:8] = 4  # rows 2..4, columns 3..7
    mask[0, :] = IGNORE_INDEX  # ignored pixels are not part of the object
    assert bounding_box(mask).tolist() == [3.0, 2.0, 7.0, 4.0]
    batch = torch.stack([mask, torch.roll(mask, shifts=1, dims=1)])
    assert bounding_box(batch).tolist() == [[3.0, 2.0, 7.0, 4.0], [4.0, 2.0, 8.0, 4.0]]


def test_bounding_box_agrees_with_torchvision():
    ds = ShapesDataset(20, seed=8)
    for i in range(len(ds)):
        mask = ds[i][2]
        assert torch.equal(bounding_box(mask), masks_to_boxes((mask > 0)[None])[0])


def test_bounding_box_of_an_empty_mask_raises():
    with pytest.raises(ValueError, match="no object"):
        bounding_box(torch.zeros(8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="no object"):
        bounding_box(torch.full((8, 8), IGNORE_INDEX))


def test_the_shared_grids_and_interpolation_matrices_cannot_be_changed_by_a_caller():
    """Each is computed once per size and shared by every item: a caller writing into one would
    change every image drawn after it."""
    from course_utils.data import _linear_interpolation_matrix, _pixel_grid

    assert np.array_equal(_pixel_grid(3, 5), np.mgrid[0:3, 0:5]) and _pixel_grid(3, 5) is _pixel_grid(3, 5)
    assert np.allclose(_linear_interpolation_matrix(5, 3) @ np.array([0.0, 1.0, 4.0]), [0, 0.5, 1, 2.5, 4])
    for shared in (_pixel_grid(3, 5), _linear_interpolation_matrix(5, 3)):
        with pytest.raises(ValueError, match="read-only"):
            shared[0, 0] = 1
