"""The student notebooks: solutions removed, everything else unchanged, self-checks say 'not written'."""

from pathlib import Path

import nbformat
import pytest

from course_utils.checks import SelfCheckError
from course_utils.student import BEGIN, END, SolutionMarkerError, build_student_notebooks, strip_solution

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    target = tmp_path_factory.mktemp("student")
    written = build_student_notebooks(NOTEBOOK_DIR, target)
    return [(nbformat.read(NOTEBOOK_DIR / p.name, 4), nbformat.read(p, 4), p.name) for p in written]


def solution_lines(source):
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def is_solution(cell):
    return "solution" in cell.metadata.get("tags", [])


def test_every_notebook_gets_a_student_version(pairs):
    assert [name for _, _, name in pairs] == sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
    assert len(pairs) >= 5


def test_no_solution_code_survives(pairs):
    for solution, student, name in pairs:
        for original, stub in zip(solution.cells, student.cells):
            if not is_solution(original):
                continue
            solved = solution_lines(original.source)
            assert solved, f"{name} has a solution cell without a marked solution"
            stub_lines = {line.strip() for line in stub.source.splitlines()}
            assert not stub_lines & set(solved), f"{name}: solution lines survived: {stub_lines & set(solved)}"
        text = "\n".join(cell.source for cell in student.cells)
        assert BEGIN not in text and END not in text


def test_solution_cells_become_stubs_with_cleared_outputs(pairs):
    for _, student, name in pairs:
        stubs = [cell for cell in student.cells if is_solution(cell)]
        assert stubs, name
        for cell in stubs:
            assert "YOUR CODE HERE" in cell.source and "raise NotImplementedError" in cell.source
            assert cell.outputs == [] and cell.execution_count is None
            compile(cell.source, name, "exec")  # still valid Python


def test_everything_else_is_unchanged(pairs):
    for solution, student, name in pairs:
        assert len(solution.cells) == len(student.cells)
        assert solution.metadata == student.metadata
        for original, copy in zip(solution.cells, student.cells):
            if not is_solution(original):
                assert original == copy, f"{name}: a non-solution cell changed"


def test_each_self_check_rejects_its_stub_with_its_own_message(pairs):
    for _, student, name in pairs:
        code = [cell for cell in student.cells if cell.cell_type == "code"]
        namespace = {}
        exec(code[0].source, namespace)  # the notebook's imports
        for stub, check in zip(code, code[1:]):
            if not is_solution(stub):
                continue
            exec(stub.source, namespace)
            with pytest.raises(SelfCheckError, match=r"^\S+.*: not written yet: replace `raise NotImplementedError`"):
                exec(check.source, namespace)


def test_strip_solution_keeps_indentation_and_the_rest():
    source = "def f(x):\n    # YOUR CODE HERE\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\nprint(f)"
    assert strip_solution(source) == (
        'def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError("your code here")\nprint(f)'
    )


@pytest.mark.parametrize(
    "source, message",
    [
        (f"{BEGIN}\nx = 1", "without ### END"),
        (f"x = 1\n{END}", "without ### BEGIN"),
        (f"{BEGIN}\n{BEGIN}\n{END}\n{END}", "inside another"),
    ],
)
def test_broken_markers_are_reported(source, message):
    with pytest.raises(SolutionMarkerError, match=message):
        strip_solution(source)


def test_a_tagged_cell_without_markers_is_an_error(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["solution"]
    notebook.cells = [cell]
    nbformat.write(notebook, tmp_path / "01_x.ipynb")
    with pytest.raises(SolutionMarkerError, match="cell 0 is tagged 'solution' but has no"):
        build_student_notebooks(tmp_path, tmp_path / "out")
