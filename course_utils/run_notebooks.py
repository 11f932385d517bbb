"""Execute notebooks top to bottom in fresh kernels, in place, as CI expects their stored outputs.

    python -m course_utils.run_notebooks                 # every notebook in notebooks/
    python -m course_utils.run_notebooks notebooks/03_*.ipynb

Used by maintainers before committing a notebook (`make execute`), so its stored outputs come
from one clean run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .train import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def execute(notebook, folder: Path, timeout: int = 1200) -> float:
    """Run every cell of a notebook (nbformat node, changed in place) in a new kernel whose
    working directory is `folder`; return the wall seconds, kernel start-up included."""
    from nbclient import NotebookClient

    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timestamps: noise in every diff
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def execute_notebook(path: Path, timeout: int = 1200, write: bool = True) -> float:
    """Run every cell of `path` in a new kernel (cwd = its folder); return the wall seconds."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    seconds = execute(notebook, path.parent, timeout)
    if write:
        nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all in notebooks/)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
    for path in paths:
        print(f"{path.name}: ", end="", flush=True)
        print(f"{execute_notebook(path):.1f} s", flush=True)


if __name__ == "__main__":
    main()
