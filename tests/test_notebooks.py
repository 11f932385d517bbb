"""The notebooks' structure: what nbval cannot see (markers it would silently skip, stale outputs,
exercises without a self-check, a missing summary)."""

import os
import re
from pathlib import Path

import nbformat
import pytest

from course_utils.paths import DOWNLOAD_NOTEBOOKS

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
#: Notebook 6 needs a download that the course's machines cannot make: it is stored without outputs
#: (tests/test_pets.py runs it on a fixture), so the tests of stored outputs skip it.
WITH_OUTPUTS = [path for path in NOTEBOOKS if path.stem not in DOWNLOAD_NOTEBOOKS]
MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP"}


def load(path):
    return nbformat.read(path, as_version=4)


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_course_has_its_notebooks_in_order():
    names = [path.stem for path in NOTEBOOKS]
    assert names == [
        "01_classification_detection_segmentation",
        "02_vgg11_backbone",
        "03_train_classifier",
        "04_classifier_to_fcn",
        "05_upsampling_and_skip_connections",
        "06_real_photos",
    ]
    assert DOWNLOAD_NOTEBOOKS == ("06_real_photos",)


@pytest.mark.parametrize("path", WITH_OUTPUTS, ids=lambda p: p.stem)
def test_stored_outputs_come_from_one_clean_run(path):
    counts = [cell.execution_count for cell in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1)), "re-run the notebook in a fresh kernel (make execute)"
    errors = [o for cell in code_cells(load(path)) for o in cell.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem in DOWNLOAD_NOTEBOOKS], ids=lambda p: p.stem)
def test_a_notebook_that_needs_a_download_stores_no_outputs_and_says_so(path):
    """Never outputs from the fixture as if they were results: none at all, and a note saying why."""
    notebook = load(path)
    for cell in code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]
    assert "stored without outputs" in notebook.cells[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_markers_are_spelled_so_that_nbval_sees_them(path):
    """nbval only honours a marker alone on its comment line; anything else is silently ignored."""
    for cell in code_cells(load(path)):
        for line in cell.source.splitlines():
            if "NBVAL" in line:
                assert line.strip().lstrip("#").strip() in MARKERS, f"unrecognised marker line: {line!r}"


#: The only outputs nbval may ignore: what depends on the checkpoint cache (a progress bar or a
#: "Loaded" line), on the device, or the class names one trained network gives one scene.
IGNORABLE = r"trained_(classifier|segmenter)\(|pick_device\(\)|explorer\.describe\("


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ignored_outputs_are_only_cells_that_must_vary_and_say_why(path):
    for cell in code_cells(load(path)):
        if "NBVAL_IGNORE_OUTPUT" in cell.source:
            lines = cell.source.splitlines()
            assert lines[0] == "# NBVAL_IGNORE_OUTPUT" and lines[1].startswith("# ("), "say why, on the next line"
            assert re.search(IGNORABLE, cell.source), cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tolerances_are_well_formed_and_only_where_training_shows(path):
    """Tolerant comparison (tests/nbval_tolerance.py) is for outputs of trained models only, and
    each such notebook says once why its numbers vary."""
    notebook = load(path)
    tolerant = [cell for cell in code_cells(notebook) if "nbval-tolerance" in cell.metadata]
    for cell in tolerant:
        tolerance = cell.metadata["nbval-tolerance"]
        assert tolerance and set(tolerance) <= {"abs", "rel", "percent"}, tolerance
        assert all(isinstance(v, (int, float)) and v > 0 for v in tolerance.values()), tolerance
        assert cell.outputs, "a tolerance on a cell without output compares nothing"
        assert "NBVAL_IGNORE_OUTPUT" not in cell.source
    if tolerant:
        assert any("from machine to" in cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    else:  # no trained outputs, or no stored outputs at all
        assert path.stem in {"01_classification_detection_segmentation", "02_vgg11_backbone", *DOWNLOAD_NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_goals_and_closes_with_summary_and_questions(path):
    markdown = [cell.source for cell in load(path).cells if cell.cell_type == "markdown"]
    assert "After this notebook you will be able to" in markdown[0]
    assert re.search(r"about .*(seconds|minute)", markdown[0], re.IGNORECASE), "say how long the notebook takes"
    assert "## Summary" in markdown[-2] and "## Questions" in markdown[-2]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_question_has_a_collapsed_answer(path):
    """The last cell holds short answers, one per question, collapsed so that a learner tries first."""
    markdown = [cell.source for cell in load(path).cells if cell.cell_type == "markdown"]
    questions = re.findall(r"^(\d+)\. ", markdown[-2].split("## Questions")[1], re.MULTILINE)
    answers = markdown[-1]
    assert answers.startswith("<details>") and answers.rstrip().endswith("</details>"), answers[:80]
    assert "<summary>" in answers
    assert re.findall(r"^(\d+)\. ", answers, re.MULTILINE) == questions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_self_check_right_after_it(path):
    cells = code_cells(load(path))
    solutions = [i for i, cell in enumerate(cells) if "solution" in cell.metadata.get("tags", [])]
    assert solutions, "each notebook has at least one exercise"
    for i in solutions:
        assert "YOUR CODE HERE" in cells[i].source
        assert "self-check" in cells[i + 1].metadata.get("tags", [])
        assert re.match(r"check_\w+\(", cells[i + 1].source.strip())
        if path.stem not in DOWNLOAD_NOTEBOOKS:  # stored without outputs
            assert any(o.get("text", "").startswith("✓") for o in cells[i + 1].outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_are_shown_not_just_returned(path):
    """Every figure output has its text/plain companion, which nbval compares."""
    for cell in code_cells(load(path)):
        for output in cell.outputs:
            if "image/png" in output.get("data", {}):
                assert output["data"]["text/plain"].startswith("<Figure size")


def test_this_test_process_does_not_leak_a_matplotlib_backend_into_kernels():
    assert "MPLBACKEND" not in os.environ or os.environ["MPLBACKEND"].startswith("module://matplotlib_inline")
