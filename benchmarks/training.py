"""The one training loop behind every run the benchmark makes itself (peers, learning curves):
AdamW with a one-cycle schedule from `train.make_optimizer`, channels_last, as `fit` trains; a
fixed number of steps, an optional deadline in training seconds, and optional evaluations whose
time is not counted as training time."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from course_utils.train import make_loader, make_optimizer, seed_everything, training_step

from .common import synchronize
from .speed import best_seconds

#: A score for a model (say, its mIoU on the held-out scenes); called between training steps.
Score = Callable[[nn.Module], float]


class Stopwatch:
    """Adds up the seconds spent inside `running()` blocks only: time outside them (evaluations)
    is not counted."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def running(self):
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds += time.perf_counter() - start


@dataclass(frozen=True)
class TrainingPlan:
    """How long and how to train.

    total_steps: optimizer steps; the one-cycle schedule spans them.
    deadline_s: stop early once this many training seconds have passed (inf: never).
    eval_steps: step counts after which the model is scored (0: before the first step). The
        run's last step is always scored as well, whether it is total_steps or the deadline's.
    """

    total_steps: int
    lr: float
    batch_size: int
    seed: int = 0
    deadline_s: float = math.inf
    eval_steps: tuple[int, ...] = ()


def evaluation_steps(total_steps: int, points: int) -> tuple[int, ...]:
    """0 (before training), then `points` step counts evenly spaced up to total_steps, the last
    one total_steps itself; fewer when total_steps < points (no step is scored twice)."""
    return (0, *sorted({math.ceil(total_steps * k / points) for k in range(1, points + 1)}))


def steps_within(budget_s: float, step_s: float) -> int:
    """How many steps of `step_s` seconds fit in `budget_s` seconds (at least one)."""
    return max(1, int(budget_s / step_s))


def endless(loader: DataLoader) -> Iterator:
    """The loader's batches, epoch after epoch (each epoch reshuffled, as `fit`'s epochs are)."""
    while True:
        yield from loader


def one_step(model, images, targets, optimizer, scheduler, device: torch.device) -> None:
    """One training step (images (N, 3, H, W), masks (N, H, W)) and one schedule step, finished on the device."""
    images = images.to(device, memory_format=torch.channels_last)
    training_step(model, images, targets.to(device), optimizer)
    scheduler.step()
    synchronize(device)  # on a GPU the step runs asynchronously: wait, so the stopwatch is right


def first_batch(data: Dataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch_size` samples of `data` as a batch: (images (B, 3, H, W), masks (B, H, W))."""
    return next(iter(make_loader(data, batch_size, shuffle=False)))[:2]


def seconds_per_step(model: nn.Module, data: Dataset, lr: float, batch_size: int, repeats: int = 3) -> float:
    """Time of one training step (the fastest of `repeats`, after one untimed), measured on a copy
    of `model`: the model itself is left untouched."""
    device = next(model.parameters()).device
    probe = copy.deepcopy(model).to(memory_format=torch.channels_last).train()
    optimizer, scheduler = make_optimizer(probe, lr, total_steps=repeats + 1)
    images, targets = first_batch(data, batch_size)
    return best_seconds(
        lambda: one_step(probe, images, targets, optimizer, scheduler, device), device, repeats, warm_ups=1
    )


def train_steps(model: nn.Module, data: Dataset, plan: TrainingPlan, score: Score | None = None) -> dict:
    """Train `model` in place on `data` (images, masks) as `plan` says; score it after the steps in
    plan.eval_steps and after the last one, the scoring not counted in the training time.

    Returns {"steps": steps taken, "images_seen", "train_s": training seconds, "curve":
    [{"step", "train_s", "miou"}, ...] (empty without `score`)}. The model ends in eval mode.
    """
    device = next(model.parameters()).device
    seed_everything(plan.seed)
    batches = endless(make_loader(data, plan.batch_size, shuffle=True, seed=plan.seed))
    optimizer, scheduler = make_optimizer(model, plan.lr, plan.total_steps)
    model.to(memory_format=torch.channels_last).train()
    watch, curve, steps = Stopwatch(), [], 0
    while steps < plan.total_steps and watch.seconds < plan.deadline_s:
        if score is not None and steps in plan.eval_steps:
            curve.append({"step": steps, "train_s": watch.seconds, "miou": score(model)})
        with watch.running():  # fetching the batch counts too, as in `fit`'s seconds
            images, targets = next(batches)[:2]
            one_step(model, images, targets, optimizer, scheduler, device)
        steps += 1
    if score is not None:
        curve.append({"step": steps, "train_s": watch.seconds, "miou": score(model)})
    model.to(memory_format=torch.contiguous_format).eval()
    return {"steps": steps, "images_seen": steps * plan.batch_size, "train_s": watch.seconds, "curve": curve}
