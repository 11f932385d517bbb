"""Each notebook in a fresh kernel, cold (no checkpoints: it trains what it needs) and warm (every
checkpoint cached): wall seconds, kernel start-up included, and the kernel's peak resident memory."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..paths import course_notebooks
from ..run_notebooks import execute_notebook
from .common import log

#: Appended to each notebook run: the kernel's peak resident memory in bytes (-1 where unknown).
MEMORY_PROBE = """\
try:
    import resource, sys
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024))
except ImportError:  # Windows
    print(-1)
"""


def notebook_paths(names: tuple[str, ...] | None) -> list[Path]:
    """The course's notebooks in order, only those named in `names` unless it is None. None leaves
    out the notebooks that need a download (paths.DOWNLOAD_NOTEBOOKS); naming one includes it."""
    if names is None:
        return course_notebooks()
    return [path for path in course_notebooks(include_downloads=True) if path.stem in names]


def time_notebook(path: Path) -> dict:
    """Execute a notebook top to bottom in a fresh kernel, outputs discarded; time it and measure
    the kernel's memory.

    Returns {"seconds": wall time, "peak_rss_mb": the kernel's peak resident memory or None}.
    """
    notebook, seconds = execute_notebook(path, write=False, append_code=MEMORY_PROBE)
    peak_bytes = int(notebook.cells[-1].outputs[0]["text"])
    return {"seconds": seconds, "peak_rss_mb": peak_bytes / 2**20 if peak_bytes >= 0 else None}


def empty_folder(folder: Path) -> None:
    """Delete everything in `folder` (the scratch checkpoints and the cached datasets beside them),
    so that the next run is cold."""
    for entry in folder.glob("*"):
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def cold_runs(paths: list[Path], scratch: Path) -> dict:
    """Each notebook with the checkpoint folder `scratch` emptied first.

    Returns {notebook name: {"cold_s", "peak_rss_mb"}}.
    """
    results = {}
    for path in paths:
        empty_folder(scratch)
        log(f"  {path.stem}: cold ...")
        cold = time_notebook(path)
        results[path.stem] = {"cold_s": cold["seconds"], "peak_rss_mb": cold["peak_rss_mb"]}
        log(f"  {path.stem}: cold {cold['seconds']:.1f} s")
    return results


def warm_runs(paths: list[Path], cold: dict) -> dict:
    """Each notebook again, once every checkpoint it loads is cached, added to cold_runs' results.

    Returns {notebook name: {"cold_s", "warm_s", "peak_rss_mb"}}, peak_rss_mb the larger of the two runs.
    """
    results = {name: dict(figures) for name, figures in cold.items()}
    for path in paths:
        warm = time_notebook(path)
        result = results[path.stem]
        result["warm_s"] = warm["seconds"]
        if warm["peak_rss_mb"] is not None:
            result["peak_rss_mb"] = max(result["peak_rss_mb"] or 0, warm["peak_rss_mb"])
        log(f"  {path.stem}: warm {warm['seconds']:.1f} s, peak memory {result['peak_rss_mb']:.0f} MB")
    return results


def notebooks_total(notebooks: dict) -> dict:
    """{"cold_s", "warm_s"}: the seconds of all notebooks together."""
    return {key: sum(n[key] for n in notebooks.values()) for key in ("cold_s", "warm_s")}
