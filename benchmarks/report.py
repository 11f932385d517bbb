"""A benchmark result, read: the course's targets, the markdown tables of docs/benchmark.md, and the learning
curves' figure. Everything here works on the result's JSON alone (no model is built)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_utils.models import FCN_VARIANTS

# ---------------------------------------------------------------------------- targets


def targets(result: dict) -> dict:
    """The course's speed and quality targets, each named by what it measures and its bound, with
    the measured value and whether it is met: {name: {"value", "target", "met"}}. The speed targets
    are those of a 2-core laptop CPU with AVX2 only: a learner waits at most 6 minutes for the
    whole course cold, and a lecture at most 12 s for any notebook warm.

    The mIoU race applies only when the peers had the course's own budget (peer_budget_factor 1).
    A target whose measurements the result lacks (a --notebooks-only run has no peers, no speed
    phase) is left out.
    """
    checks = {}
    if "notebooks" in result:
        notebooks = result["notebooks"]
        last = notebooks[max(notebooks)]  # notebook 5: it trains the classifier and all three FCNs when cold
        checks.update(
            {
                "notebooks cold, total seconds <= 360": (sum(n["cold_s"] for n in notebooks.values()), 360, "max"),
                "last notebook cold, seconds <= 200": (last["cold_s"], 200, "max"),
                "notebooks warm, total seconds <= 45": (sum(n["warm_s"] for n in notebooks.values()), 45, "max"),
                "slowest notebook warm, seconds <= 12": (max(n["warm_s"] for n in notebooks.values()), 12, "max"),
                "largest kernel, MB <= 1536": (max(n["peak_rss_mb"] or 0 for n in notebooks.values()), 1536, "max"),
            }
        )
    if "classifier_accuracy" in result:
        checks.update(
            {
                "classifier accuracy >= 0.98": (result["classifier_accuracy"], 0.98, "min"),
                "FCN-8s mIoU >= 0.80": (result["fcn8s_miou"], 0.80, "min"),
                "FCN-8s mIoU - FCN-16s mIoU >= 0": (result["fcn8s_miou"] - result["fcn16s_miou"], 0.0, "min"),
                "FCN-16s mIoU - FCN-32s mIoU >= 0": (result["fcn16s_miou"] - result["fcn32s_miou"], 0.0, "min"),
                "converted mIoU - all-background mIoU >= 0.2": (
                    result["converted_fcn_miou"] - result["background_miou"],
                    0.2,
                    "min",
                ),
            }
        )
    if "peers" in result and result.get("peer_budget_factor", 1.0) == 1.0:  # else the race was not at the same budget
        peers = [
            peer["miou"]
            for name, peer in result["peers"].items()
            if name != "course_fcn8s" and peer["miou"] is not None
        ]
        checks["FCN-8s mIoU >= best peer at the same budget"] = (result["fcn8s_miou"], max(peers, default=0.0), "min")
    if "train_flops_utilization" in result:
        checks["full-width training, fraction of matmul FLOP/s >= 0.40"] = (
            result["train_flops_utilization"],
            0.40,
            "min",
        )
    return {
        name: {"value": value, "target": target, "met": value <= target if kind == "max" else value >= target}
        for name, (value, target, kind) in checks.items()
    }


# ---------------------------------------------------------------------------- tables


def table(rows: list[tuple]) -> str:
    """Rows of strings as a markdown table, the first row as its header."""
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def notebooks_table(result: dict) -> str:
    """Each notebook's cold and warm seconds and its kernel's peak memory, and their totals; and,
    where the result has them (runs from 2026-11-27 on), the seconds with the kernel's shutdown."""
    total = result["notebooks_total"]
    shutdown = "warm_with_shutdown_s" in total
    rows = [
        (
            "notebook",
            "cold",
            "warm",
            *(["cold / warm with the kernel's shutdown"] if shutdown else []),
            "kernel peak memory",
        )
    ]
    for name, n in result["notebooks"].items():
        with_shutdown = [f"{n['cold_with_shutdown_s']:.0f} s / {n['warm_with_shutdown_s']:.0f} s"] if shutdown else []
        rows.append(
            (f"`{name}`", f"{n['cold_s']:.0f} s", f"{n['warm_s']:.0f} s", *with_shutdown, f"{n['peak_rss_mb']:,.0f} MB")
        )
    with_shutdown = (
        [f"{total['cold_with_shutdown_s']:.0f} s / {total['warm_with_shutdown_s']:.0f} s"] if shutdown else []
    )
    rows.append(
        ("**all notebooks**", f"**{total['cold_s']:.0f} s**", f"**{total['warm_s']:.0f} s**", *with_shutdown, "")
    )
    return table(rows)


def speed_table(result: dict) -> str:
    """The classifier's training speed per width, and the matmul speed it is a fraction of."""
    rows = [("classifier training (64x64, batch 64)", "images/s", "GFLOP/s", "of matmul peak")]
    peak = result["matmul_gflops"]
    for width, images in result["train_images_per_s"].items():
        gflops = result["train_gflops"][width]
        rows.append((f"width {width}", f"{images:,.0f}", f"{gflops:.0f}", f"{gflops / peak:.0%}"))
    libraries = ", ".join(f"{name} {value:.0f}" for name, value in result["matmul_gflops_by_library"].items())
    return table(rows) + f"\n\nDense float32 matmul: {peak:.0f} GFLOP/s ({libraries})."


def quality_table(result: dict) -> str:
    """mIoU on the held-out scenes: the course's models, and each peer at the course's budget."""
    rows = [("model (200 held-out scenes)", "mIoU", "training budget", "parameters", "FCN-8s mIoU / its mIoU")]
    rows.append(("converted classifier (no pixel labels)", f"{result['converted_fcn_miou']:.3f}", "", "", ""))
    rows.append(("course FCN-32s", f"{result['fcn32s_miou']:.3f}", "", "", ""))
    rows.append(("course FCN-16s", f"{result['fcn16s_miou']:.3f}", "", "", ""))
    for name, peer in result["peers"].items():
        miou = "skipped" if peer["miou"] is None else f"{peer['miou']:.3f}"
        budget = f"{peer['budget_s']:.0f} s"
        if "images_seen" in peer and name != "course_fcn8s":
            budget += f" ({peer['images_seen']:,} scenes seen)"
        label = "**course FCN-8s**" if name == "course_fcn8s" else peer.get("label", name)
        ratio = f"{peer['ours_over_theirs']:.1f}x" if peer.get("ours_over_theirs") else ""
        parameters = f"{peer['parameters'] / 1e6:.1f} M" if "parameters" in peer else ""
        rows.append((label, miou, budget, parameters, ratio))
    return table(rows) + f"\n\nClassifier test accuracy: {result['classifier_accuracy']:.1%}."


#: The comparison table's columns: (key in a comparison row, header).
COMPARISON_COLUMNS = (
    ("model", "model"),
    ("run", "training"),
    ("parameters", "parameters"),
    ("multiply_adds", "multiply-adds per 128x128 image"),
    ("seconds_per_step", "s per step"),
    ("steps", "steps"),
    ("train_s", "training s"),
    ("miou", "mIoU"),
    ("curve_best_miou", "best mIoU on its learning curve"),
)


def comparison_row(record: dict, run: str, curve: dict | None) -> dict:
    """One row of the comparison (COMPARISON_COLUMNS' keys) from a peer's or the course's record;
    None where the model was not run (its library is missing)."""
    row = {key: record.get(key) for key, _ in COMPARISON_COLUMNS}
    row.update(model=record["label"], run=run, curve_best_miou=curve["best_miou"] if curve else None)
    row["classifier_steps"] = record.get("classifier_steps")
    return row


def comparison_rows(result: dict) -> list[dict]:
    """The course FCN-8s, each peer at equal time, the equal-size peer at equal steps, each with
    parameters, multiply-adds, seconds per step, steps, training seconds, mIoU, and its learning
    curve's best mIoU (on equal-time rows)."""
    curves = result.get("curves", {})
    rows = [
        comparison_row(
            result["peers"]["course_fcn8s"], "its recipe: classifier, then FCN-8s", curves.get("course_fcn8s")
        )
    ]
    for name, record in result["peers"].items():
        if name != "course_fcn8s":
            rows.append(comparison_row(record, "equal time", curves.get(name)))
    rows.append(comparison_row(result["equal_steps"], "equal steps", None))
    return rows


def format_cell(key: str, row: dict) -> str:
    """A comparison row's value for column `key`, as the table shows it ("–" where missing)."""
    value = row[key]
    if value is None:
        return "–"
    if key == "steps" and row.get("classifier_steps"):
        return f"{value:,} (+ {row['classifier_steps']:,} classifier)"
    formats = {
        "parameters": lambda v: f"{v / 1e6:.2f} M",
        "multiply_adds": lambda v: f"{v / 1e9:.2f} G",
        "seconds_per_step": lambda v: f"{v:.3f}",
        "steps": lambda v: f"{v:,}",
        "train_s": lambda v: f"{v:.0f}",
        "miou": lambda v: f"{v:.3f}",
        "curve_best_miou": lambda v: f"{v:.3f}",
    }
    return formats.get(key, str)(value)


def comparison_markdown(rows: list[dict], curve_budget_s: float | None = None) -> str:
    """The comparison rows as a markdown table (docs/benchmark.md's)."""
    header = [title for _, title in COMPARISON_COLUMNS]
    if curve_budget_s is not None:
        header[-1] += f" (within {curve_budget_s:.0f} s)"
    return table([tuple(header)] + [tuple(format_cell(key, row) for key, _ in COMPARISON_COLUMNS) for row in rows])


def course_quality_table(result: dict) -> str:
    """The course's own models on the held-out data (a --notebooks-only result: no peers)."""
    rows = [("model (200 held-out scenes)", "mIoU")]
    rows.append(("all background", f"{result['background_miou']:.3f}"))
    rows.append(("converted classifier (no pixel labels)", f"{result['converted_fcn_miou']:.3f}"))
    rows += [(f"course FCN-{variant}", f"{result[f'fcn{variant}_miou']:.3f}") for variant in FCN_VARIANTS]
    return table(rows) + f"\n\nClassifier test accuracy: {result['classifier_accuracy']:.1%}."


def markdown_report(result: dict) -> str:
    """The tables docs/benchmark.md shows for one benchmark result: notebooks, speed, quality, and (when the
    result has them) the comparison with the peers at equal time, equal steps and along the curves.
    A --notebooks-only result gives its notebooks' table and the course's quality."""
    if "peers" not in result:
        return "\n\n".join([notebooks_table(result), course_quality_table(result)])
    sections = [notebooks_table(result), speed_table(result), quality_table(result)]
    if "comparison" in result:
        sections.append(comparison_markdown(result["comparison"], result.get("curve_budget_s")))
    return "\n\n".join(sections)


# ---------------------------------------------------------------------------- figure


def plot_curves(curves: dict, course_budget_s: float, path: Path) -> Path:
    """Draw the learning curves (x: training seconds, y: held-out mIoU, one line per model, its
    parameters in the legend) and a line at the course's training time; save a PNG at `path`."""
    figure = Figure(figsize=(9, 6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for curve in curves.values():
        seconds = [point["train_s"] for point in curve["points"]]
        mious = [point["miou"] for point in curve["points"]]
        axes.plot(seconds, mious, marker="o", label=f"{curve['label']} ({curve['parameters'] / 1e6:.2f} M parameters)")
    axes.axvline(
        course_budget_s, color="grey", linestyle=":", label="the course's training time: the peers' equal-time budget"
    )
    axes.set(xlabel="training seconds", ylabel="mIoU on the held-out scenes", ylim=(0, 1))
    axes.set_title("Learning curves: held-out mIoU against training time")
    axes.grid(alpha=0.3)
    figure.legend(loc="outside lower center", fontsize="small")  # below the axes: never over a curve; one column fits
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path
