"""The student notebooks: solutions removed, outputs that depend on them cleared, stubs name their exercise."""

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from course_utils.checks import SelfCheckError
from course_utils.paths import DOWNLOAD_NOTEBOOKS
from course_utils.student import (
    BEGIN,
    END,
    SolutionMarkerError,
    build_student_notebooks,
    cell_names,
    cells_to_clear,
    strip_solution,
    student_notebook,
)

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


#: The English notebooks and the Korean edition built from them (notebooks/ko/).
EDITIONS = {"en": NOTEBOOK_DIR, "ko": NOTEBOOK_DIR / "ko"}
#: How each edition's stub names its exercise and says it is not written.
STUB_WORDING = {"en": ("Exercise {} (", "is not written yet"), "ko": ("연습 문제 {} (", "아직 작성하지 않았습니다")}


@pytest.fixture(scope="module", params=sorted(EDITIONS))
def edition(request):
    return request.param


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, edition):
    source = EDITIONS[edition]
    target = tmp_path_factory.mktemp(f"student-{edition}")
    written = build_student_notebooks(source, target)
    return [(nbformat.read(source / p.name, 4), nbformat.read(p, 4), p.name) for p in written]


def not_written_message(language):
    """What a self-check says, in `language`, when it meets an exercise's stub."""
    from course_utils.checks._common import _not_written
    from course_utils.i18n import set_language

    set_language(language)
    try:
        return _not_written()
    finally:
        set_language("en")


@pytest.fixture()
def english_afterwards():
    """A test that runs a Korean notebook's first cell (set_language("ko")) leaves English behind."""
    yield
    from course_utils.i18n import set_language

    set_language("en")


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
    assert [name for _, _, name in pairs] == sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9]*.ipynb"))  # both editions
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


def test_solution_cells_become_stubs_with_cleared_outputs(pairs, edition):
    label, not_written = STUB_WORDING[edition]
    for _, student, name in pairs:
        stubs = [(index, cell) for index, cell in enumerate(student.cells) if is_solution(cell)]
        assert stubs, name
        for index, cell in stubs:
            assert "YOUR CODE HERE" in cell.source and "raise NotImplementedError" in cell.source
            assert cell.outputs == [] and cell.execution_count is None
            compile(cell.source, name, "exec")  # still valid Python
            # the stub names the exercise of the last "Exercise N ·" heading above it
            above = "\n".join(c.source for c in student.cells[:index] if c.cell_type == "markdown")
            number = re.findall(r"^#+\s*(?:Exercise|연습 문제)\s+(\d+)\s*·", above, re.MULTILINE)[-1]
            assert f'NotImplementedError("{label.format(number)}' in cell.source, f"{name} cell {index}"
            assert not_written in cell.source


def test_everything_else_is_unchanged_but_some_outputs(pairs):
    for solution, student, name in pairs:
        assert len(solution.cells) == len(student.cells)
        assert solution.metadata == student.metadata
        for original, copy in zip(solution.cells, student.cells):
            if is_solution(original):
                continue
            if copy.get("outputs") == [] and original.get("outputs"):  # cleared: only the outputs
                assert copy.execution_count is None, name
                copy = copy | {"outputs": original.outputs, "execution_count": original.execution_count}
            assert original == copy, f"{name}: a non-solution cell changed"


def test_each_self_check_rejects_its_stub_with_its_own_message(pairs, edition, english_afterwards):
    expected = not_written_message(edition)
    for _, student, _name in pairs:
        code = [cell for cell in student.cells if cell.cell_type == "code"]
        namespace = {}
        # the notebook's imports (notebook 6 first checks its downloads, then imports)
        exec(next(cell.source for cell in code if "from course_utils.checks import" in cell.source), namespace)
        for stub, check in zip(code, code[1:]):
            if not is_solution(stub):
                continue
            exec(stub.source, namespace)
            with pytest.raises(SelfCheckError, match=r"^\S+.*: " + re.escape(expected)):
                exec(check.source, namespace)


def test_strip_solution_keeps_indentation_and_the_rest():
    source = "def f(x):\n    # YOUR CODE HERE\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\nprint(f)"
    assert strip_solution(source, "Exercise 1 (F)") == (
        "def f(x):\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("Exercise 1 (F) is not written yet: write your answer in its cell, '
        'under its heading, run that cell, then rerun the cells below it.")\nprint(f)'
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
        strip_solution(source, "Exercise 1 (X)")


def test_a_tagged_cell_without_markers_is_an_error(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["solution"]
    notebook.cells = [cell]
    nbformat.write(notebook, tmp_path / "01_x.ipynb")
    with pytest.raises(SolutionMarkerError, match="cell 0 is tagged 'solution' but has no"):
        build_student_notebooks(tmp_path, tmp_path / "out")


# --- no stored output gives a solution away ---------------------------------------------------------


def oracle_names(source):
    """(read, bound) of a cell, found more simply than student.cell_names: Name loads anywhere;
    def/class/import names and Name targets of top-level statements (None if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            bound |= {a.asname or a.name.split(".")[0] for a in statement.names}
        else:
            for node in ast.walk(statement):
                if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)):
                    break  # keep it simple: comprehension targets are not module names
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    bound.add(node.id)
    return read, bound


def test_no_output_contains_a_check_mark(pairs):
    for _, student, name in pairs:
        for index, cell in enumerate(student.cells):
            assert "✓" not in json.dumps(cell.get("outputs", []), ensure_ascii=False), f"{name} cell {index}"


def test_self_checks_and_every_reader_of_a_solution_name_have_no_outputs(pairs):
    checked = 0
    for solution, student, name in pairs:
        tainted = set()
        for index, cell in enumerate(student.cells):
            if cell.cell_type != "code":
                continue
            tags = cell.metadata.get("tags", [])
            if "self-check" in tags:
                assert cell.outputs == [] and cell.execution_count is None, f"{name} cell {index}"
            if "solution" in tags:
                tainted |= oracle_names(solution.cells[index].source)[1]  # the names the stub lost too
                continue
            names = oracle_names(cell.source)
            if names and names[0] & tainted:  # reads a solution name, directly or through a cleared cell
                assert cell.outputs == [] and cell.execution_count is None, f"{name} cell {index}"
                tainted |= names[1]
                checked += 1
    assert checked >= 5  # the self-checks at least


def test_cells_that_do_not_depend_on_a_solution_keep_their_outputs(pairs):
    kept = 0
    for solution, student, name in pairs:
        first = next(i for i, cell in enumerate(solution.cells) if is_solution(cell))
        assert solution.cells[:first] == student.cells[:first], f"{name}: a cell above the first exercise changed"
        kept += sum(bool(cell.get("outputs")) for cell in student.cells)
        if Path(name).stem not in DOWNLOAD_NOTEBOOKS:  # notebook 6 is stored without outputs
            assert any(cell.get("outputs") for cell in student.cells), f"{name}: no output kept"
    assert kept >= 20


# --- the rule, on small notebooks ------------------------------------------------------------------


def notebook(*cells):
    """A notebook of (cell_type or tag, source) pairs; tagged code cells for "solution"/"self-check".
    Every code cell gets a stored output, as if the solution notebook had been run."""
    nb = nbformat.v4.new_notebook()
    for kind, source in cells:
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
            continue
        cell = nbformat.v4.new_code_cell(source, execution_count=len(nb.cells) + 1)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="from the solution run\n")]
        if kind != "code":
            cell.metadata["tags"] = [kind]
        nb.cells.append(cell)
    return nb


SOLUTION = (
    "def head(x):\n    # YOUR CODE HERE\n    ### BEGIN SOLUTION\n    pooled = x * 2\n    return pooled\n"
    "    ### END SOLUTION"
)


def cleared(*cells):
    """Indices of the cells cleared in the student version, after a heading and the solution cell."""
    nb = notebook(("code", "import math"), ("markdown", "## Exercise 3 · The head"), ("solution", SOLUTION), *cells)
    student = student_notebook(nb)
    assert cells_to_clear(nb.cells) == [i for i, c in enumerate(student.cells) if c.get("outputs") == []]
    return [i - 3 for i in cells_to_clear(nb.cells) if i >= 3]


def test_direct_use_of_a_solution_name_is_cleared():
    assert cleared(("code", "print(head(2))"), ("code", "print(math.pi)")) == [0]


def test_self_check_cells_are_cleared_even_without_a_solution_name():
    assert cleared(("self-check", "check()"), ("code", "print(1)")) == [0]


def test_attribute_roots_and_uses_inside_functions_count():
    assert cleared(("code", "print(head.__name__)"), ("code", "def f():\n    return head(1)"), ("code", "f()")) == [
        0,
        1,
        2,
    ]


def test_use_through_a_name_computed_from_a_solution_is_cleared_transitively():
    cells = [
        ("code", "boxed = [head(i) for i in range(3)]"),
        ("code", "total = sum(boxed)"),
        ("code", "print(total)"),
        ("code", "print(i)"),
    ]
    assert cleared(*cells) == [0, 1, 2]  # the comprehension's `i` is not a module name


def test_an_object_changed_by_a_cleared_cell_is_tainted():
    cells = [("code", "table = {}"), ("code", "table['a'] = head(1)"), ("code", "print(table)")]
    assert cleared(*cells) == [1, 2]


def test_names_in_comments_strings_or_longer_names_do_not_count():
    cells = [
        ("code", "# head(1) is the exercise\nheads = 'head'\nprint(heads, f'{3}head')"),
        ("code", "x = {'head': 1}['head']"),
    ]
    assert cleared(*cells) == []


def test_solution_locals_and_parameters_are_not_solution_names():
    assert cleared(("code", "pooled = 1\nprint(pooled)"), ("code", "print(x)")) == []


def test_a_use_before_the_solution_cell_keeps_its_output():
    nb = notebook(("code", "head = 3\nprint(head)"), ("markdown", "## Exercise 3 · The head"), ("solution", SOLUTION))
    assert cells_to_clear(nb.cells) == [2]


def test_rule_a_tainted_name_stays_tainted_even_if_a_clean_cell_rebinds_it():
    # Deliberately conservative: `head = 3` does not untaint `head`, so the reader below is cleared.
    assert cleared(("code", "head = 3"), ("code", "print(head)")) == [1]


def test_magics_and_cells_that_do_not_parse_do_not_crash():
    cells = [
        ("code", "%timeit head(1)"),  # a line magic reading a solution name
        ("code", "%%time\nprint(math.tau)"),  # a cell magic over clean Python
        ("code", "!pip list | grep torch"),  # shell
        ("code", "files = !ls\nprint(head)"),  # does not parse: read token by token
        ("code", "%%bash\necho 'it is not python' $((1+2))"),
        ("code", "def broken(:\n    head("),  # a syntax error: token by token
        ("code", "print(files)"),  # `files` was bound by a cleared cell that does not parse
    ]
    assert cleared(*cells) == [0, 3, 5, 6]
    assert cell_names("%%bash\necho 'head'")[0] == {"echo", "bash"}  # strings still do not count


# --- the stub names its exercise ------------------------------------------------------------------


def test_the_stub_raises_naming_its_exercise():
    heading = "Intro\n\n## Exercise 7 · The `head`, at last\n\nWrite it.\n\n### Hint\nPool."  # a subheading stays in it
    nb = notebook(("markdown", heading), ("solution", SOLUTION))
    source = student_notebook(nb).cells[1].source
    assert "# YOUR CODE HERE" in source and "pooled" not in source
    namespace = {}
    exec(source, namespace)
    message = r"^Exercise 7 \(The `head`, at last\) is not written yet: write your answer in its cell"
    with pytest.raises(NotImplementedError, match=message):
        namespace["head"](1)


@pytest.mark.parametrize(
    "above",
    [
        [],
        [("markdown", "## Exercise 7 · The head"), ("markdown", "## Something else")],  # closed by a new section
        [("markdown", "Some code:\n```python\n## Exercise 7 · The head\n```")],  # in a fenced block
        [("markdown", "## Exercise seven · The head")],
    ],
)
def test_a_solution_without_an_exercise_heading_is_an_error(above):
    nb = notebook(("code", "import math"), *above, ("solution", SOLUTION))
    with pytest.raises(SolutionMarkerError, match=f"cell {len(above) + 1} is tagged 'solution' but no '## Exercise"):
        student_notebook(nb)
