"""pytest set-up for the whole repository.

`pytest` runs the unit tests in tests/. `pytest --nbval` runs them and then every notebook in
notebooks/, with the options the course needs, exactly as `make test` does:

- the kernel is this Python environment (`--nbval-current-env`);
- progress-bar timings and memory addresses are masked (notebooks/nbval-sanitize.cfg);
- cells whose output comes from training are compared with a tolerance (tests/nbval_tolerance.py);
- a cell may run 80 minutes (nbval's default is 2,000 s);
- the network width is pinned to 16 (FCN_COURSE_WIDTH), so that a GPU, whose default is the
  full width 64, prints the same shapes as the stored CPU run.

The real-browser test (tests/browser) runs only with FCN_BROWSER_TEST=1 (`make test-browser`).
Notebooks that need a download (notebook 6) have no stored outputs for nbval to compare: they are
not collected here, and tests/test_pets.py runs them top to bottom on a small fixture instead.
The Korean edition (notebooks/ko/) is collected like the English one, after it.
"""

import os
from pathlib import Path

from course_utils.paths import DOWNLOAD_NOTEBOOKS
from course_utils.train import WIDTH_VARIABLE

ROOT = Path(__file__).resolve().parent
SANITIZE_FILE = ROOT / "notebooks" / "nbval-sanitize.cfg"
#: The width the stored outputs were made with (see course_utils.train.default_width).
NOTEBOOK_TEST_WIDTH = "16"
NBVAL_DEFAULT_CELL_TIMEOUT, CELL_TIMEOUT_S = 2000, 4800

pytest_plugins = ["tests.nbval_tolerance"]

collect_ignore = [] if os.environ.get("FCN_BROWSER_TEST") == "1" else ["tests/browser"]
collect_ignore += [f"notebooks/{edition}{name}.ipynb" for name in DOWNLOAD_NOTEBOOKS for edition in ("", "ko/")]


def pytest_configure(config):
    if config.option.nbval or config.option.nbval_lax:
        config.option.nbval_current_env = True
        if not config.option.nbval_sanitize_with:
            config.option.nbval_sanitize_with = str(SANITIZE_FILE)
        # nbval's default, 2,000 s a cell, is less than notebook 5's training takes on a slow or
        # loaded 2-core machine without AVX (three FCNs in one cell).
        if config.option.nbval_cell_timeout == NBVAL_DEFAULT_CELL_TIMEOUT:
            config.option.nbval_cell_timeout = CELL_TIMEOUT_S
        # The kernels nbval starts inherit this process's environment.
        os.environ.setdefault(WIDTH_VARIABLE, NOTEBOOK_TEST_WIDTH)
