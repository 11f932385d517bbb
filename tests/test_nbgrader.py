"""nbgrader can grade the course: its solution and self-check cells carry nbgrader's cell metadata
(schema version 3, nbgrader 0.9), and `nbgrader validate` passes a right answer and names the
failing check of a wrong one. The validator tests need the optional extra: pip install -e ".[nbgrader]".
"""

import copy
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from course_utils.student import build_student_notebooks, exercises

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
#: The Korean edition, built from the English notebooks with the same cells: graded the same way.
KOREAN = sorted((NOTEBOOK_DIR / "ko").glob("[0-9]*.ipynb"))
SOLUTION_META = {"solution": True, "grade": False, "locked": False, "schema_version": 3}
CHECK_META = {"solution": False, "grade": True, "locked": True, "points": 1, "schema_version": 3}
needs_nbgrader = pytest.mark.skipif(
    importlib.util.find_spec("nbgrader") is None,
    reason='nbgrader is not installed (it is optional: pip install -e ".[nbgrader]")',
)


def tagged(notebook):
    """(cell, tag, exercise number) for each cell tagged "solution" or "self-check"."""
    found = []
    for cell, label in zip(notebook.cells, exercises(notebook.cells)):
        for tag in ("solution", "self-check"):
            if tag in cell.metadata.get("tags", []):
                found.append((cell, tag, int(re.match(r"Exercise (\d+) ", label).group(1))))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS + KOREAN, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_solution_and_check_cells_have_nbgrader_metadata(path):
    notebook = nbformat.read(path, as_version=4)
    cells = tagged(notebook)
    assert cells
    for cell, tag, number in cells:
        meta = cell.metadata.get("nbgrader")
        if tag == "solution":
            assert meta == SOLUTION_META | {"grade_id": f"ex{number}-solution"}, (cell.id, meta)
        else:
            assert meta == CHECK_META | {"grade_id": f"ex{number}-check"}, (cell.id, meta)
    # and nothing else claims to be an nbgrader cell
    assert sum("nbgrader" in c.metadata for c in notebook.cells) == len(cells)


def test_grade_ids_are_unique_across_the_course():
    ids = [c.metadata["nbgrader"]["grade_id"] for p in NOTEBOOKS for c, _, _ in tagged(nbformat.read(p, 4))]
    assert len(ids) == len(set(ids)) == 24  # 12 exercises, a solution and a check each


def test_the_student_notebooks_keep_the_metadata(tmp_path):
    for path in build_student_notebooks(NOTEBOOK_DIR, tmp_path):
        original, student = nbformat.read(NOTEBOOK_DIR / path.name, 4), nbformat.read(path, 4)
        for before, after in zip(original.cells, student.cells):
            assert before.metadata.get("nbgrader") == after.metadata.get("nbgrader")


# --- nbgrader's own validation (optional) ---------------------------------------------------------------


def student_notebook_1(tmp_path, right: bool, edition: str = "") -> Path:
    """Notebook 1's student version (English, or edition "ko") in tmp_path, with the exercise
    answered right or wrong."""
    from course_utils.student import student_notebook

    source = next((NOTEBOOK_DIR / edition).glob("01_*.ipynb"))
    solution = nbformat.read(source, 4)
    notebook = student_notebook(copy.deepcopy(solution))
    for cell, original in zip(notebook.cells, solution.cells):
        if "solution" in cell.metadata.get("tags", []):
            cell.source = original.source if right else original.source.replace("cols.min(), rows.min()", "0, 0")
    path = tmp_path / source.name
    nbformat.write(notebook, path)
    return path


@needs_nbgrader
def test_nbgrader_accepts_the_metadata():
    from nbgrader.nbgraderformat import MetadataValidator

    assert MetadataValidator.schema_version == 3
    for path in NOTEBOOKS + KOREAN:
        MetadataValidator().validate_nb(nbformat.read(path, as_version=4))  # raises ValidationError if wrong


@needs_nbgrader
@pytest.mark.parametrize("edition", ["", "ko"], ids=["en", "ko"])
def test_nbgrader_validate_passes_a_right_answer(tmp_path, edition):
    from nbgrader.validator import Validator

    assert Validator().validate(str(student_notebook_1(tmp_path, right=True, edition=edition))) == {}


@needs_nbgrader
@pytest.mark.parametrize("edition", ["", "ko"], ids=["en", "ko"])
def test_nbgrader_validate_names_the_failing_check(tmp_path, edition):
    from nbgrader.validator import Validator

    results = Validator().validate(str(student_notebook_1(tmp_path, right=False, edition=edition)))
    (failed,) = results["failed"]
    assert failed["source"] == "check_mask_to_box(mask_to_box)"
    assert "SelfCheckError" in failed["raw_error"] and "mask_to_box:" in failed["raw_error"]
