"""Where the course keeps its files: the repository, its notebooks, generated data, checkpoints.

No torch here, so the tools that only need paths (the student-notebook builder, the notebook
runner) start in a fraction of a second.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository's root folder (the one holding course_utils/, notebooks/ and data/).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The course's notebooks, run top to bottom by `make execute` and `pytest --nbval`.
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
#: Files generated at run time (checkpoints, benchmark results); see data/README.md.
DATA_DIR = REPO_ROOT / "data"
#: Notebooks that need a download (notebook 6: the Oxford-IIIT Pet photos and ImageNet weights). They
#: have no stored outputs, so `pytest --nbval`, `make execute` and the benchmark leave them out;
#: tests/test_pets.py runs them on a small fixture instead.
DOWNLOAD_NOTEBOOKS = ("06_real_photos",)
#: Set this environment variable to keep checkpoints elsewhere (the benchmark uses a scratch folder).
CHECKPOINT_DIR_VARIABLE = "FCN_COURSE_CHECKPOINTS"


def course_notebooks(include_downloads: bool = False) -> list[Path]:
    """The course's notebooks (notebooks/NN_*.ipynb) in order; those in DOWNLOAD_NOTEBOOKS only if asked."""
    paths = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
    return [path for path in paths if include_downloads or path.stem not in DOWNLOAD_NOTEBOOKS]


def translated_notebooks(include_downloads: bool = False) -> list[Path]:
    """The translated editions' notebooks (notebooks/<lang>/NN_*.ipynb, e.g. notebooks/ko/), built
    from the English ones; those in DOWNLOAD_NOTEBOOKS only if asked."""
    paths = sorted(NOTEBOOK_DIR.glob("[a-z][a-z]/[0-9]*.ipynb"))
    return [path for path in paths if include_downloads or path.stem not in DOWNLOAD_NOTEBOOKS]


def checkpoint_dir() -> Path:
    """Where trained models are saved: data/checkpoints/, or $FCN_COURSE_CHECKPOINTS if set.

    Read at every call, so setting the variable later (as the benchmark and the tests do) counts.
    """
    return Path(os.environ.get(CHECKPOINT_DIR_VARIABLE) or DATA_DIR / "checkpoints")


def dataset_cache_dir() -> Path:
    """Where drawn held-out datasets are kept as tensors (see cache.py): datasets/ beside the
    checkpoints, so that a fresh checkpoint folder (the benchmark's cold runs) has no cache either."""
    return checkpoint_dir() / "datasets"
