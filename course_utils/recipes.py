"""The course's trained models: one recipe each, loaded from a checkpoint or trained on demand.

Two kinds of function, two contracts:

    fit_classifier(model, recipe)   train the model you pass, in place; return its history
    trained_classifier()            return (a trained model, its history): loaded from its
                                    checkpoint if valid, else built, trained and saved

(and likewise `fit_segmenter` / `trained_segmenter(variant)` for FCN-32s, 16s and 8s, trained in
stages: 32s from the classifier, 16s from the trained 32s, 8s from the trained 16s).

Notebook 3 gets the classifier with `trained_classifier()`; notebook 4 calls the same function,
so it finds notebook 3's checkpoint, or (run on its own) retrains the very same model. The recipe
and the width are part of the checkpoint's configuration: change either and the old file no
longer matches, so it is retrained instead of silently reused.

Two kinds of seed, too: the *data* seeds below (TRAIN_DATA_SEED, ...) choose which images each
split holds; a recipe's `seed` seeds the training run (initial weights, shuffling order).

    python -m course_utils.recipes     # (make warm) train and cache every checkpoint and held-out set, for lectures
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import MappingProxyType

import torch
from torch.utils.data import TensorDataset

from .cache import load_or_draw
from .checkpoints import load_or_train
from .data import MIN_IMAGE_SIZE, NUM_CLASSES, ShapesDataset, ShapesScenes, materialize
from .i18n import tr
from .models import FCN_VARIANTS, VGG11Classifier, VGG11SkipFCN
from .paths import checkpoint_dir
from .train import default_width, fit, pick_device

# ---------------------------------------------------------------------------- the classifier

#: Seeds of the classifier's data splits (which shapes each split holds), not of training.
TRAIN_DATA_SEED, TEST_DATA_SEED, VAL_DATA_SEED = 0, 1, 2


@dataclass(frozen=True)
class ClassifierRecipe:
    """How the classifier is trained. Make a variant with `dataclasses.replace(CLASSIFIER_RECIPE, epochs=2)`.

    The checkpoint stores `dataclasses.asdict(recipe)`: keep field names and values stable, or
    every existing checkpoint is retrained.
    """

    image_size: int = 64  # images are image_size x image_size pixels
    train_samples: int = 4000  # training images, drawn with TRAIN_DATA_SEED
    val_samples: int = 500  # validation images (one evaluation per epoch), drawn with VAL_DATA_SEED
    epochs: int = 4
    # Progressive resizing: the first small_epochs epochs train on the images shrunk to
    # small_image_size x small_image_size (48x48: 56 % of the pixels, and about 56 % of the cost
    # per image), the last ones at full size. Global average pooling lets the classifier take any
    # size. small_image_size must be at least 32, the smallest image VGG11 takes.
    small_epochs: int = 2
    small_image_size: int = 48
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule
    batch_size: int = 32
    seed: int = 0  # seed for weight init and shuffling (the training run, not the data)

    def __post_init__(self):
        if not 0 <= self.small_epochs <= self.epochs:
            raise ValueError(
                tr(
                    "small_epochs must be between 0 and epochs ({epochs}), got {small_epochs}",
                    epochs=self.epochs,
                    small_epochs=self.small_epochs,
                )
            )
        if self.small_epochs and self.small_image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                tr(
                    "small_image_size must be at least {minimum} (VGG11's smallest input), got {small_image_size}",
                    minimum=MIN_IMAGE_SIZE,
                    small_image_size=self.small_image_size,
                )
            )

    def epoch_image_sizes(self) -> list[int | None]:
        """The image size each epoch trains at, for fit's image_sizes: [48, 48, None, None] (None: full size)."""
        return [self.small_image_size] * self.small_epochs + [None] * (self.epochs - self.small_epochs)


CLASSIFIER_RECIPE = ClassifierRecipe()
#: For the full width 64, a GPU's default. Without progressive resizing and in 4 epochs it reached
#: only 97.7 % and 98.6 % test accuracy (two seeds, on a GPU), with 6 epochs 99.2 % and 99.7 %; a
#: GPU trains them in seconds, so it keeps full-size images throughout.
WIDE_CLASSIFIER_RECIPE = replace(CLASSIFIER_RECIPE, epochs=6, small_epochs=0)


def classifier_recipe_for(width: int) -> ClassifierRecipe:
    """The recipe the course trains a classifier of `width` with: CLASSIFIER_RECIPE (the CPU's
    width 16, a Mac's 32), or WIDE_CLASSIFIER_RECIPE from width 64 on."""
    return WIDE_CLASSIFIER_RECIPE if width >= 64 else CLASSIFIER_RECIPE


def shapes_split(num_samples: int, seed: int, image_size: int = 64, cached: bool = True) -> TensorDataset:
    """ShapesDataset drawn with data seed `seed`, held in memory as
    (images (N, 3, H, W), labels (N,), masks (N, H, W)).

    cached: keep it on disk (cache.load_or_draw), so that the next run loads it instead of drawing
    it again. The training sets pass False: they are drawn only when a model trains, which takes
    far longer than drawing, and they would fill hundreds of MB.
    """
    dataset = ShapesDataset(num_samples, image_size=image_size, seed=seed)
    return TensorDataset(*(load_or_draw(dataset) if cached else materialize(dataset)))


def classifier_checkpoint(width: int) -> Path:
    return checkpoint_dir() / f"classifier_w{width}.pt"


def classifier_config(width: int, recipe: ClassifierRecipe | None = None) -> dict:
    """What the classifier's checkpoint records: a file made otherwise is retrained, not reused.
    recipe: None is classifier_recipe_for(width)."""
    recipe = classifier_recipe_for(width) if recipe is None else recipe
    return {"num_classes": NUM_CLASSES, "width": width, **asdict(recipe)}


def fit_classifier(model: VGG11Classifier, recipe: ClassifierRecipe | None = None, progress: bool = True) -> dict:
    """Train the given `model` in place on the synthetic shapes, as `recipe` says; return the
    history (see train.fit). No checkpoint is read or written: that is trained_classifier's job.
    recipe: None is classifier_recipe_for(model.width)."""
    recipe = classifier_recipe_for(model.width) if recipe is None else recipe
    images, labels, _ = shapes_split(recipe.train_samples, TRAIN_DATA_SEED, recipe.image_size, cached=False).tensors
    train_data = TensorDataset(images, labels)  # without the masks (131 MB), which a classifier never sees
    val_data = shapes_split(recipe.val_samples, VAL_DATA_SEED, recipe.image_size)
    return fit(
        model,
        train_data,
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        val_data=val_data,
        seed=recipe.seed,
        progress=progress,
        image_sizes=recipe.epoch_image_sizes(),
    )


def trained_classifier(
    width: int | None = None, device=None, retrain: bool = True, recipe: ClassifierRecipe | None = None
) -> tuple[VGG11Classifier, dict]:
    """The course's trained classifier and its training history: (model in eval mode, history).

    Loaded from data/checkpoints/ (or $FCN_COURSE_CHECKPOINTS) if that checkpoint is valid for
    this width and recipe; otherwise a new model, seeded with recipe.seed, is trained with
    fit_classifier and saved there.
    width: None picks the device's default (16 on a CPU, 64 on a GPU).
    retrain: train when the checkpoint is missing or invalid (else raise CheckpointError).
    recipe: None is classifier_recipe_for(width).
    """
    device = torch.device(device) if device is not None else pick_device()
    width = default_width(device) if width is None else width
    recipe = classifier_recipe_for(width) if recipe is None else recipe
    torch.manual_seed(recipe.seed)  # the same initial weights every time
    model = VGG11Classifier(num_classes=NUM_CLASSES, width=width).to(device)
    history = load_or_train(
        classifier_checkpoint(width),
        model,
        classifier_config(width, recipe),
        lambda model: fit_classifier(model, recipe),
        retrain=retrain,
    )
    return model.to(device).eval(), history


# ---------------------------------------------------------------------------- FCN-32s / 16s / 8s

#: Seeds of the scene splits (which scenes each split holds), not of training.
SCENE_TRAIN_DATA_SEED, SCENE_TEST_DATA_SEED, SCENE_VAL_DATA_SEED = 10, 11, 12


@dataclass(frozen=True)
class SegmenterRecipe:
    """How one FCN stage is trained on scenes with pixel labels.

    Stored in the checkpoint as `dataclasses.asdict(recipe)`, like ClassifierRecipe.
    """

    # Training scenes are image_size x image_size pixels: 96, smaller than the 128x128 test scenes
    # (an FCN takes any size), at about half the cost per scene.
    image_size: int = 96
    train_samples: int = 1500  # training scenes, drawn with SCENE_TRAIN_DATA_SEED
    epochs: int = 2
    lr: float = 1e-2  # peak learning rate of the one-cycle schedule
    batch_size: int = 4  # small batches: more steps for the same cost, which these short runs need
    # Seed for the training run (shuffling order), not the data. The FCN's initial weights need
    # none: they are the classifier's (or the coarser FCN's), plus new layers that start at zero
    # or bilinear.
    seed: int = 0


#: The FCNs are trained in stages, as the paper does: FCN-32s starts from the classifier, FCN-16s
#: from the trained FCN-32s, FCN-8s from the trained FCN-16s (VGG11SkipFCN.from_coarser). Each stage
#: builds on what the one before learned, and FCN-8s ends with all three stages behind it.
#: Both are read-only mappings: make a variant with {**SEGMENTER_RECIPES, "8s": replace(...)}.
# Each variant starts from the one before it in FCN_VARIANTS, the first from the classifier:
# {"32s": "classifier", "16s": "32s", "8s": "16s"}.
STARTS_FROM = MappingProxyType(dict(zip(FCN_VARIANTS, ("classifier", *FCN_VARIANTS[:-1]))))
# FCN-32s, the first stage, trains for 1 epoch and the finer ones for 2: that saves a sixth of the
# FCN training time, for about 0.01 less mIoU of FCN-8s (the README's speed table).
SEGMENTER_RECIPES = MappingProxyType(
    {variant: SegmenterRecipe(epochs=1 if start == "classifier" else 2) for variant, start in STARTS_FROM.items()}
)


def training_stages(variant: str) -> tuple[str, ...]:
    """The FCN stages trained to get FCN-`variant`, in order: ("32s", "16s", "8s") for "8s"."""
    if variant not in STARTS_FROM:
        raise ValueError(
            tr("variant must be one of {variants}, got {variant!r}", variants=FCN_VARIANTS, variant=variant)
        )
    start = STARTS_FROM[variant]
    return (variant,) if start == "classifier" else (*training_stages(start), variant)


def start_segmenter(variant: str, start: VGG11Classifier | VGG11SkipFCN) -> VGG11SkipFCN:
    """FCN-`variant` before its training: built from `start`, the model STARTS_FROM names (the
    trained classifier for 32s, with from_classifier; the trained coarser FCN for 16s and 8s,
    with from_coarser)."""
    if STARTS_FROM[variant] == "classifier":
        return VGG11SkipFCN.from_classifier(start, variant)
    return VGG11SkipFCN.from_coarser(start, variant)


@functools.lru_cache(maxsize=4)
def scenes_split(num_samples: int, seed: int, image_size: int = 128) -> TensorDataset:
    """ShapesScenes drawn with data seed `seed` (the held-out sets, the scenes notebooks show), as
    (images (N, 3, H, W), masks (N, H, W)): kept in memory for the process and on disk as
    shapes_split keeps them. The FCNs' training scenes are fcn_training_scenes."""
    return TensorDataset(*load_or_draw(ShapesScenes(num_samples, image_size=image_size, seed=seed)))


@functools.lru_cache(maxsize=1)
def fcn_training_scenes(num_samples: int, image_size: int) -> TensorDataset:
    """The scenes every FCN stage trains on (data seed SCENE_TRAIN_DATA_SEED), as (images
    (N, 3, H, W), masks (N, H, W)). Drawn once per process, for all three stages, and never written
    to disk (276 MB at the course's size); trained_segmenter releases them after the last stage."""
    return TensorDataset(*materialize(ShapesScenes(num_samples, image_size=image_size, seed=SCENE_TRAIN_DATA_SEED)))


def segmenter_checkpoint(variant: str, width: int) -> Path:
    return checkpoint_dir() / f"fcn{variant}_w{width}.pt"


def segmenter_config(
    variant: str,
    width: int,
    recipes: Mapping[str, SegmenterRecipe] = SEGMENTER_RECIPES,
    classifier_recipe: ClassifierRecipe | None = None,
) -> dict:
    """What an FCN's checkpoint records: its stage's recipe, and the configuration of the model
    it started from (the classifier's, or the coarser FCN's, which records its own start)."""
    start = STARTS_FROM[variant]
    starts_from = (
        classifier_config(width, classifier_recipe)
        if start == "classifier"
        else segmenter_config(start, width, recipes, classifier_recipe)
    )
    return {
        "variant": variant,
        "num_classes": NUM_CLASSES + 1,
        "width": width,
        "starts_from": starts_from,
        **asdict(recipes[variant]),
    }


def fit_segmenter(model: VGG11SkipFCN, recipe: SegmenterRecipe, progress: bool = True) -> dict:
    """Train the given FCN in place on scenes with pixel labels (cross-entropy per pixel), as
    `recipe` says; return the history (see train.fit). No checkpoint is read or written."""
    train_data = fcn_training_scenes(recipe.train_samples, recipe.image_size)
    return fit(
        model,
        train_data,
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        seed=recipe.seed,
        progress=progress,
    )


def trained_segmenter(
    variant: str,
    width: int | None = None,
    device=None,
    retrain: bool = True,
    recipes: Mapping[str, SegmenterRecipe] = SEGMENTER_RECIPES,
    classifier_recipe: ClassifierRecipe | None = None,
) -> tuple[VGG11SkipFCN, dict]:
    """The course's trained FCN-`variant` ("32s", "16s" or "8s") and its history: (model in eval
    mode, history of its own stage).

    Loaded from data/checkpoints/ when a valid checkpoint exists; otherwise started from what
    STARTS_FROM names (the classifier for 32s, the trained coarser FCN for 16s and 8s: loaded, or
    trained first), trained on scenes with fit_segmenter and recipes[variant], and saved.
    """
    training_stages(variant)  # a ValueError for an unknown variant
    device = torch.device(device) if device is not None else pick_device()
    width = default_width(device) if width is None else width
    model = VGG11SkipFCN(NUM_CLASSES + 1, width, variant).to(device)
    config = segmenter_config(variant, width, recipes, classifier_recipe)

    def start_and_fit(model: VGG11SkipFCN) -> dict:
        if STARTS_FROM[variant] == "classifier":
            start, _ = trained_classifier(width, device, retrain, classifier_recipe)
        else:
            start, _ = trained_segmenter(STARTS_FROM[variant], width, device, retrain, recipes, classifier_recipe)
        model.load_state_dict(start_segmenter(variant, start).state_dict())
        history = fit_segmenter(model, recipes[variant])
        if variant == FCN_VARIANTS[-1]:  # the last stage: no other trains on these scenes after it
            fcn_training_scenes.cache_clear()
        return history

    history = load_or_train(segmenter_checkpoint(variant, width), model, config, start_and_fit, retrain=retrain)
    return model.to(device).eval(), history


# ---------------------------------------------------------------------------- warm: everything cached

#: The scenes notebook 4 shows the converted classifier on (100 of them, 128x128).
NOTEBOOK4_SCENES_SEED = 3

#: Every held-out set a notebook loads, as (function, num_samples, data seed): `make warm` draws
#: and caches them all, so that a warm notebook loads every image it shows and never draws one.
#: (tests/test_recipes.py checks the notebooks against this list.)
HELD_OUT_SETS = (
    (shapes_split, 1000, TEST_DATA_SEED),  # notebooks 3 and 4: the classifier's test set
    (shapes_split, CLASSIFIER_RECIPE.val_samples, VAL_DATA_SEED),  # validation; notebook 4's threshold
    (scenes_split, 100, NOTEBOOK4_SCENES_SEED),  # notebook 4: the converted classifier on scenes
    (scenes_split, 200, SCENE_TEST_DATA_SEED),  # notebook 5 and the benchmark: the FCNs' test scenes
    (scenes_split, 100, SCENE_VAL_DATA_SEED),  # notebook 5: the converted classifier's threshold
)


def cache_held_out_sets() -> None:
    """Draw every set in HELD_OUT_SETS that is not on disk yet, and keep it there (load_or_draw)."""
    for split, num_samples, seed in HELD_OUT_SETS:
        split(num_samples, seed)
    scenes_split.cache_clear()  # the process needs none of them in memory


def warm(width: int | None = None) -> None:
    """Train (or check) every checkpoint the notebooks use, and cache every held-out set they
    load, so that each notebook then runs in seconds."""
    start = time.perf_counter()
    _, history = trained_classifier(width)
    print(tr("classifier: final validation accuracy {accuracy:.1%}", accuracy=history["val_accuracy"][-1]))
    for variant in FCN_VARIANTS:
        trained_segmenter(variant, width)
    cache_held_out_sets()
    print(
        tr(
            "all checkpoints and held-out sets ready in {folder} ({seconds:.0f} s)",
            folder=checkpoint_dir(),
            seconds=time.perf_counter() - start,
        )
    )


if __name__ == "__main__":  # python -m course_utils.recipes  (make warm)
    warm()
