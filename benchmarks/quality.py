"""Quality: the course's classifier (test accuracy) and segmenters (mIoU on notebook 5's held-out
scenes), exactly as the notebooks score them; and the mIoU of any segmenter on those scenes."""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from course_utils.data import CLASSES
from course_utils.models import FCN_VARIANTS, VGG11FCN, count_parameters
from course_utils.recipes import (
    SCENE_TEST_DATA_SEED,
    SCENE_VAL_DATA_SEED,
    TEST_DATA_SEED,
    fcn_training_scenes,
    scenes_split,
    shapes_split,
    trained_classifier,
    trained_segmenter,
    training_stages,
)
from course_utils.segment import choose_threshold, scores_to_mask, segmentation_report
from course_utils.train import evaluate, predict

from .common import TEST_SCENES, VAL_SCENES, BenchmarkConfig
from .speed import multiply_adds


def held_out_scenes() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Notebook 5's scenes: ((test images (200, 3, 128, 128), masks (200, 128, 128)), (validation: 100))."""
    test, val = scenes_split(TEST_SCENES, SCENE_TEST_DATA_SEED), scenes_split(VAL_SCENES, SCENE_VAL_DATA_SEED)
    return test.tensors, val.tensors


def scene_miou(model: nn.Module, images: torch.Tensor, masks: torch.Tensor) -> float:
    """mIoU of a network with a background class (scores (N, 1 + K, H, W)) on scenes: images
    (N, 3, H, W), masks (N, H, W). The model's train/eval mode is left as it was."""
    predicted = predict(model, images).max(dim=1).indices  # the argmax; .argmax is slower on a CPU
    return segmentation_report(predicted, masks, CLASSES)["mean_iou"]


def training_scenes(config: BenchmarkConfig) -> TensorDataset:
    """The scenes the course's FCNs train on: images (N, 3, S, S), masks (N, S, S), S the recipe's
    image_size; the same call as the course's, so while they are in memory the very same tensors."""
    recipe = config.scene_recipe
    return fcn_training_scenes(recipe.train_samples, recipe.image_size)


def held_out_scorer(scenes: int = TEST_SCENES) -> functools.partial:
    """A model's mIoU on the first `scenes` held-out test scenes: a function of the model alone."""
    (test_images, test_masks), _ = held_out_scenes()
    return functools.partial(scene_miou, images=test_images[:scenes], masks=test_masks[:scenes])


def course_models(width: int, device: torch.device, config: BenchmarkConfig) -> dict:
    """The course's classifier and FCN-32s/16s/8s, from the (scratch) checkpoints or trained.

    Returns {"classifier": (model, history), "segmenters": {variant: (model, history)}}.
    """
    kwargs = {"width": width, "device": device, "classifier_recipe": config.classifier_recipe}
    classifier = trained_classifier(width=width, device=device, recipe=config.classifier_recipe)
    segmenters = {
        variant: trained_segmenter(variant, **kwargs, recipes=config.segmenter_recipes) for variant in FCN_VARIANTS
    }
    return {"classifier": classifier, "segmenters": segmenters}


def course_quality(models: dict) -> dict:
    """Classifier test accuracy, and mIoU on the held-out scenes, exactly as notebooks 3 and 5.

    Returns {"classifier_accuracy", "background_miou" (all pixels called background), "converted_fcn_miou",
    "fcn32s_miou", "fcn16s_miou", "fcn8s_miou"}.
    """
    classifier, _ = models["classifier"]
    (test_images, test_masks), (val_images, val_masks) = held_out_scenes()
    converted = VGG11FCN.from_classifier(classifier).eval()
    val_scores = predict(converted, val_images)
    threshold, _ = choose_threshold(val_scores, val_masks, range(0, 11), CLASSES)
    converted_masks = scores_to_mask(predict(converted, test_images), threshold)
    quality = {
        "classifier_accuracy": evaluate(classifier, shapes_split(1000, seed=TEST_DATA_SEED))["accuracy"],
        "background_miou": segmentation_report(torch.zeros_like(test_masks), test_masks, CLASSES)["mean_iou"],
        "converted_fcn_miou": segmentation_report(converted_masks, test_masks, CLASSES)["mean_iou"],
    }
    for variant, (model, _) in models["segmenters"].items():
        quality[f"fcn{variant}_miou"] = scene_miou(model, test_images, test_masks)
    return quality


def course_record(models: dict, fcn8s_miou: float) -> dict:
    """The course FCN-8s as the peers are recorded: its mIoU, its training (the classifier's
    seconds and steps, then those of the FCN stages it went through: 32s, 16s, 8s), its size and
    its compute per 128x128 image.

    budget_s, the course's whole training time, is what the peers get at equal time.
    """
    _, classifier_history = models["classifier"]
    fcn8s, _ = models["segmenters"]["8s"]
    stages = [models["segmenters"][variant][1] for variant in training_stages("8s")]
    fcn_s = sum(history["seconds"] for history in stages)
    steps = sum(len(history["step_loss"]) for history in stages)
    return {
        "label": "course FCN-8s (from its classifier, in stages)",
        "miou": fcn8s_miou,
        "budget_s": classifier_history["seconds"] + fcn_s,
        "classifier_train_s": classifier_history["seconds"],
        "fcn_train_s": fcn_s,
        "classifier_steps": len(classifier_history["step_loss"]),
        "steps": steps,
        "train_s": classifier_history["seconds"] + fcn_s,
        "seconds_per_step": fcn_s / steps,
        "parameters": count_parameters(fcn8s),
        "multiply_adds": multiply_adds(fcn8s),
    }
