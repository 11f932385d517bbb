"""The whole benchmark, in order: notebooks (training the course's models between the cold and the
warm runs), speed, quality, the peers at equal time and equal steps, the learning curves; then the
targets and the comparison table."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import torch

from course_utils.paths import CHECKPOINT_DIR_VARIABLE
from course_utils.recipes import cache_held_out_sets
from course_utils.train import default_width, pick_device

from .common import BenchmarkConfig, log
from .curves import learning_curves
from .machine import load_average, machine
from .notebooks import cold_runs, notebook_paths, notebooks_total, warm_runs
from .peers import equal_size_report, equal_steps_run, race_at_equal_time
from .quality import course_models, course_quality, course_record
from .report import comparison_markdown, comparison_rows, targets
from .speed import speed_report


@contextmanager
def scratch_checkpoints() -> Iterator[Path]:
    """A new empty folder that $FCN_COURSE_CHECKPOINTS names for the `with` block (notebook
    kernels started inside inherit it); afterwards the folder is deleted and the variable is as
    it was (unset if it was unset), whatever happened in the block."""
    with tempfile.TemporaryDirectory(prefix="fcn-benchmark-") as scratch:
        with patch.dict(os.environ, {CHECKPOINT_DIR_VARIABLE: scratch}):
            yield Path(scratch)


def notebooks_and_models(config: BenchmarkConfig, device: torch.device, scratch: Path) -> tuple[dict, dict]:
    """Each notebook cold, then the course's models trained (or loaded from the cold runs'
    checkpoints) and the held-out sets cached, as `make warm` leaves them, then each notebook
    warm; all in the scratch checkpoint folder `scratch`.

    Returns ({notebook name: {"cold_s", "warm_s", "peak_rss_mb"}}, course_models' dict).
    """
    paths = notebook_paths(config.notebooks)
    log(f"notebooks ({len(paths)}), each cold, in fresh kernels:")
    cold = cold_runs(paths, scratch)
    log("course models: loading the cold runs' checkpoints, or training them ...")
    models = course_models(default_width(device), device, config)
    cache_held_out_sets()  # as make warm does: a warm notebook draws no image
    log("the notebooks again, warm:")
    return warm_runs(paths, cold, config.warm_repeats), models


#: Called with the result so far after each phase and each learning curve (see run_benchmark).
SavePartial = Callable[[dict], None]


def peer_comparison(
    models: dict, course: dict, device, config: BenchmarkConfig, peer_budget_factor: float, save_partial: SavePartial
) -> dict:
    """The peers at equal time (peer_budget_factor x the course's training seconds), the equal-size
    peer at the course's steps, and every learning curve up to config.curve_budget_factor x;
    save_partial gets the fields measured so far after the peers and after each curve.

    Returns the result's fields peers, equal_size_peer, equal_steps, curves, curve_budget_s.
    """
    log(f"peers, each for {peer_budget_factor:g} x the course's {course['budget_s']:.0f} s:")
    peers = {
        "course_fcn8s": course,
        **race_at_equal_time(peer_budget_factor * course["budget_s"], course["miou"], device, config),
    }
    log(f"the equal-size peer for the course's {course['steps']} steps:")
    equal_steps = equal_steps_run(course["steps"], device, config)
    curve_budget_s = config.curve_budget_factor * course["budget_s"]
    fields = {
        "peers": peers,
        "equal_size_peer": equal_size_report(models["segmenters"]["8s"][0]),
        "equal_steps": equal_steps,
        "curve_budget_s": curve_budget_s,
    }
    save_partial(fields)
    log(f"learning curves, up to {curve_budget_s:.0f} s of training each:")
    curves = learning_curves(
        models, course["label"], curve_budget_s, device, config, lambda done: save_partial({**fields, "curves": done})
    )
    return {**fields, "curves": curves}


def run_benchmark(
    config: BenchmarkConfig, peer_budget_factor: float = 1.0, save_partial: SavePartial | None = None
) -> dict:
    """Every measurement for `config` (common.FULL or QUICK); returns the result (see docs/benchmark.md).

    peer_budget_factor: give the peers this many times the course's training time at "equal time"
    (1 = the same budget, the fair race; more shows how far they get with longer training).
    save_partial: called with the result so far (a dict with "complete": False) after each phase
    and each learning curve, so that a run stopped after hours keeps what it measured.
    """
    log.start()
    device = pick_device()
    with scratch_checkpoints() as scratch:  # every file the run writes: checkpoints, cached data
        return measure(config, device, scratch, peer_budget_factor, save_partial or (lambda partial: None))


def run_notebooks_only(config: BenchmarkConfig) -> dict:
    """The benchmark's first phase alone, in minutes instead of hours: each notebook cold and warm
    (notebooks_and_models), and the course's quality on the held-out data. No speed phase, no
    peers, no curves. Returns a result with the full run's fields for these, "notebooks_only": True,
    and the targets they decide."""
    log.start()
    device = pick_device()
    result = {
        "quick": config.name == "quick",
        "notebooks_only": True,
        "machine": {**machine(), "load_average_at_start": load_average()},
    }
    with scratch_checkpoints() as scratch:
        notebooks, models = notebooks_and_models(config, device, scratch)
        result.update({"notebooks": notebooks, "notebooks_total": notebooks_total(notebooks)})
        log("quality on the held-out data:")
        result.update(course_quality(models))
    result["machine"]["load_average_at_end"] = load_average()
    result["complete"] = True
    result["targets"] = targets(result)
    result["benchmark_s"] = log.elapsed()
    return result


def measure(
    config: BenchmarkConfig, device: torch.device, scratch: Path, peer_budget_factor: float, save_partial: SavePartial
) -> dict:
    """run_benchmark's measurements, in order, with `scratch` as the checkpoint folder."""
    result = {
        "quick": config.name == "quick",
        "complete": False,
        "peer_budget_factor": peer_budget_factor,
        "curve_budget_factor": config.curve_budget_factor,
        "curve_points": config.curve_points,
        "curve_scenes": config.curve_scenes,
        "machine": {**machine(), "load_average_at_start": load_average()},
    }

    def record(fields: dict) -> None:
        result.update(fields)
        save_partial({**result, "benchmark_s": log.elapsed()})

    notebooks, models = notebooks_and_models(config, device, scratch)
    record({"notebooks": notebooks, "notebooks_total": notebooks_total(notebooks)})
    log("training speed and matrix products:")
    record(speed_report(device, config))
    log("quality on the held-out scenes:")
    quality = course_quality(models)
    record(quality)
    course = course_record(models, quality["fcn8s_miou"])
    result.update(peer_comparison(models, course, device, config, peer_budget_factor, record))
    result["machine"]["load_average_at_end"] = load_average()
    result["complete"] = True
    result["comparison"] = comparison_rows(result)
    result["comparison_markdown"] = comparison_markdown(result["comparison"], result["curve_budget_s"])
    result["targets"] = targets(result)
    result["benchmark_s"] = log.elapsed()
    return result
