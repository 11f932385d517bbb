"""Build the student notebooks: the solution notebooks with every exercise solution taken out.

    python -m course_utils.student            # notebooks/*.ipynb -> build/student/*.ipynb
                                              # and notebooks/ko/*.ipynb -> build/student/ko/*.ipynb

Solutions are marked as nbgrader marks them: a code cell tagged "solution" holds its answer
between the lines `### BEGIN SOLUTION` and `### END SOLUTION`, under a markdown heading
`## Exercise N · Title`. The student version replaces each such block with

    raise NotImplementedError("Exercise N (Title) is not written yet: ...")

at the same indentation, so any later cell that calls the unwritten code says which exercise to
finish first. A solution cell with no Exercise heading above it is a SolutionMarkerError.

What is cleared (outputs and execution count), and why: the stored outputs come from a run
*with* the solutions, so any output that depends on a solution would give it away (a "✓ … right"
line, a printed box, a plot drawn with the learner's function). Cleared are

* the solution cells themselves and every cell tagged "self-check";
* every later code cell that reads a *tainted* name: a name bound at top level by a solution cell
  (its full source: functions, classes, assignments, imports), or bound by a cell that was itself
  cleared (transitively: `boxed = ... mask_to_box(...)` taints `boxed` and so every reader of it).

Names are found with `ast` (names read anywhere in the cell, names bound at module level, plus
the objects changed by `obj.attr = ...` or `obj[key] = ...`), so a name in a comment or a
string does not count, and `head` does not match `heads`. The rule is cell-level and
deliberately conservative: a tainted name stays tainted even if a later clean cell rebinds it,
and every name a cleared cell binds is tainted, even one that did not depend on the solution
(one output too many cleared costs a rerun; one too few gives an answer away). IPython lines
(`%magic`, `!shell`) are read token by token; a cell that does not parse at all falls back to
tokens too. Every other cell is copied unchanged, outputs included.
"""

from __future__ import annotations

import argparse
import ast
import copy
import io
import json
import keyword
import re
import tokenize
from pathlib import Path

from .i18n import translate
from .paths import REPO_ROOT

SOLUTION_TAG, SELF_CHECK_TAG = "solution", "self-check"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUDENT_DIR = REPO_ROOT / "build" / "student"
HEADING = re.compile(r"^(#+)\s")
#: An exercise's heading, in the English notebooks and in the translated ones (notebooks/ko/).
EXERCISE = re.compile(r"^#+\s*(?:Exercise|연습 문제)\s+(\d+)\s*·\s*(.+)")


class SolutionMarkerError(ValueError):
    """A solution cell whose markers are missing, unbalanced or nested, or with no Exercise heading."""


# --- the stub ------------------------------------------------------------------------------------


def stub_line(exercise: str, language: str = "en") -> str:
    """The statement replacing a solution block, e.g. for exercise "Exercise 1 (From a mask to a box)",
    in the notebook's language (its metadata "language"; the message from course_utils' catalog)."""
    number, title = re.match(r"Exercise (\d+) \((.*)\)$", exercise).groups()
    label = translate("Exercise {number} ({title})", language, number=number, title=title)
    message = translate(
        "{exercise} is not written yet: write your answer in its cell, under its heading, run that cell, "
        "then rerun the cells below it.",
        language,
        exercise=label,
    )
    return f"raise NotImplementedError({json.dumps(message, ensure_ascii=False)})"


def strip_solution(source: str, exercise: str, language: str = "en") -> str:
    """Replace each BEGIN/END SOLUTION block of `source` by an indented stub naming `exercise`."""
    lines, output, inside = source.splitlines(), [], False
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise SolutionMarkerError(f"line {number}: {BEGIN} inside another solution block")
            inside = True
            output.append(line[: len(line) - len(line.lstrip())] + stub_line(exercise, language))
        elif marker == END:
            if not inside:
                raise SolutionMarkerError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            output.append(line)
    if inside:
        raise SolutionMarkerError(f"{BEGIN} without {END}")
    return "\n".join(output)


def headings(markdown: str) -> list[str]:
    """The heading lines of a markdown cell, skipping fenced code blocks (where `#` is a comment)."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and HEADING.match(line):
            found.append(line.strip())
    return found


def exercises(cells) -> list[str | None]:
    """For each cell, the exercise it belongs to ("Exercise 1 (From a mask to a box)"), or None.

    An `## Exercise N · Title` heading opens an exercise; the next heading of the same or a
    higher level (as many `#` or fewer) that is not an exercise closes it."""
    labels, current, level = [], None, 0
    for cell in cells:
        for line in headings(cell.source) if cell.cell_type == "markdown" else []:
            depth, match = len(HEADING.match(line).group(1)), EXERCISE.match(line)
            if match:
                current, level = f"Exercise {match.group(1)} ({match.group(2).strip()})", depth
            elif depth <= level:
                current, level = None, 0
        labels.append(current)
    return labels


# --- which names a code cell reads and binds ----------------------------------------------------


def split_magics(source: str) -> tuple[str, str]:
    """(the Python lines, the IPython lines starting with % or !) of a cell, each as one text."""
    python, magic = [], []
    for line in source.splitlines():
        (magic if line.lstrip().startswith(("%", "!")) else python).append(line)
    return "\n".join(python), "\n".join(magic)


def token_names(text: str) -> tuple[set[str], set[str]]:
    """(names read, names bound) of text that is not Python: identifiers token by token, and those
    followed by `=` as bound. Comments and strings do not count, unless the text cannot even be
    tokenized; then every identifier-like word counts."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type != tokenize.COMMENT]
        words = [(t.string, t.type == tokenize.NAME) for t in tokens]
    except (tokenize.TokenError, SyntaxError):
        words = [(word, word[0].isalpha() or word[0] == "_") for word in re.findall(r"\w+|==|\S", text)]
    names = [(i, word) for i, (word, is_name) in enumerate(words) if is_name and not keyword.iskeyword(word)]
    bound = {word for i, word in names if i + 1 < len(words) and words[i + 1][0] == "="}
    return {word for _, word in names}, bound


def bound_names(tree: ast.AST) -> set[str]:
    """Module-level names a parsed cell binds (def, class, import, assignment, for, with, except)
    or changes (`obj.attr = ...`, `obj[key] = ...` change `obj`). Function and class bodies,
    lambdas and comprehensions have their own scope and are not entered."""
    names = set()
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name != "*"}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, ast.Store):
            root = node
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name):
                names.add(root.id)
        names |= bound_names(node)
    return names


def cell_names(source: str) -> tuple[set[str], set[str]]:
    """(names read, names bound) by a code cell: `ast` for its Python, tokens for its IPython lines
    (and for the whole cell if its Python does not parse)."""
    python, magic = split_magics(source)
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return token_names(source)
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    magic_read, magic_bound = token_names(magic)
    return read | magic_read, bound_names(tree) | magic_bound


# --- the student notebook ------------------------------------------------------------------------


def tags(cell) -> list[str]:
    """The cell's tags (cell.metadata.tags), [] if it has none."""
    return cell.metadata.get("tags", [])


def cells_to_clear(cells) -> list[int]:
    """Indices of the cells whose stored outputs come from the solutions (see the module docstring):
    solution and self-check cells, and every code cell reading a tainted name."""
    tainted, cleared = set(), []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        read, bound = cell_names(cell.source)
        if SOLUTION_TAG in tags(cell) or SELF_CHECK_TAG in tags(cell) or read & tainted:
            tainted |= bound
            cleared.append(index)
    return cleared


def student_notebook(notebook):
    """A copy of a solution notebook (nbformat.NotebookNode) with its solutions stubbed out and the
    outputs that depend on them cleared."""
    student = copy.deepcopy(notebook)
    for index in cells_to_clear(student.cells):
        student.cells[index].outputs, student.cells[index].execution_count = [], None
    for index, (cell, exercise) in enumerate(zip(student.cells, exercises(student.cells))):
        if SOLUTION_TAG not in tags(cell):
            continue
        if cell.cell_type != "code" or BEGIN not in cell.source:
            raise SolutionMarkerError(f"cell {index} is tagged '{SOLUTION_TAG}' but has no {BEGIN} block")
        if exercise is None:
            raise SolutionMarkerError(
                f"cell {index} is tagged '{SOLUTION_TAG}' but no '## Exercise N · Title' heading is above it"
            )
        try:
            cell.source = strip_solution(cell.source, exercise, notebook.metadata.get("language", "en"))
        except SolutionMarkerError as error:
            raise SolutionMarkerError(f"cell {index}: {error}") from None
    return student


def build_student_notebooks(source_dir: Path, target_dir: Path) -> list[Path]:
    """Write the student version of every numbered notebook in source_dir into target_dir."""
    import nbformat

    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_dir.glob("[0-9]*.ipynb")):
        target = target_dir / path.name
        try:
            student = student_notebook(nbformat.read(path, as_version=4))
        except SolutionMarkerError as error:
            raise SolutionMarkerError(f"{path.name}: {error}") from None
        nbformat.write(student, target)
        written.append(target)
    if not written:
        raise FileNotFoundError(f"no notebooks (NN_*.ipynb) in {source_dir}")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--target", type=Path, default=STUDENT_DIR)
    parser.add_argument(
        "--no-translations", action="store_true", help="skip the translated editions (SOURCE/ko/ -> TARGET/ko/)"
    )
    args = parser.parse_args(argv)
    folders = [(args.source, args.target)]
    if not args.no_translations:
        folders += [
            (folder, args.target / folder.name) for folder in sorted(args.source.glob("[a-z][a-z]")) if folder.is_dir()
        ]
    for source, target in folders:
        for path in build_student_notebooks(source, target):
            print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


if __name__ == "__main__":
    main()
