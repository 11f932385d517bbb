"""The course's trained models: one recipe each, loaded from a checkpoint or trained on demand.

Notebook 3 trains the classifier with `trained_classifier()`; notebook 4 calls the same
function, so it finds notebook 3's checkpoint, or (run on its own) retrains the very same model.
The recipe and the width are part of the checkpoint's configuration: change either and the old
file no longer matches, so it is retrained instead of silently reused.

    python -m course_utils.recipes     # (make warm) train and cache every checkpoint, for lectures
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from .data import NUM_CLASSES, ShapesDataset, ShapesScenes, materialize
from .models import VGG11Classifier, VGG11SkipFCN
from .train import checkpoint_dir, default_width, fit, load_or_train, pick_device

#: How the classifier is trained. Seeds: 0 = training set, 1 = test set, 2 = validation set.
CLASSIFIER_RECIPE = {
    "image_size": 64,
    "train_samples": 4000,
    "val_samples": 500,
    "epochs": 6,
    "lr": 3e-3,
    "batch_size": 64,
    "seed": 0,
}
TRAIN_SEED, TEST_SEED, VAL_SEED = 0, 1, 2


def shapes_split(num_samples: int, seed: int, image_size: int = 64) -> TensorDataset:
    """A ShapesDataset held in memory as (images (N, 3, H, W), labels (N,), masks (N, H, W))."""
    return TensorDataset(*materialize(ShapesDataset(num_samples, image_size=image_size, seed=seed)))


def classifier_checkpoint(width: int) -> Path:
    return checkpoint_dir() / f"classifier_w{width}.pt"


def classifier_config(width: int, recipe: dict = CLASSIFIER_RECIPE) -> dict:
    """What the classifier's checkpoint records: a file made otherwise is retrained, not reused."""
    return {"num_classes": NUM_CLASSES, "width": width, **recipe}


def train_classifier(model: VGG11Classifier, recipe: dict = CLASSIFIER_RECIPE, progress: bool = True) -> dict:
    """Train `model` in place on the synthetic shapes, as the recipe says; return the history."""
    train_data = shapes_split(recipe["train_samples"], TRAIN_SEED, recipe["image_size"])
    val_data = shapes_split(recipe["val_samples"], VAL_SEED, recipe["image_size"])
    return fit(
        model,
        train_data,
        epochs=recipe["epochs"],
        lr=recipe["lr"],
        batch_size=recipe["batch_size"],
        val_data=val_data,
        seed=recipe["seed"],
        progress=progress,
    )


def trained_classifier(width: int | None = None, device=None, retrain: bool = True,
                       recipe: dict = CLASSIFIER_RECIPE) -> tuple[VGG11Classifier, dict]:
    """The course's trained classifier and its training history, from data/checkpoints/ if valid.

    width: None picks the device's default (16 on a CPU, 64 on a GPU).
    retrain: train when the checkpoint is missing or invalid (else raise CheckpointError).
    recipe: how to train it; the checkpoint records the recipe, so another recipe retrains it.
    """
    device = torch.device(device) if device is not None else pick_device()
    width = default_width(device) if width is None else width
    torch.manual_seed(recipe["seed"])  # the same initial weights every time
    model = VGG11Classifier(num_classes=NUM_CLASSES, width=width).to(device)
    config = classifier_config(width, recipe)
    history = load_or_train(classifier_checkpoint(width), model, config,
                            lambda model: train_classifier(model, recipe), retrain=retrain)
    return model.to(device).eval(), history


# ---------------------------------------------------------------------------- FCN-32s / 16s / 8s

#: How FCN-32s, 16s and 8s are trained on scenes with pixel labels (the same for all three).
SEGMENTER_RECIPE = {
    "image_size": 128,
    "train_samples": 1500,
    "epochs": 6,
    "lr": 1e-2,
    "batch_size": 16,
    "seed": 0,
}
SCENE_TRAIN_SEED, SCENE_TEST_SEED, SCENE_VAL_SEED = 10, 11, 12


@functools.lru_cache(maxsize=4)
def scenes_split(num_samples: int, seed: int, image_size: int = 128) -> TensorDataset:
    """ShapesScenes held in memory as (images (N, 3, H, W), masks (N, H, W)); cached, since the
    three FCN variants train on the same scenes."""
    return TensorDataset(*materialize(ShapesScenes(num_samples, image_size=image_size, seed=seed)))


def segmenter_checkpoint(variant: str, width: int) -> Path:
    return checkpoint_dir() / f"fcn{variant}_w{width}.pt"


def segmenter_config(variant: str, width: int, recipe: dict = SEGMENTER_RECIPE,
                     classifier_recipe: dict = CLASSIFIER_RECIPE) -> dict:
    """What an FCN's checkpoint records, the classifier it started from included."""
    return {"variant": variant, "num_classes": NUM_CLASSES + 1, "width": width,
            "classifier": classifier_recipe, **recipe}


def train_segmenter(model: VGG11SkipFCN, recipe: dict = SEGMENTER_RECIPE, progress: bool = True) -> dict:
    """Train an FCN in place on scenes with pixel labels (cross-entropy per pixel); return the history."""
    train_data = scenes_split(recipe["train_samples"], SCENE_TRAIN_SEED, recipe["image_size"])
    return fit(model, train_data, epochs=recipe["epochs"], lr=recipe["lr"], batch_size=recipe["batch_size"],
               seed=recipe["seed"], progress=progress)


def trained_segmenter(variant: str, width: int | None = None, device=None, retrain: bool = True,
                      recipe: dict = SEGMENTER_RECIPE,
                      classifier_recipe: dict = CLASSIFIER_RECIPE) -> tuple[VGG11SkipFCN, dict]:
    """FCN-`variant` ("32s", "16s" or "8s") started from the course's classifier and trained on
    scenes; loaded from data/checkpoints/ when a valid checkpoint exists, else trained and saved.
    The classifier is only loaded (or trained) when the FCN itself has to be trained."""
    device = torch.device(device) if device is not None else pick_device()
    width = default_width(device) if width is None else width
    model = VGG11SkipFCN(NUM_CLASSES + 1, width, variant).to(device)
    config = segmenter_config(variant, width, recipe, classifier_recipe)

    def start_from_classifier_and_train(model: VGG11SkipFCN) -> dict:
        classifier, _ = trained_classifier(width, device, retrain, classifier_recipe)
        model.load_state_dict(VGG11SkipFCN.from_classifier(classifier, variant).state_dict())
        return train_segmenter(model, recipe)

    history = load_or_train(segmenter_checkpoint(variant, width), model, config,
                            start_from_classifier_and_train, retrain=retrain)
    return model.to(device).eval(), history


def warm(width: int | None = None) -> None:
    """Train (or check) every checkpoint the notebooks use, so that each then runs in seconds."""
    start = time.perf_counter()
    _, history = trained_classifier(width)
    print(f"classifier: final validation accuracy {history['val_accuracy'][-1]:.1%}")
    for variant in ("32s", "16s", "8s"):
        trained_segmenter(variant, width)
    print(f"all checkpoints ready in {checkpoint_dir()} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":  # python -m course_utils.recipes  (make warm)
    warm()
