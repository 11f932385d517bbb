"""Training, evaluation, seeding, device choice and checkpoints.

One loop serves the whole course: a batch is `(images, targets, ...)`, where targets are
class labels (N,) for the classifier or masks (N, H, W) for segmentation. Cross-entropy with
`ignore_index=255` and "accuracy = right / counted" work for both.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .data import IGNORE_INDEX
from .progress import progress_bar

CHECKPOINT_FORMAT = 1

#: Repository root and the folder for generated files (checkpoints, caches); see data/README.md.
REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
#: Set this environment variable to keep checkpoints elsewhere (the benchmark uses a scratch folder).
CHECKPOINT_DIR_VARIABLE = "FCN_COURSE_CHECKPOINTS"


def checkpoint_dir() -> Path:
    """Where trained models are saved: data/checkpoints/, or $FCN_COURSE_CHECKPOINTS if set."""
    return Path(os.environ.get(CHECKPOINT_DIR_VARIABLE) or DATA_DIR / "checkpoints")


# --------------------------------------------------------------------------- determinism, device


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch, so that training repeats exactly on the same machine
    (CPU instruction set, thread count, library build and device); elsewhere only closely."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """CUDA if there is a GPU, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


#: Set this environment variable to choose the VGG width on any device (`pytest --nbval` sets 16).
WIDTH_VARIABLE = "FCN_COURSE_WIDTH"


def default_width(device: torch.device | str) -> int:
    """VGG width that trains in a couple of minutes: full width (64) on a GPU, 16 on a CPU.

    $FCN_COURSE_WIDTH, if set, wins on every device: 8 for a slow laptop, say, or 16 on a GPU to
    get the shapes of the CPU run (the notebooks' stored outputs).
    """
    value = os.environ.get(WIDTH_VARIABLE, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{WIDTH_VARIABLE} must be a positive whole number such as 16, got {value!r}")
        return int(value)
    kind = torch.device(device).type
    return {"cuda": 64, "mps": 32}.get(kind, 16)


# --------------------------------------------------------------------------- training loop


def make_loader(data: Dataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A DataLoader whose shuffling order depends only on `seed`."""
    if len(data) == 0:
        raise ValueError("cannot train or evaluate on an empty dataset (0 samples)")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)


def count_correct(scores: torch.Tensor, targets: torch.Tensor) -> tuple[int, int]:
    """(right, counted) for scores (N, K) vs labels (N,) or scores (N, K, H, W) vs masks (N, H, W)."""
    predictions = scores.argmax(dim=1)
    counted = targets != IGNORE_INDEX
    return int((predictions == targets)[counted].sum()), int(counted.sum())


def training_step(model, images, targets, optimizer) -> tuple[torch.Tensor, torch.Tensor]:
    """One gradient step on a batch: forward, cross-entropy, backward, update. Returns (scores, loss).

    images (N, 3, H, W); targets: labels (N,) or masks (N, H, W), IGNORE_INDEX pixels not counted.
    """
    scores = model(images)
    loss = F.cross_entropy(scores, targets, ignore_index=IGNORE_INDEX)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return scores, loss


def train_one_epoch(model, loader, optimizer, scheduler=None, device="cpu", progress=None,
                    memory_format=torch.contiguous_format) -> dict:
    """One pass over `loader` in train mode; returns mean loss, accuracy and per-step losses."""
    model.train()
    total_loss, right, counted, step_losses = 0.0, 0, 0, []
    for images, targets, *_ in loader:
        images, targets = images.to(device, memory_format=memory_format), targets.to(device)
        scores, loss = training_step(model, images, targets, optimizer)
        if scheduler is not None:
            scheduler.step()
        step_losses.append(loss.item())
        total_loss += loss.item() * len(images)
        r, c = count_correct(scores.detach(), targets)
        right, counted = right + r, counted + c
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)  # shown at the next redraw
    return {"loss": total_loss / len(loader.dataset), "accuracy": right / max(counted, 1), "steps": step_losses}


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int = 256, device=None) -> dict:
    """Mean cross-entropy and accuracy of `model` on `data`, in eval mode."""
    device = device or next(model.parameters()).device
    model.eval()
    total_loss, right, counted = 0.0, 0, 0
    for images, targets, *_ in make_loader(data, batch_size, shuffle=False):
        images, targets = images.to(device), targets.to(device)
        scores = model(images)
        total_loss += F.cross_entropy(scores, targets, ignore_index=IGNORE_INDEX, reduction="sum").item()
        r, c = count_correct(scores, targets)
        right, counted = right + r, counted + c
    return {"loss": total_loss / max(counted, 1), "accuracy": right / max(counted, 1)}


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Scores of `model` (in eval mode) for a stack of images (N, 3, H, W), batch by batch."""
    device = next(model.parameters()).device
    model.eval()
    outputs = [model(batch.to(device)).cpu() for batch in images.split(batch_size)]
    return torch.cat(outputs)


def fit(
    model: nn.Module,
    train_data: Dataset,
    *,
    epochs: int,
    lr: float = 3e-3,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    val_data: Dataset | None = None,
    seed: int = 0,
    device=None,
    progress: bool = True,
    channels_last: bool = True,
) -> dict:
    """Train `model` with AdamW and a one-cycle learning-rate schedule; return its history.

    channels_last stores images and weights as (N, H, W, C) in memory, the layout the CPU and
    GPU convolution kernels run fastest on (same results up to float rounding, about 1.3x faster
    here); the model is returned in the usual layout.
    history = {"train_loss": [...], "train_accuracy": [...], "val_loss": [...],
               "val_accuracy": [...], "step_loss": [...], "seconds": float}, one entry per
    epoch (per step for step_loss); seconds is the wall-clock training time. Runs repeat
    exactly (all but the seconds) for the same seed and data on the same machine: same CPU
    instruction set, thread count, library build and device.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    device = device or next(model.parameters()).device
    seed_everything(seed)
    loader = make_loader(train_data, batch_size, shuffle=True, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))
    history = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": [], "step_loss": []}
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    start = time.perf_counter()
    with progress_bar(epochs * len(loader), "training", "batch", disable=not progress) as bar:
        for epoch in range(epochs):
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            result = train_one_epoch(model, loader, optimizer, scheduler, device, bar, memory_format)
            history["train_loss"].append(result["loss"])
            history["train_accuracy"].append(result["accuracy"])
            history["step_loss"] += result["steps"]
            if val_data is not None:
                val = evaluate(model, val_data, device=device)
                history["val_loss"].append(val["loss"])
                history["val_accuracy"].append(val["accuracy"])
    history["seconds"] = time.perf_counter() - start
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return history


# --------------------------------------------------------------------------- checkpoints


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or was made for a different model."""

    def __init__(self, path, problem: str, remedy: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"checkpoint {self.path}: {problem}. {remedy}")


def save_checkpoint(path, model: nn.Module, config: dict, history: dict | None = None) -> Path:
    """Write model weights with the configuration that built them (and optionally a history)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": type(model).__name__,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written file under the real name
    return path


def load_checkpoint(path, model: nn.Module, config: dict | None = None) -> dict:
    """Load weights saved by `save_checkpoint` into `model`; return the stored history.

    Raises CheckpointError (saying which file, what is wrong and what to do) when the file is
    missing, corrupt, not a course checkpoint, made for another model class or configuration.
    """
    path = Path(path)
    retrain = f"Delete {path.name} and run the notebook that trains it again (or use load_or_train)."
    if not path.is_file():
        raise CheckpointError(path, "no such file", "Run the notebook that trains this model first, or use load_or_train.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, random bytes, pickled code refused by weights_only
        raise CheckpointError(path, f"not a readable PyTorch checkpoint ({type(error).__name__})", retrain) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, "not written by course_utils.save_checkpoint (or an older format)", retrain)
    if payload["model"] != type(model).__name__:
        raise CheckpointError(path, f"holds a {payload['model']}, not a {type(model).__name__}", retrain)
    if config is not None and payload["config"] != dict(config):
        raise CheckpointError(path, f"was made with {payload['config']}, but this model needs {dict(config)}", retrain)
    problem = _state_dict_mismatch(model.state_dict(), payload["state_dict"])
    if problem:  # checked before loading, so a failed load leaves the model untouched
        raise CheckpointError(path, f"weights do not fit the model ({problem})", retrain)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return payload["history"]


def _state_dict_mismatch(expected: dict, stored: dict) -> str:
    """'' if `stored` has exactly the keys and shapes of `expected`, else the first difference."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing:
        return f"missing {missing[0]!r}"
    if unexpected:
        return f"unexpected {unexpected[0]!r}"
    for key, tensor in expected.items():
        if tuple(stored[key].shape) != tuple(tensor.shape):
            return f"{key!r} has shape {tuple(stored[key].shape)}, the model needs {tuple(tensor.shape)}"
    return ""


def load_or_train(
    path,
    model: nn.Module,
    config: dict,
    train: Callable[[nn.Module], dict],
    *,
    retrain: bool = True,
    verbose: bool = True,
) -> dict:
    """Load `model` from `path` if the checkpoint is valid; otherwise call `train(model)` and save.

    train(model) trains in place and returns the history, which is stored with the weights.
    With retrain=False a missing or invalid checkpoint raises CheckpointError instead.
    Returns the history (the stored one when loading).
    """
    path = Path(path)
    try:
        history = load_checkpoint(path, model, config)
    except CheckpointError as error:
        if not retrain:
            raise
        if verbose:
            reason = "none found" if not path.exists() else f"the saved one is unusable: {error.problem}"
            print(f"Training a new model ({reason}); it will be saved to {_short(path)}.")
        history = train(model)
        save_checkpoint(path, model, config, history)
        model.eval()
        return history
    if verbose:
        print(f"Loaded the trained model from {_short(path)}.")
    return history


def _short(path: Path) -> str:
    """Path relative to the repository when inside it, for shorter messages."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
