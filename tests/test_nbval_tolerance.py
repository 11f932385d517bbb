"""The tolerant comparison of trained outputs (tests/nbval_tolerance.py) can fail, and fails for
the right reasons: a number outside its band, a lost row, a changed word."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.nbval_tolerance import METADATA_KEY, number_mismatches

ROOT = Path(__file__).resolve().parent.parent

TABLE = """\
                         pix.acc   mIoU
all background             0.875  0.109
FCN-32s                    0.943  0.638
FCN-8s                     0.977  0.825
"""


def test_numbers_within_the_tolerance_pass():
    moved = TABLE.replace("0.638", "0.651").replace("0.825", "0.809")
    assert number_mismatches(TABLE, moved, abs_tol=0.03) == []


def test_a_number_outside_the_tolerance_fails_and_names_its_line():
    regressed = TABLE.replace("0.825", "0.700")
    problems = number_mismatches(TABLE, regressed, abs_tol=0.03)
    assert len(problems) == 1
    assert "0.700 where 0.825 was stored" in problems[0] and "FCN-8s" in problems[0]


def test_a_lost_row_fails():
    shorter = "\n".join(line for line in TABLE.splitlines() if "FCN-32s" not in line) + "\n"
    problems = number_mismatches(TABLE, shorter, abs_tol=1.0)
    assert problems and "text differs" in problems[0] and "stored 4 lines, got 3" in problems[0]


def test_a_changed_word_fails_even_with_a_huge_tolerance():
    assert number_mismatches("predicted ring, square", "predicted crescent, square", abs_tol=100)


def test_column_width_may_change_with_the_number():
    assert number_mismatches("val acc  98.0%\n", "val acc 100.0%\n", percent_tol=2.5) == []


def test_percentages_have_their_own_tolerance():
    stored = "train loss 0.007, val acc 98.4%"
    assert number_mismatches(stored, "train loss 0.012, val acc 97.6%", abs_tol=0.01, percent_tol=1.0) == []
    assert number_mismatches(stored, "train loss 0.007, val acc 96.0%", abs_tol=0.01, percent_tol=1.0)
    assert number_mismatches(stored, "train loss 0.300, val acc 98.4%", abs_tol=0.01, percent_tol=1.0)
    assert number_mismatches("98.4%", "98.4", abs_tol=1)  # a percentage that lost its sign


def test_relative_tolerance_scales_with_the_stored_number():
    assert number_mismatches("990 of 1000", "985 of 1000", rel_tol=0.01) == []
    assert number_mismatches("990 of 1000", "975 of 1000", rel_tol=0.01)


def test_without_a_tolerance_numbers_must_be_equal():
    assert number_mismatches("accuracy 0.990", "accuracy 0.990") == []
    assert number_mismatches("accuracy 0.990", "accuracy 0.991")


def notebook_printing(stored: str, printed: str, tolerance: dict | None) -> nbformat.NotebookNode:
    """A one-cell notebook whose stored output is `stored` and whose code prints `printed`."""
    cell = nbformat.v4.new_code_cell(f"print({printed!r}, end='')", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    if tolerance is not None:
        cell.metadata[METADATA_KEY] = tolerance
    return nbformat.v4.new_notebook(cells=[cell])


def run_nbval(notebook, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "cell.ipynb"
    nbformat.write(notebook, path)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.nbval_tolerance",
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
        timeout=300,
    )


@pytest.mark.parametrize(
    "printed, tolerance, passes",
    [
        ("FCN-8s mIoU 0.811", {"abs": 0.03}, True),  # another machine's training
        ("FCN-8s mIoU 0.811", None, False),  # no tolerance: strict, as nbval is
        ("FCN-8s mIoU 0.700", {"abs": 0.03}, False),  # a real regression
        ("FCN-16s mIoU 0.825", {"abs": 0.03}, False),  # the row changed
    ],
)
def test_nbval_uses_the_tolerance_of_the_cell(tmp_path, printed, tolerance, passes):
    result = run_nbval(notebook_printing("FCN-8s mIoU 0.825", printed, tolerance), tmp_path)
    assert (result.returncode == 0) == passes, result.stdout[-3000:]
    if not passes and tolerance is not None:
        assert "outside the tolerance" in result.stdout
