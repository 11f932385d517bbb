"""Learning curves: mIoU on the held-out scenes against seconds of training, for the course's FCN-8s
and for each peer, up to a budget several times the course's training time, so that the peers
have the time to flatten.

The course's curve starts at its classifier's training time (the FCN-8s starts from that
classifier) and follows the FCN-8s's own recipe. A peer's curve is one run whose one-cycle
schedule spans the whole budget, scored at evenly spaced steps: a point mid-run is a model still
at a high learning rate, so it understates what a run planned to end there would reach; the last
point is a finished run. Scoring is never counted as training time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from course_utils.models import count_parameters
from course_utils.recipes import start_segmenter, training_stages

from .common import BenchmarkConfig, log
from .peers import PEERS, MissingPeer, Peer, build_peer
from .quality import held_out_scorer, training_scenes
from .training import TrainingPlan, evaluation_steps, seconds_per_step, steps_within, train_steps


def curve_record(label: str, run: dict, offset_s: float, parameters: int, budget_s: float) -> dict:
    """A curve for the result: its points' training seconds shifted by `offset_s` (time spent
    before this run, e.g. the classifier's), and its best point.

    Returns {"label", "parameters", "offset_s", "budget_s", "steps", "points": [{"step",
    "train_s", "miou"}], "best_miou", "best_at_s"}.
    """
    points = [{**point, "train_s": offset_s + point["train_s"]} for point in run["curve"]]
    best = max(points, key=lambda point: point["miou"])
    return {
        "label": label,
        "parameters": parameters,
        "offset_s": offset_s,
        "budget_s": budget_s,
        "steps": run["steps"],
        "points": points,
        "best_miou": best["miou"],
        "best_at_s": best["train_s"],
    }


def course_curve(models: dict, config: BenchmarkConfig, label: str) -> dict:
    """The course FCN-8s trained again from its classifier through its stages (32s, 16s, 8s), as
    the recipes say (so it ends where the course's own FCN-8s does), scored at about
    config.curve_points steps spread over the stages in proportion to their steps, and at least
    at the end of each stage."""
    classifier, history = models["classifier"]
    data, scorer = training_scenes(config), held_out_scorer(config.curve_scenes)
    recipes = {variant: config.segmenter_recipes[variant] for variant in training_stages("8s")}
    stage_steps = {
        variant: recipe.epochs * math.ceil(len(data) / recipe.batch_size) for variant, recipe in recipes.items()
    }
    total_steps = sum(stage_steps.values())
    model, run = classifier, {"steps": 0, "train_s": 0.0, "curve": []}
    for variant, recipe in recipes.items():
        steps = stage_steps[variant]
        evaluations = max(1, round(config.curve_points * steps / total_steps))
        model = start_segmenter(variant, model)
        plan = TrainingPlan(
            steps, recipe.lr, recipe.batch_size, recipe.seed, eval_steps=evaluation_steps(steps, evaluations)
        )
        stage = train_steps(model, data, plan, scorer)
        # This stage's points, counted from the start of the first stage. Its point before training
        # falls on the step where the previous stage ended, which is on the curve already.
        points = [
            {**point, "step": run["steps"] + point["step"], "train_s": run["train_s"] + point["train_s"]}
            for point in stage["curve"]
        ]
        run["curve"] += points[1:] if run["curve"] else points
        run["steps"] += stage["steps"]
        run["train_s"] += stage["train_s"]
    budget_s = history["seconds"] + run["train_s"]
    return curve_record(label, run, history["seconds"], count_parameters(model), budget_s)


def peer_curve(peer: Peer, budget_s: float, device: torch.device, config: BenchmarkConfig) -> dict:
    """`peer` trained for `budget_s` seconds in one run, scored at config.curve_points steps."""
    model = build_peer(peer, device)
    data, batch_size = training_scenes(config), config.scene_recipe.batch_size
    total_steps = steps_within(budget_s, seconds_per_step(model, data, peer.lr, batch_size))
    plan = TrainingPlan(
        total_steps,
        peer.lr,
        batch_size,
        deadline_s=budget_s,
        eval_steps=evaluation_steps(total_steps, config.curve_points),
    )
    run = train_steps(model, data, plan, held_out_scorer(config.curve_scenes))
    return curve_record(peer.label, run, 0.0, count_parameters(model), budget_s)


def learning_curves(
    models: dict,
    course_label: str,
    budget_s: float,
    device,
    config: BenchmarkConfig,
    on_curve: Callable[[dict], None] = lambda curves_so_far: None,
) -> dict:
    """The course's curve and each installed peer's, up to `budget_s` training seconds; on_curve
    gets the curves finished so far after each one.

    Returns {"course_fcn8s": curve, peer name: curve, ...} (curve_record's dicts).
    """
    log("  course FCN-8s, from its classifier ...")
    curves = {"course_fcn8s": course_curve(models, config, course_label)}
    on_curve(dict(curves))
    for name, peer in PEERS.items():
        log(f"  {name}: {budget_s:.0f} s ...")
        try:
            curves[name] = peer_curve(peer, budget_s, device, config)
        except MissingPeer as error:
            log(f"  {name}: skipped: {error}")
            continue
        log(f"  {name}: best mIoU {curves[name]['best_miou']:.3f} at {curves[name]['best_at_s']:.0f} s")
        on_curve(dict(curves))
    return curves
