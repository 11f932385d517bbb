"""The command line: `python -m benchmarks [--quick] [--output JSON] ...` runs the
benchmark and writes its JSON and its curves' figure; `--table JSON` prints a stored result's
tables (those of docs/benchmark.md) instead."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from course_utils.checkpoints import save_atomically
from course_utils.paths import DATA_DIR

from .common import FULL, QUICK, BenchmarkConfig, log
from .report import markdown_report, plot_curves
from .run import run_benchmark, run_notebooks_only


def positive_number(text: str) -> float:
    """argparse's type for the budget factors: a float > 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_integer(text: str) -> int:
    """argparse's type for --curve-points: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The options; see each one's help."""
    options = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="How fast and how well the course runs on this machine, beside the tools learners use instead.",
    )
    options.add_argument("--quick", action="store_true", help="smoke test: notebooks 1-2, small recipes, short curves")
    options.add_argument(
        "--output",
        type=Path,
        help="where to write the JSON (default: data/benchmark.json, or data/benchmark-quick.json with --quick, "
        "so a smoke test never replaces a full result); the curves' figure goes beside it, named *-curves.png",
    )
    options.add_argument(
        "--peer-budget-factor",
        type=positive_number,
        default=1.0,
        metavar="F",
        help="train the peers F times as long as the course at 'equal time' (default 1: the same budget)",
    )
    options.add_argument(
        "--curve-budget-factor",
        type=positive_number,
        metavar="F",
        help=f"learning curves run to F times the course's training time (default {FULL.curve_budget_factor:g}; "
        f"{QUICK.curve_budget_factor:g} with --quick)",
    )
    options.add_argument(
        "--curve-points",
        type=positive_integer,
        metavar="N",
        help=f"evaluations per learning curve, besides the one before training (default {FULL.curve_points}; "
        f"{QUICK.curve_points} with --quick)",
    )
    options.add_argument(
        "--notebooks-only",
        action="store_true",
        help="only the notebooks, cold and warm, and the course's quality (minutes, not hours; no peers, no "
        "curves); default output data/benchmark-notebooks.json",
    )
    options.add_argument(
        "--table", type=Path, metavar="JSON", help="print a stored result's tables (as in docs/benchmark.md), and stop"
    )
    return options


def config_from(args: argparse.Namespace) -> BenchmarkConfig:
    """QUICK or FULL, with the curve options the command line sets."""
    config = QUICK if args.quick else FULL
    changes = {"curve_budget_factor": args.curve_budget_factor, "curve_points": args.curve_points}
    return dataclasses.replace(config, **{key: value for key, value in changes.items() if value is not None})


def default_output(quick: bool, notebooks_only: bool = False) -> Path:
    """data/benchmark.json; data/benchmark-notebooks.json for --notebooks-only; with -quick.json
    instead of .json for a quick run (so a smoke test never replaces a real result)."""
    stem = "benchmark-notebooks" if notebooks_only else "benchmark"
    return DATA_DIR / (f"{stem}-quick.json" if quick else f"{stem}.json")


def figure_path(output: Path) -> Path:
    """The curves' figure beside the JSON: data/benchmark.json -> data/benchmark-curves.png."""
    return output.with_name(f"{output.stem}-curves.png")


def partial_path(output: Path) -> Path:
    """Where a run keeps what it has measured until it ends: data/benchmark.json ->
    data/benchmark.partial.json."""
    return output.with_name(f"{output.stem}.partial.json")


def write_json(path: Path, result: dict) -> None:
    """`result` as indented JSON at `path` (folders created), written whole or not at all."""
    save_atomically(json.dumps(result, indent=2) + "\n", path, write=lambda text, file: file.write_text(text))


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark as the command line says; write the JSON and the figure, and print the
    JSON as the last line of stdout. Returns the result ({} with --table).

    While it runs, what it has measured so far is kept in *.partial.json beside the output
    ("complete": false), so that a run stopped after hours is not lost; the file is removed when
    the run ends."""
    args = parser().parse_args(argv)
    if args.table:
        print(markdown_report(json.loads(args.table.read_text())))
        return {}
    output = args.output or default_output(args.quick, args.notebooks_only)
    if args.notebooks_only:
        result = run_notebooks_only(config_from(args))
        write_json(output, result)
        log(f"written to {output}")
        print(json.dumps(result))
        return result
    partial = partial_path(output)
    result = run_benchmark(
        config_from(args),
        peer_budget_factor=args.peer_budget_factor,
        save_partial=lambda so_far: write_json(partial, so_far),
    )
    figure = plot_curves(result["curves"], result["peers"]["course_fcn8s"]["budget_s"], figure_path(output))
    result["curves_figure"] = str(figure)
    write_json(output, result)
    partial.unlink(missing_ok=True)
    log(f"written to {output} and {figure}")
    print(json.dumps(result))
    return result
