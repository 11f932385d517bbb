"""Progress output is bounded by the amount of work, never by the time it takes.

A long or slow cell must not send more messages than Jupyter's queue holds (see
course_utils/progress.py). The tests make every step look slow with a fake clock, as on a loaded
machine where training takes 25 minutes instead of 3, and count the redraws.
"""

import itertools
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import tqdm.std
from torch import nn
from torch.utils.data import TensorDataset

from course_utils.data import ShapesDataset, materialize
from course_utils.progress import MAX_REDRAWS, progress_bar
from course_utils.train import fit

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def slow_clock(monkeypatch):
    """tqdm's clock advances 30 seconds whenever it is read: every step looks very slow."""
    ticks = itertools.count(step=30.0)
    monkeypatch.setattr(tqdm.std, "time", lambda: float(next(ticks)))


@pytest.fixture
def redraws(monkeypatch):
    """The list of progress counts at which any tqdm bar redraws."""
    seen = []
    refresh = tqdm.std.tqdm.refresh

    def counting_refresh(self, *args, **kwargs):
        seen.append(self.n)
        return refresh(self, *args, **kwargs)

    monkeypatch.setattr(tqdm.std.tqdm, "refresh", counting_refresh)
    return seen


def test_a_slow_bar_redraws_a_bounded_number_of_times(slow_clock, redraws):
    with progress_bar(5000, "work", "step") as bar:
        for _ in range(5000):
            bar.update(1)
    assert MAX_REDRAWS // 2 <= len(redraws) <= MAX_REDRAWS + 2, len(redraws)
    assert redraws[-1] == 5000  # the final state is always drawn


def test_a_time_only_throttle_would_redraw_at_every_slow_step(slow_clock, redraws):
    """The old set-up (at most two redraws a second), under the same clock: the bound above matters."""
    with tqdm.std.tqdm(total=500, mininterval=0.5) as bar:
        for _ in range(500):
            bar.update(1)
    assert len(redraws) >= 500


def test_slow_training_redraws_a_bounded_number_of_times(slow_clock, redraws):
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(400, 4), torch.randint(0, 3, (400,)))
    model = nn.Linear(4, 3)
    fit(model, data, epochs=4, batch_size=2, channels_last=False)  # 800 steps, 30 "seconds" each
    assert len(redraws) <= MAX_REDRAWS + 4 + 2, f"{len(redraws)} redraws for 800 slow steps"


def test_slow_data_generation_redraws_a_bounded_number_of_times(slow_clock, redraws):
    materialize(ShapesDataset(300, image_size=32, seed=0), progress=True)
    assert len(redraws) <= MAX_REDRAWS + 2, len(redraws)


def test_a_short_job_still_shows_its_progress():
    with progress_bar(3, "work", "step") as bar:
        for _ in range(3):
            bar.update(1)
        assert bar.miniters == 1


SLOW_CLOCK_IN_KERNEL = """\
import itertools, tqdm.std
ticks = itertools.count(step=30.0)
tqdm.std.time = lambda: float(next(ticks))   # every step looks 30 seconds long
"""

COURSE_TRAINING = """\
# NBVAL_IGNORE_OUTPUT
import torch
from torch import nn
from torch.utils.data import TensorDataset
from course_utils.train import fit
torch.manual_seed(0)
data = TensorDataset(torch.rand(3000, 4), torch.randint(0, 3, (3000,)))
fit(nn.Linear(4, 3), data, epochs=1, batch_size=1, channels_last=False);
"""


def run_cells_under_nbval(tmp_path, *sources) -> subprocess.CompletedProcess:
    cells = [nbformat.v4.new_code_cell(source, execution_count=i) for i, source in enumerate(sources, 1)]
    cells.append(nbformat.v4.new_code_cell("print('still talking')", execution_count=len(cells) + 1))
    cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="still talking\n")]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_nbval_reads_every_message_of_a_long_slow_training_cell(tmp_path):
    """3,000 training steps of 30 seconds each (by the kernel's clock): nbval gets the whole output."""
    result = run_cells_under_nbval(tmp_path, SLOW_CLOCK_IN_KERNEL, COURSE_TRAINING)
    assert result.returncode == 0, result.stdout[-3000:]
