"""Paths: one module, importable without torch, like the tools that only need paths."""

import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.paths import CHECKPOINT_DIR_VARIABLE, DATA_DIR, NOTEBOOK_DIR, REPO_ROOT, checkpoint_dir

ROOT = Path(__file__).resolve().parent.parent


def test_the_paths_are_the_repositorys():
    assert REPO_ROOT == ROOT
    assert DATA_DIR == ROOT / "data" and NOTEBOOK_DIR == ROOT / "notebooks"
    assert (REPO_ROOT / "course_utils" / "paths.py").is_file() and NOTEBOOK_DIR.is_dir()


def test_checkpoints_go_to_data_unless_the_variable_says_otherwise(monkeypatch, tmp_path):
    assert CHECKPOINT_DIR_VARIABLE == "FCN_COURSE_CHECKPOINTS"
    monkeypatch.delenv(CHECKPOINT_DIR_VARIABLE, raising=False)
    assert checkpoint_dir() == DATA_DIR / "checkpoints"
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(tmp_path))
    assert checkpoint_dir() == tmp_path
    from course_utils.recipes import classifier_checkpoint

    assert classifier_checkpoint(16) == tmp_path / "classifier_w16.pt"  # read at call time


@pytest.mark.parametrize("module", ["course_utils.paths", "course_utils.student", "course_utils.run_notebooks"])
def test_tools_that_only_need_paths_do_not_import_torch(module):
    """A fresh interpreter (this one has torch loaded already) imports the module, then lists what came with it."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", f"importing {module} imports torch"


def test_the_package_still_offers_its_names_on_demand():
    import course_utils

    assert course_utils.VGG11Classifier.__module__ == "course_utils.models"
    assert set(course_utils.__all__) <= set(dir(course_utils))
