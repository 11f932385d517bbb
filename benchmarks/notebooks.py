"""Each notebook in a fresh kernel, cold (no checkpoints: it trains what it needs) and warm (every
checkpoint and held-out set cached): wall seconds from starting the kernel until the last cell has
run (and with the kernel's shutdown too), and the kernel's peak resident memory."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from course_utils.paths import course_notebooks
from course_utils.run_notebooks import execute_notebook

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

    Returns {"seconds": wall seconds from starting the kernel until its last cell has run, what a
    learner waits for who opens the notebook and runs all cells; "with_shutdown_s": the same and
    then stopping the kernel, which nobody waits for (a process that imported torch takes 1-2 s to
    exit); "peak_rss_mb": the kernel's peak resident memory or None}.
    """
    notebook, with_shutdown_s = execute_notebook(path, write=False, append_code=MEMORY_PROBE, record_timing=True)
    finished = datetime.now(timezone.utc)
    probe = notebook.cells[-1]  # it starts once every cell of the notebook has run, and takes a millisecond
    all_cells_run = datetime.fromisoformat(probe.metadata.execution["iopub.execute_input"])
    shutdown_s = (finished - all_cells_run).total_seconds()
    peak_bytes = int(probe.outputs[0]["text"])
    return {
        "seconds": with_shutdown_s - shutdown_s,
        "with_shutdown_s": with_shutdown_s,
        "peak_rss_mb": peak_bytes / 2**20 if peak_bytes >= 0 else None,
    }


def empty_folder(folder: Path) -> None:
    """Delete everything in `folder` (the scratch checkpoints and the cached datasets beside them),
    so that the next run is cold."""
    for entry in folder.glob("*"):
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def cold_runs(paths: list[Path], scratch: Path) -> dict:
    """Each notebook with the checkpoint folder `scratch` emptied first.

    Returns {notebook name: {"cold_s", "cold_with_shutdown_s", "peak_rss_mb"}} (see time_notebook).
    """
    results = {}
    for path in paths:
        empty_folder(scratch)
        log(f"  {path.stem}: cold ...")
        cold = time_notebook(path)
        results[path.stem] = {
            "cold_s": cold["seconds"],
            "cold_with_shutdown_s": cold["with_shutdown_s"],
            "peak_rss_mb": cold["peak_rss_mb"],
        }
        log(f"  {path.stem}: cold {cold['seconds']:.1f} s ({cold['with_shutdown_s']:.1f} s with the kernel's shutdown)")
    return results


def warm_runs(paths: list[Path], cold: dict, repeats: int = 1) -> dict:
    """Each notebook again, `repeats` times (all notebooks in order, then all again), once every
    checkpoint and held-out set it loads is cached; added to cold_runs' results. Warm runs are
    short and a shared machine's noise large (the same notebook took 9 s, then 16 s, on a 2-core
    VM), so the fastest run counts, as timeit takes the best of its repeats.

    Returns {notebook name: {"cold_s", "cold_with_shutdown_s", "warm_s", "warm_with_shutdown_s",
    "warm_runs_s", "peak_rss_mb"}}: warm_s and warm_with_shutdown_s the fastest of the runs,
    warm_runs_s every run's seconds in order, peak_rss_mb the largest of all runs, cold included.
    """
    results = {name: {**figures, "warm_runs_s": [], "warm_runs_with_shutdown_s": []} for name, figures in cold.items()}
    for run in range(1, repeats + 1):
        for path in paths:
            warm = time_notebook(path)
            result = results[path.stem]
            result["warm_runs_s"].append(warm["seconds"])
            result["warm_runs_with_shutdown_s"].append(warm["with_shutdown_s"])
            if warm["peak_rss_mb"] is not None:
                result["peak_rss_mb"] = max(result["peak_rss_mb"] or 0, warm["peak_rss_mb"])
            log(
                f"  {path.stem}: warm (run {run} of {repeats}) {warm['seconds']:.1f} s "
                f"({warm['with_shutdown_s']:.1f} s with the shutdown), peak memory {result['peak_rss_mb']:.0f} MB"
            )
    for result in results.values():
        result["warm_s"] = min(result["warm_runs_s"])
        result["warm_with_shutdown_s"] = min(result.pop("warm_runs_with_shutdown_s"))
    return results


def notebooks_total(notebooks: dict) -> dict:
    """{"cold_s", "warm_s"} (and "cold_with_shutdown_s", "warm_with_shutdown_s" where every
    notebook has them): the seconds of all notebooks together."""
    keys = ("cold_s", "warm_s", "cold_with_shutdown_s", "warm_with_shutdown_s")
    return {key: sum(n[key] for n in notebooks.values()) for key in keys if all(key in n for n in notebooks.values())}
