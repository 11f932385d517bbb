"""Synthetic shapes: a segmentation data set generated on the fly, with no downloads.

Two data sets share one drawing engine:

    ShapesDataset   one object per image      item -> image (3, H, W), label int, mask (H, W)
    ShapesScenes    2-4 objects per image     item -> image (3, H, W), mask (H, W)

Masks follow the PASCAL VOC convention used throughout the course:

    0              background
    k + 1          a pixel of an object of class k   (k indexes CLASSES)
    IGNORE_INDEX   "don't know" pixels on the object boundary (optional, ShapesDataset only)

Every item is drawn from its own random generator, seeded with (seed, index). So item i is the
same tensor whatever the order of access, in any process, and item 999_999 of a million-sample
data set costs no more than item 0: nothing is precomputed.

The seven shapes keep their class under any rotation, scale and colour, and they differ in how
much of their circumscribed circle they fill (`fill_ratio` below):

    circle 1.00   ring 0.75   square 0.64   cross 0.54   crescent 0.46   triangle 0.41   star 0.36
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import numbers
import os
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.path import Path
from torch.utils.data import DataLoader, Dataset

from .i18n import tr
from .progress import progress_bar

CLASSES = ("circle", "triangle", "square", "star", "cross", "ring", "crescent")
NUM_CLASSES = len(CLASSES)
IGNORE_INDEX = 255

MIN_IMAGE_SIZE = 32
#: An object's radius (of its circumscribed circle) is this fraction of the image size.
RADIUS_RANGE = (0.2, 0.4)
#: Pixels kept free between an object's circle and the image border.
BORDER_MARGIN = 1.0
#: Pixels kept free between the circles of two objects in a scene.
OBJECT_GAP = 3.0
#: Smallest colour distance (RGB in [0, 1]) between an object and the background under it.
MIN_CONTRAST = 0.3


def class_index(name: str) -> int:
    """Index of a class name in CLASSES, e.g. class_index("star") == 3."""
    if name not in CLASSES:
        raise ValueError(tr("unknown class {name!r}; valid names are {names}", name=name, names=", ".join(CLASSES)))
    return CLASSES.index(name)


# ---------------------------------------------------------------------------------------------
# Geometry: each shape in "unit" coordinates, centred on 0 and inside the unit circle
# ---------------------------------------------------------------------------------------------


def _star_polygon(num_points: int, inner_radius: float) -> np.ndarray:
    """Vertices (2 * num_points, 2) alternating between radius 1 and inner_radius."""
    angles = np.pi / 2 + np.arange(2 * num_points) * np.pi / num_points
    radii = np.where(np.arange(2 * num_points) % 2 == 0, 1.0, inner_radius)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _regular_polygon(num_sides: int, first_angle: float) -> np.ndarray:
    """Vertices (num_sides, 2) of a regular polygon inscribed in the unit circle."""
    angles = first_angle + np.arange(num_sides) * 2 * np.pi / num_sides
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _cross_polygon(half_width: float) -> np.ndarray:
    """Vertices (12, 2) of a plus sign whose arm corners touch the unit circle."""
    a, b = half_width, math.sqrt(1 - half_width**2)
    return np.array(
        [(a, b), (a, a), (b, a), (b, -a), (a, -a), (a, -b), (-a, -b), (-a, -a), (-b, -a), (-b, a), (-a, a), (-a, b)]
    )


_POLYGONS = {
    "triangle": Path(_regular_polygon(3, np.pi / 2)),
    "square": Path(_regular_polygon(4, np.pi / 4)),
    "star": Path(_star_polygon(5, inner_radius=0.38)),
    "cross": Path(_cross_polygon(half_width=0.25)),
}
RING_INNER_RADIUS = 0.5
#: A crescent is the unit disk minus a disk of this radius, shifted right by this offset.
CRESCENT_BITE_RADIUS, CRESCENT_BITE_OFFSET = 0.8, 0.45


def inside_unit_shape(label: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean array, same shape as x and y: which unit-coordinate points lie in the shape."""
    name = CLASSES[label]
    if name in ("circle", "ring", "crescent"):
        r = np.hypot(x, y)
        if name == "circle":
            return r <= 1
        if name == "ring":
            return (r <= 1) & (r >= RING_INNER_RADIUS)
        return (r <= 1) & (np.hypot(x - CRESCENT_BITE_OFFSET, y) > CRESCENT_BITE_RADIUS)
    points = np.stack([x.ravel(), y.ravel()], axis=1)
    return _POLYGONS[name].contains_points(points).reshape(x.shape)


@dataclass(frozen=True)
class Shape:
    """One object in an image: its class, centre (x, y) in pixels, radius in pixels, angle.

    The radius is that of the circumscribed circle: the object lies inside the disk of that
    radius around (x, y). Pixel (row i, column j) covers [j, j+1] x [i, i+1].
    """

    label: int
    x: float
    y: float
    radius: float
    angle: float  # radians


def rasterize(shape: Shape, height: int, width: int, samples: int = 3) -> np.ndarray:
    """Fraction of each pixel covered by the shape: float32 (height, width) in [0, 1].

    Each pixel is tested at samples x samples points (supersampling). Only the pixels of the
    shape's bounding square are tested, so small shapes in large images are cheap.
    """
    coverage = np.zeros((height, width), dtype=np.float32)
    x0, x1 = max(0, int(shape.x - shape.radius) - 1), min(width, int(shape.x + shape.radius) + 2)
    y0, y1 = max(0, int(shape.y - shape.radius) - 1), min(height, int(shape.y + shape.radius) + 2)
    if x0 >= x1 or y0 >= y1:
        return coverage
    offsets = (np.arange(samples) + 0.5) / samples  # sub-pixel sample positions
    xs = (np.arange(x0, x1)[:, None] + offsets).ravel()  # (W' * samples,)
    ys = (np.arange(y0, y1)[:, None] + offsets).ravel()  # (H' * samples,)
    dx, dy = np.meshgrid((xs - shape.x) / shape.radius, (ys - shape.y) / shape.radius)
    cos, sin = math.cos(shape.angle), math.sin(shape.angle)
    # Rotate the sample points by -angle: that rotates the shape by +angle.
    inside = inside_unit_shape(shape.label, cos * dx + sin * dy, -sin * dx + cos * dy)
    hits = inside.reshape(y1 - y0, samples, x1 - x0, samples).mean(axis=(1, 3))
    coverage[y0:y1, x0:x1] = hits
    return coverage


def fill_ratio(label: int, radius: float = 50.0, angle: float = 0.0) -> float:
    """Area of a shape divided by the area of its circumscribed circle (rotation invariant)."""
    size = int(2 * radius + 4)
    hard_mask = rasterize(Shape(label, size / 2, size / 2, radius, angle), size, size) >= 0.5
    return float(hard_mask.sum() / (math.pi * radius**2))


# ---------------------------------------------------------------------------------------------
# Painting: backgrounds, clutter, objects
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _linear_interpolation_matrix(size_out: int, size_in: int) -> np.ndarray:
    """(size_out, size_in) matrix M such that M @ v linearly resamples a vector v. Computed once
    per pair of sizes (every item uses a few), and read-only, since every caller shares it."""
    positions = np.linspace(0, size_in - 1, size_out)
    left = np.minimum(positions.astype(int), size_in - 2)
    weight_right = positions - left
    matrix = np.zeros((size_out, size_in))
    matrix[np.arange(size_out), left] = 1 - weight_right
    matrix[np.arange(size_out), left + 1] = weight_right
    matrix.flags.writeable = False
    return matrix


@functools.lru_cache(maxsize=16)
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """np.mgrid[0:height, 0:width]: (2, H, W), each pixel's row and column. Computed once per
    image size, and read-only, since every caller shares it."""
    grid = np.mgrid[0:height, 0:width]
    grid.flags.writeable = False
    return grid


def smooth_noise(
    rng: np.random.Generator, height: int, width: int, channels: int = 3, grid: int = 4, scale: float = 1.0
) -> np.ndarray:
    """Low-frequency noise (channels, H, W): a random grid x grid image, bilinearly upsampled.

    Bilinear upsampling is linear, so it is two matrix products: one for rows, one for columns.
    """
    coarse = rng.normal(0.0, scale, size=(channels, grid, grid))
    rows = _linear_interpolation_matrix(height, grid)  # (H, grid)
    cols = _linear_interpolation_matrix(width, grid)  # (W, grid)
    return rows @ coarse @ cols.T  # (H, grid) @ (C, grid, grid) @ (grid, W) -> (C, H, W)


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A two-colour linear gradient in a random direction plus smooth noise: (3, H, W)."""
    color_a, color_b = rng.uniform(0, 1, size=(2, 3, 1, 1))
    direction = rng.uniform(0, 2 * np.pi)
    ys, xs = _pixel_grid(height, width) / max(height, width)
    t = np.cos(direction) * xs + np.sin(direction) * ys  # position along the gradient
    t = (t - t.min()) / (t.max() - t.min() + 1e-8)  # (H, W) in [0, 1]
    gradient = color_a + (color_b - color_a) * t
    grid = int(rng.integers(3, 7))
    return gradient + smooth_noise(rng, height, width, grid=grid, scale=0.12)


def draw_clutter_lines(rng: np.random.Generator, image: np.ndarray, max_lines: int = 3) -> None:
    """Paint 0..max_lines thin random line segments onto image (3, H, W), in place."""
    _, height, width = image.shape
    ys, xs = _pixel_grid(height, width) + 0.5
    for _ in range(int(rng.integers(0, max_lines + 1))):
        (ax, bx), (ay, by) = rng.uniform(0, width, 2), rng.uniform(0, height, 2)
        # Distance from every pixel centre to the segment A-B.
        abx, aby = bx - ax, by - ay
        t = np.clip(((xs - ax) * abx + (ys - ay) * aby) / (abx**2 + aby**2 + 1e-8), 0, 1)
        distance = np.hypot(xs - ax - t * abx, ys - ay - t * aby)
        alpha = np.clip(rng.uniform(0.6, 1.4) - distance, 0, 1)  # ~1 px wide, soft edges
        color = rng.uniform(0, 1, size=(3, 1, 1))
        image[:] = image * (1 - alpha) + color * alpha


def pick_object_color(rng: np.random.Generator, background_pixels: np.ndarray, num_candidates: int = 16) -> np.ndarray:
    """A random colour (3,) that stands out against every background pixel (P, 3) below it.

    Draws candidates and keeps the first whose distance to the closest background colour is at
    least MIN_CONTRAST (or, if none is, the candidate that comes closest).
    """
    candidates = rng.uniform(0, 1, size=(num_candidates, 3))
    pixels = background_pixels[:: max(1, len(background_pixels) // 256)]  # at most ~256 pixels
    distances = np.linalg.norm(candidates[:, None, :] - pixels[None, :, :], axis=2)
    worst_contrast = distances.min(axis=1)  # (num_candidates,)
    good = np.flatnonzero(worst_contrast >= MIN_CONTRAST)
    best = good[0] if len(good) else int(worst_contrast.argmax())
    return candidates[best]


def paint_scene(
    rng: np.random.Generator, shapes: list[Shape], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw shapes over a random cluttered background.

    Returns image float32 (3, H, W) in [0, 1] and mask int64 (H, W): 0 background, label+1
    on the pixels that are at least half covered by an object.
    """
    image = random_background(rng, height, width)
    draw_clutter_lines(rng, image)
    mask = np.zeros((height, width), dtype=np.int64)
    for shape in shapes:
        coverage = rasterize(shape, height, width)  # (H, W), soft edges for the image
        covered = coverage >= 0.5
        color = pick_object_color(rng, image[:, covered].T)
        texture = smooth_noise(rng, height, width, grid=int(rng.integers(3, 7)), scale=0.06)
        image = image * (1 - coverage) + (color[:, None, None] + texture) * coverage
        mask[covered] = shape.label + 1
    image += rng.normal(0.0, rng.uniform(0.01, 0.05), size=image.shape)  # sensor noise
    return np.clip(image, 0, 1).astype(np.float32), mask


def ignore_boundary(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Copy of mask (H, W) with IGNORE_INDEX on a band of `width` pixels along object edges.

    The band is ceil(width / 2) pixels outside the object and floor(width / 2) inside
    (dilation and erosion by max pooling with square windows).
    """
    if width <= 0:
        return mask.clone()
    objects = (mask > 0).float()[None, None]  # (1, 1, H, W)

    def dilate(x: torch.Tensor, r: int) -> torch.Tensor:
        return torch.nn.functional.max_pool2d(x, 2 * r + 1, stride=1, padding=r) if r else x

    grown = dilate(objects, (width + 1) // 2)
    shrunk = 1 - dilate(1 - objects, width // 2)
    band = (grown - shrunk)[0, 0] > 0
    return mask.masked_fill(band, IGNORE_INDEX)


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _check_integer(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(tr("{name} must be an integer, got {value!r}", name=name, value=value))
    if value < minimum:
        raise ValueError(tr("{name} must be at least {minimum}, got {value}", name=name, minimum=minimum, value=value))
    return int(value)


def _check_num_samples(num_samples) -> int:
    if not isinstance(num_samples, bool) and isinstance(num_samples, numbers.Integral) and num_samples < 1:
        raise ValueError(tr("a dataset needs at least one sample, got {num_samples}", num_samples=num_samples))
    return _check_integer("num_samples", num_samples, 1)


def _check_index(index, length: int) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(tr("index must be an integer, got {index!r}", index=index))
    if not -length <= index < length:
        raise IndexError(
            tr("index {index} is out of range for a dataset of {length} samples", index=index, length=length)
        )
    return int(index) % length


# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------


class ShapesDataset(Dataset):
    """One random shape per image, for classification and segmentation.

    Item i is (image, label, mask):
        image  float32 (3, H, W), values in [0, 1]
        label  int in [0, NUM_CLASSES)
        mask   int64 (H, W): 0 background, label + 1 object, IGNORE_INDEX on a band of
               `boundary_ignore` pixels along the object's edge (none when 0)

    Labels are balanced: each block of 7 consecutive indices holds every class once, in an
    order shuffled by (seed, block).
    """

    def __init__(self, num_samples: int, image_size: int = 64, seed: int = 0, boundary_ignore: int = 0):
        self.num_samples = _check_num_samples(num_samples)
        self.image_size = _check_integer("image_size", image_size, MIN_IMAGE_SIZE)
        self.seed = _check_integer("seed", seed, 0)
        self.boundary_ignore = _check_integer("boundary_ignore", boundary_ignore, 0)

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (
            f"ShapesDataset(num_samples={self.num_samples}, image_size={self.image_size}, "
            f"seed={self.seed}, boundary_ignore={self.boundary_ignore})"
        )

    def label(self, index: int) -> int:
        """Class of item index, without drawing the image."""
        index = _check_index(index, self.num_samples)
        block_order = np.random.default_rng([self.seed, index // NUM_CLASSES, 7]).permutation(NUM_CLASSES)
        return int(block_order[index % NUM_CLASSES])

    def _random_shape(self, rng: np.random.Generator, label: int) -> Shape:
        radius = rng.uniform(*RADIUS_RANGE) * self.image_size
        low, high = radius + BORDER_MARGIN, self.image_size - radius - BORDER_MARGIN
        x, y = rng.uniform(low, high, size=2)
        return Shape(label, float(x), float(y), float(radius), float(rng.uniform(0, 2 * np.pi)))

    def shape(self, index: int) -> Shape:
        """Where item index's object is: class, centre, radius and angle."""
        index = _check_index(index, self.num_samples)
        return self._random_shape(np.random.default_rng([self.seed, index]), self.label(index))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        index = _check_index(index, self.num_samples)
        rng = np.random.default_rng([self.seed, index])
        shape = self._random_shape(rng, self.label(index))
        image, mask = paint_scene(rng, [shape], self.image_size, self.image_size)
        mask = ignore_boundary(torch.from_numpy(mask), self.boundary_ignore)
        return torch.from_numpy(image), shape.label, mask


class ShapesScenes(Dataset):
    """Scenes of several non-overlapping shapes, all of different classes, for segmentation.

    Item i is (image, mask): image float32 (3, H, W) in [0, 1], mask int64 (H, W) with 0 for
    background and k + 1 for class k.

    Objects get the same sizes in pixels as in ShapesDataset(image_size=object_scale), so a
    network trained on 64 px ShapesDataset sees familiar objects in a 128 or 200 px scene.
    image_size is an int (square) or an (H, W) pair; num_objects an int or a (min, max) pair.
    """

    def __init__(
        self,
        num_samples: int,
        image_size: int | tuple[int, int] = 128,
        seed: int = 0,
        num_objects: int | tuple[int, int] = (2, 4),
        object_scale: int = 64,
    ):
        self.num_samples = _check_num_samples(num_samples)
        if isinstance(image_size, (tuple, list)):
            if len(image_size) != 2:
                raise ValueError(
                    tr("image_size must be an int or an (H, W) pair, got {image_size!r}", image_size=image_size)
                )
            self.height = _check_integer(tr("image height"), image_size[0], MIN_IMAGE_SIZE)
            self.width = _check_integer(tr("image width"), image_size[1], MIN_IMAGE_SIZE)
        else:
            self.height = self.width = _check_integer("image_size", image_size, MIN_IMAGE_SIZE)
        self.seed = _check_integer("seed", seed, 0)
        self.object_scale = _check_integer("object_scale", object_scale, MIN_IMAGE_SIZE)
        if isinstance(num_objects, (tuple, list)):
            if len(num_objects) != 2:
                raise ValueError(
                    tr("num_objects must be an int or a (min, max) pair, got {num_objects!r}", num_objects=num_objects)
                )
            low, high = num_objects
        else:
            low = high = num_objects
        self.min_objects = _check_integer("num_objects", low, 1)
        self.max_objects = _check_integer("num_objects", high, self.min_objects)
        self._check_objects_fit()

    @property
    def image_size(self) -> tuple[int, int]:
        return self.height, self.width

    def _check_objects_fit(self) -> None:
        if self.max_objects > NUM_CLASSES:
            raise ValueError(
                tr(
                    "num_objects can be at most {most}: each object of a scene has a different class, got {got}",
                    most=NUM_CLASSES,
                    got=self.max_objects,
                )
            )
        smallest, largest = (f * self.object_scale for f in RADIUS_RANGE)
        if 2 * (largest + BORDER_MARGIN) > min(self.height, self.width):
            raise ValueError(
                tr(
                    "object_scale={object_scale} is too large for an image of {height}x{width}: objects would not fit",
                    object_scale=self.object_scale,
                    height=self.height,
                    width=self.width,
                )
            )
        # Generous rule so rejection sampling succeeds quickly: a grid of cells that each hold
        # one smallest object must have at least twice as many cells as objects.
        cell = 2 * smallest + OBJECT_GAP
        cells = int(self.height // cell) * int(self.width // cell)
        if 2 * self.max_objects > cells:
            raise ValueError(
                tr(
                    "{count} objects at object_scale={object_scale} do not fit in a {height}x{width} image; "
                    "use fewer objects (at most {most}) or a larger image",
                    count=self.max_objects,
                    object_scale=self.object_scale,
                    height=self.height,
                    width=self.width,
                    most=cells // 2,
                )
            )

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        size = self.height if self.height == self.width else (self.height, self.width)
        return (
            f"ShapesScenes(num_samples={self.num_samples}, image_size={size}, "
            f"seed={self.seed}, num_objects=({self.min_objects}, {self.max_objects}), "
            f"object_scale={self.object_scale})"
        )

    def _random_layout(self, rng: np.random.Generator) -> list[Shape]:
        """Rejection sampling: propose a radius and a centre until the object fits.

        Proposals shrink towards the smallest radius as they keep failing, so crowded scenes
        still terminate; a layout that cannot be completed is started again.
        """
        count = int(rng.integers(self.min_objects, self.max_objects + 1))
        labels = rng.choice(NUM_CLASSES, size=count, replace=False)
        smallest, largest = (f * self.object_scale for f in RADIUS_RANGE)
        for _ in range(1000):
            shapes: list[Shape] = []
            for label in labels:
                for attempt in range(100):
                    shrink = 1 - attempt / 100
                    radius = smallest + (largest - smallest) * rng.uniform() * shrink
                    x = rng.uniform(radius + BORDER_MARGIN, self.width - radius - BORDER_MARGIN)
                    y = rng.uniform(radius + BORDER_MARGIN, self.height - radius - BORDER_MARGIN)
                    if all(math.hypot(x - s.x, y - s.y) >= radius + s.radius + OBJECT_GAP for s in shapes):
                        shapes.append(
                            Shape(int(label), float(x), float(y), float(radius), float(rng.uniform(0, 2 * np.pi)))
                        )
                        break
                else:
                    break  # this object found no room: start the layout again
            if len(shapes) == count:
                return shapes
        raise RuntimeError(tr("could not place the objects; use fewer objects or a larger image"))

    def shapes(self, index: int) -> list[Shape]:
        """The objects of scene index: class, centre, radius and angle of each."""
        index = _check_index(index, self.num_samples)
        return self._random_layout(np.random.default_rng([self.seed, index]))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = _check_index(index, self.num_samples)
        rng = np.random.default_rng([self.seed, index])
        shapes = self._random_layout(rng)
        image, mask = paint_scene(rng, shapes, self.height, self.width)
        return torch.from_numpy(image), torch.from_numpy(mask)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


#: Items per batch that materialize collects (from its workers, or from this process).
DRAWING_BATCH = 64
#: Datasets of at least this many items are drawn by worker processes, one per CPU core (at most
#: MAX_DRAWING_WORKERS): each item has its own random generator, so the order of drawing cannot
#: change a single value. Smaller ones are drawn here, where starting processes would cost more.
PARALLEL_DRAWING_MIN_ITEMS = 500
MAX_DRAWING_WORKERS = 4


def drawing_workers(num_items: int) -> int:
    """How many worker processes materialize uses for `num_items` items (0: draw in this process).

    Only where workers start by forking this process (Linux up to Python 3.13), in milliseconds.
    Elsewhere (macOS, Windows, Python 3.14's forkserver) each one would start a new interpreter and
    import torch first, a few seconds, which is about what drawing a training set takes.
    """
    # The method set for this process, else the platform's default (listed first); asking does not set it.
    start_method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    if num_items < PARALLEL_DRAWING_MIN_ITEMS or start_method != "fork":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, MAX_DRAWING_WORKERS) if cores > 1 else 0


def materialize(dataset: Dataset, progress: bool = False, workers: int | None = None) -> tuple[torch.Tensor, ...]:
    """Generate every item once and stack them, e.g. for a TensorDataset held in memory.

    ShapesDataset -> (images (N, 3, H, W), labels (N,), masks (N, H, W));
    ShapesScenes  -> (images (N, 3, H, W), masks (N, H, W)).
    Each column is allocated once and filled batch by batch, so the memory peaks at the stacked
    size, not twice it (4,000 images of 64x64 with their masks take 330 MB).
    workers: processes that draw the items (a DataLoader's workers); None picks drawing_workers(N).
    """
    if len(dataset) == 0:
        raise ValueError(tr("cannot materialize an empty dataset (0 samples)"))
    workers = drawing_workers(len(dataset)) if workers is None else workers
    loader = DataLoader(dataset, batch_size=DRAWING_BATCH, num_workers=workers)  # batches in index order
    columns = None
    with progress_bar(len(dataset), tr("drawing samples"), "img", disable=not progress) as bar:
        for start, batch in zip(range(0, len(dataset), DRAWING_BATCH), loader):
            if columns is None:
                columns = [torch.empty((len(dataset), *value.shape[1:]), dtype=value.dtype) for value in batch]
            for column, value in zip(columns, batch):
                column[start : start + len(value)] = value
            bar.update(len(batch[0]))
    return tuple(columns)


def bounding_box(mask: torch.Tensor) -> torch.Tensor:
    """Box [x_min, y_min, x_max, y_max] (inclusive pixel coordinates) of the object pixels.

    mask (H, W) -> (4,), or a batch (N, H, W) -> (N, 4). Object pixels are those neither
    background (0) nor IGNORE_INDEX. Same convention and float dtype as torchvision's
    `masks_to_boxes` (the tests' oracle), written out here because importing torchvision takes
    about 3 s, which notebook 1 would wait for at every start.
    """
    mask = torch.as_tensor(mask)
    if mask.dim() not in (2, 3):
        raise ValueError(tr("mask must be (H, W) or (N, H, W), got shape {shape}", shape=tuple(mask.shape)))
    objects = (mask != 0) & (mask != IGNORE_INDEX)
    batch = objects if mask.dim() == 3 else objects[None]  # (N, H, W)
    if not batch.flatten(1).any(dim=1).all():
        raise ValueError(tr("mask has no object pixels: the bounding box is undefined"))
    rows, cols = batch.any(dim=2), batch.any(dim=1)  # (N, H): row holds an object pixel; (N, W)

    def first_and_last(hits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index of the first and of the last True along dim 1 of (N, L)."""
        positions = torch.arange(hits.shape[1]).expand_as(hits)
        length = hits.shape[1]
        return torch.where(hits, positions, length).amin(dim=1), torch.where(hits, positions, -1).amax(dim=1)

    (y_min, y_max), (x_min, x_max) = first_and_last(rows), first_and_last(cols)
    boxes = torch.stack([x_min, y_min, x_max, y_max], dim=1).float()  # (N, 4)
    return boxes if mask.dim() == 3 else boxes[0]
