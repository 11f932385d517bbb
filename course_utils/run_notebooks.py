"""Execute notebooks top to bottom in fresh kernels, in place, as CI expects their stored outputs.

    python -m course_utils.run_notebooks                 # every notebook in notebooks/ that needs no download
    python -m course_utils.run_notebooks notebooks/03_*.ipynb

Used by maintainers before committing a notebook (`make execute`), so its stored outputs come
from one clean run. (No torch here: the kernels import it, this process does not.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .paths import course_notebooks, translated_notebooks


def execute_notebook(
    path: Path, write: bool = True, timeout: int = 1200, append_code: str | None = None, record_timing: bool = False
):
    """Run every cell of the notebook at `path` in a new kernel whose working directory is the
    notebook's folder; return (the executed notebook, an nbformat node, and the wall seconds,
    kernel start-up included).

    write: store the new outputs in the file (execution timestamps left out: noise in every diff).
    timeout: seconds each cell may take.
    append_code: a code cell run after the notebook's own cells (say, to measure the kernel),
    its output the last cell's of the returned notebook; never written to the file.
    record_timing: keep each cell's message times (metadata.execution, as nbclient records them)
    in the returned notebook; never written to the file.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    if record_timing and write:
        raise ValueError("record_timing keeps timestamps that are noise in every diff: use it with write=False")
    if append_code is not None:
        if write:
            raise ValueError("append_code runs a cell that is not the notebook's: use it with write=False")
        notebook.cells.append(nbformat.v4.new_code_cell(append_code))
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=record_timing,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(notebook, path)
    return notebook, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="notebooks (default: all in notebooks/, then notebooks/ko/, but those needing a download)",
    )
    args = parser.parse_args(argv)
    paths = args.paths or course_notebooks() + translated_notebooks()  # English first: it trains, Korean loads
    for path in paths:
        print(f"{path.name}: ", end="", flush=True)
        _, seconds = execute_notebook(path)
        print(f"{seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
