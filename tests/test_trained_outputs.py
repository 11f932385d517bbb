"""The notebooks' checks on trained outputs catch a broken model.

Every checkpoint the notebooks load is replaced by an untrained network, saved with the right
recipe, so the notebooks load it without complaint. `pytest --nbval` must then fail on the cells
that report training results (tolerance bands and assertions), and still pass the cells whose
output does not depend on the weights.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils.checkpoints import save_checkpoint
from course_utils.data import NUM_CLASSES
from course_utils.models import VGG11Classifier, VGG11SkipFCN
from course_utils.paths import CHECKPOINT_DIR_VARIABLE
from course_utils.recipes import classifier_checkpoint, classifier_config, segmenter_checkpoint, segmenter_config
from course_utils.train import WIDTH_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    n: ROOT / "notebooks" / f"{n}.ipynb"
    for n in ("03_train_classifier", "04_classifier_to_fcn", "05_upsampling_and_skip_connections")
}
WIDTH = 16

#: notebook -> (cells that must fail, cells that must pass), each named by a piece of its source.
EXPECTED = {
    "03_train_classifier": (
        [
            "final = {key: values[-1]",
            "accuracy = right / len(test_labels)",
            "cm = confusion_matrix(",
            "wrong = (predicted != test_labels)",
            "for batch_size in (64, 8, 2):",
        ],
        [
            "recipe = classifier_recipe_for(width)",
            "test_data = shapes_split(1000",
            "load_checkpoint(classifier_checkpoint",
        ],
    ),
    "04_classifier_to_fcn": (
        ['compare("stride-16 FCN mean', '"converted classifier": segmentation_report(', "scene_scores = predict(fcn"],
        ["fc = classifier.fc_out", "conv = nn.Conv2d(fc.in_features", "coarse = fcn.score_map(image[None])[0]"],
    ),
    "05_upsampling_and_skip_connections": (
        [
            "print(format_report(reports))",
            'assert miou["FCN-8s"] >= 0.80',
            "gain = {name:",
            'ends = {variant: (mean(history["step_loss"][:50])',
            "change[name] = ((learned - start).norm()",
        ],
        [
            'fcn8 = VGG11SkipFCN.from_classifier(classifier, "8s")',
            "up.weight.copy_(bilinear_kernel_2d",
            "x = test_images[:2, :, :112, :120]",
            "M = torch.stack([conv(unit)",
        ],
    ),
}


def save_untrained_checkpoints(folder: Path, monkeypatch) -> None:
    """An untrained classifier and FCNs, under the names and configurations the recipes expect."""
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(folder))
    torch.manual_seed(1234)
    classifier = VGG11Classifier(NUM_CLASSES, WIDTH)
    learned_nothing = {
        key: [1.95 if "loss" in key else 1 / NUM_CLASSES] * 6
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
    }
    save_checkpoint(classifier_checkpoint(WIDTH), classifier, classifier_config(WIDTH), learned_nothing)
    for variant in ("32s", "16s", "8s"):
        fcn = VGG11SkipFCN.from_classifier(classifier, variant)
        save_checkpoint(segmenter_checkpoint(variant, WIDTH), fcn, segmenter_config(variant, WIDTH))


def cell_numbers(path: Path, pieces: list[str]) -> set[int]:
    """nbval's cell numbers (code cells, counted from 0) of the cells containing each piece."""
    sources = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    numbers = set()
    for piece in pieces:
        matches = [i for i, source in enumerate(sources) if piece in source]
        assert len(matches) == 1, f"{piece!r} should name exactly one cell of {path.name}, found {matches}"
        numbers |= set(matches)
    return numbers


def test_every_named_cell_is_in_its_notebook():
    """Quick, and outside the slow mark: a notebook edit that renames a checked cell fails here first."""
    for name, (must_fail, must_pass) in EXPECTED.items():
        assert not cell_numbers(NOTEBOOKS[name], must_fail) & cell_numbers(NOTEBOOKS[name], must_pass), name


@pytest.mark.slow
def test_untrained_models_fail_the_notebooks_where_training_shows(tmp_path, monkeypatch):
    save_untrained_checkpoints(tmp_path, monkeypatch)
    env = {**os.environ, CHECKPOINT_DIR_VARIABLE: str(tmp_path), WIDTH_VARIABLE: str(WIDTH)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfE",
            *map(str, NOTEBOOKS.values()),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert "Training a new model" not in result.stdout, "the untrained checkpoints were not used"
    failed = {
        (name, int(number)) for name, number in re.findall(r"FAILED notebooks/(\w+)\.ipynb::Cell (\d+)", result.stdout)
    }
    for name, (must_fail, must_pass) in EXPECTED.items():
        for number in cell_numbers(NOTEBOOKS[name], must_fail):
            assert (name, number) in failed, (
                f"{name} cell {number} passed with an untrained model\n{result.stdout[-3000:]}"
            )
        for number in cell_numbers(NOTEBOOKS[name], must_pass):
            assert (name, number) not in failed, f"{name} cell {number} does not depend on training, yet failed"
