"""Build the student notebooks: the solution notebooks with every exercise solution taken out.

    python -m course_utils.student            # notebooks/*.ipynb -> build/student/*.ipynb

Solutions are marked as nbgrader marks them: a code cell tagged "solution" holds its answer
between the lines `### BEGIN SOLUTION` and `### END SOLUTION`. The student version replaces
each such block with `raise NotImplementedError(...)` at the same indentation and clears that
cell's outputs; every other cell is copied unchanged, outputs included.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .train import REPO_ROOT

SOLUTION_TAG = "solution"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUDENT_DIR = REPO_ROOT / "build" / "student"
STUB = 'raise NotImplementedError("your code here")'


class SolutionMarkerError(ValueError):
    """A solution cell whose markers are missing, unbalanced or nested."""


def strip_solution(source: str) -> str:
    """Replace each BEGIN/END SOLUTION block of `source` by an indented NotImplementedError stub."""
    lines, output, inside = source.splitlines(), [], False
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise SolutionMarkerError(f"line {number}: {BEGIN} inside another solution block")
            inside = True
            output.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif marker == END:
            if not inside:
                raise SolutionMarkerError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            output.append(line)
    if inside:
        raise SolutionMarkerError(f"{BEGIN} without {END}")
    return "\n".join(output)


def student_notebook(notebook):
    """A copy of a solution notebook (nbformat.NotebookNode) with its solutions stubbed out."""
    import copy

    student = copy.deepcopy(notebook)
    for index, cell in enumerate(student.cells):
        if SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        if cell.cell_type != "code" or BEGIN not in cell.source:
            raise SolutionMarkerError(f"cell {index} is tagged '{SOLUTION_TAG}' but has no {BEGIN} block")
        try:
            cell.source = strip_solution(cell.source)
        except SolutionMarkerError as error:
            raise SolutionMarkerError(f"cell {index}: {error}") from None
        cell.outputs, cell.execution_count = [], None
    return student


def build_student_notebooks(source_dir: Path, target_dir: Path) -> list[Path]:
    """Write the student version of every numbered notebook in source_dir into target_dir."""
    import nbformat

    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_dir.glob("[0-9]*.ipynb")):
        target = target_dir / path.name
        nbformat.write(student_notebook(nbformat.read(path, as_version=4)), target)
        written.append(target)
    if not written:
        raise FileNotFoundError(f"no notebooks (NN_*.ipynb) in {source_dir}")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--target", type=Path, default=STUDENT_DIR)
    args = parser.parse_args(argv)
    for path in build_student_notebooks(args.source, args.target):
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


if __name__ == "__main__":
    main()

