"""What every part of the benchmark shares: the progress log, the run's configurations and the
held-out scenes' sizes. It imports nothing from the benchmark's other modules."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from course_utils.recipes import CLASSIFIER_RECIPE, SEGMENTER_RECIPES, ClassifierRecipe, SegmenterRecipe

#: Notebook 5's held-out scenes: 200 test scenes (every mIoU here), 100 validation scenes (the
#: converted classifier's threshold). Each is 128x128 pixels.
TEST_SCENES, VAL_SCENES = 200, 100
SCENE_SIZE = 128
#: The classifier's width at full size (the course trains width 16 on a CPU).
FULL_WIDTH = 64


@dataclass(frozen=True)
class BenchmarkConfig:
    """What one benchmark run measures, and how much.

    name: "full" or "quick" (the result's "quick" field says which).
    notebooks: the notebooks' names to time (None: every one).
    course_timed_steps, full_timed_steps: batches per timed run of the classifier's training speed
        at the course's width and at FULL_WIDTH.
    curve_budget_factor: the learning curves run for this many times the course's training
        seconds (classifier + FCN-8s).
    curve_points: evaluations per learning curve, evenly spaced in steps (plus one before training).
    curve_scenes: how many of the TEST_SCENES each curve point is scored on.
    segmenter_recipes: {variant: recipe} of the FCN stages (32s from the classifier, 16s from
        32s, 8s from 16s), as recipes.SEGMENTER_RECIPES.
    warm_repeats: warm runs of each notebook; the fastest counts (notebooks.warm_runs).
    """

    name: str
    notebooks: tuple[str, ...] | None
    classifier_recipe: ClassifierRecipe
    segmenter_recipes: Mapping[str, SegmenterRecipe]
    course_timed_steps: int
    full_timed_steps: int
    curve_budget_factor: float
    curve_points: int
    curve_scenes: int
    warm_repeats: int = 3

    @property
    def scene_recipe(self) -> SegmenterRecipe:
        """The FCN-8s stage's recipe: its training scenes and batch size (the same in every stage)
        are what the peers train with."""
        return self.segmenter_recipes["8s"]


#: The full run (make benchmark): every notebook, the course's recipes, curves to 12x its time
#: (at 5x the best peer was still climbing; at 12x its last four points lie within 0.005).
FULL = BenchmarkConfig(
    name="full",
    notebooks=None,
    classifier_recipe=CLASSIFIER_RECIPE,
    segmenter_recipes=SEGMENTER_RECIPES,
    course_timed_steps=15,
    full_timed_steps=5,
    curve_budget_factor=12.0,
    curve_points=12,
    curve_scenes=TEST_SCENES,
)

#: --quick: notebooks 1-2, small recipes, short curves with few points scored on few scenes.
#: It checks that every part runs and that the JSON is complete; its quality figures are not the course's.
QUICK = BenchmarkConfig(
    name="quick",
    notebooks=("01_classification_detection_segmentation", "02_vgg11_backbone"),
    classifier_recipe=dataclasses.replace(CLASSIFIER_RECIPE, train_samples=2000, val_samples=200, epochs=4),
    segmenter_recipes={
        variant: dataclasses.replace(recipe, train_samples=200, epochs=max(1, recipe.epochs // 2))
        for variant, recipe in SEGMENTER_RECIPES.items()
    },
    course_timed_steps=5,
    full_timed_steps=2,
    curve_budget_factor=1.0,
    curve_points=2,
    curve_scenes=20,
    warm_repeats=1,
)


class ProgressLog:
    """Progress for the person watching, on stderr (stdout ends with the JSON line alone), each
    line stamped with the seconds since `start()`. Nothing is timed until a run calls start()."""

    def __init__(self) -> None:
        self.started: float | None = None

    def start(self) -> None:
        """Start (or restart) the clock: a run's first step."""
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since start() (0 before it)."""
        return 0.0 if self.started is None else time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed():4.0f} s] {message}", file=sys.stderr, flush=True)


log = ProgressLog()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU runs asynchronously), so that a clock read next is right."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
