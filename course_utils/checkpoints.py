"""Checkpoints: save a trained model with the configuration that built it; load it back or say why not.

A checkpoint is one `torch.save`d dict with exactly the fields in CHECKPOINT_FIELDS:

    {"format": CHECKPOINT_FORMAT, "model": "VGG11Classifier", "config": {...},
     "state_dict": {name: tensor}, "history": {"train_loss": [...], ...}}

It is read with `torch.load(..., weights_only=True)`, which refuses pickled code. Every way a
file can be unusable (missing, corrupt, foreign, a field missing, another model or configuration,
weights of other shapes) is one CheckpointError naming the file, the problem and the remedy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from .i18n import tr
from .paths import REPO_ROOT

CHECKPOINT_FORMAT = 1
#: What `save_checkpoint` writes, and so what `load_checkpoint` needs.
CHECKPOINT_FIELDS = ("format", "model", "config", "state_dict", "history")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or was made for a different model."""

    def __init__(self, path, problem: str, remedy: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(tr("checkpoint {path}: {problem}. {remedy}", path=self.path, problem=problem, remedy=remedy))


def tensors_digest(tensors: dict) -> str:
    """SHA-256 (hex) of every tensor's name, dtype, shape and bytes, in name order.

    Stored beside cached tensors (the held-out datasets, notebook 6's features) and checked when
    they are read, since torch.load does not verify the zip's checksums: flipped bytes or changed
    values would otherwise load and be used silently.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save_atomically(payload, path: Path, write=torch.save) -> Path:
    """write(payload, file) (torch.save unless told otherwise) to `path` through a temporary file,
    so that an interrupted write never leaves a half-written file under the real name (the
    folder is created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(payload, tmp)
    tmp.replace(path)
    return path


def save_checkpoint(path, model: nn.Module, config: dict, history: dict | None = None) -> Path:
    """Write model weights with the configuration that built them (and optionally a history)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": type(model).__name__,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history or {},
    }
    return save_atomically(payload, Path(path))


def load_checkpoint(path, model: nn.Module, config: dict | None = None) -> dict:
    """Load weights saved by `save_checkpoint` into `model` (then in eval mode); return the stored history.

    Raises CheckpointError (saying which file, what is wrong and what to do) when the file is
    missing, corrupt, not a course checkpoint, lacks one of CHECKPOINT_FIELDS, or was made for
    another model class, configuration or weight shapes. The model is left untouched then.
    """
    path = Path(path)
    retrain = tr("Delete {name} and run the notebook that trains it again (or use load_or_train).", name=path.name)
    if not path.is_file():
        raise CheckpointError(
            path, tr("no such file"), tr("Run the notebook that trains this model first, or use load_or_train.")
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, random bytes, pickled code refused by weights_only
        raise CheckpointError(
            path, tr("not a readable PyTorch checkpoint ({error})", error=type(error).__name__), retrain
        ) from None
    missing = [field for field in CHECKPOINT_FIELDS if not isinstance(payload, dict) or field not in payload]
    if missing == list(CHECKPOINT_FIELDS):  # a bare state_dict, or anything else torch can save
        raise CheckpointError(path, tr("not written by course_utils.save_checkpoint"), retrain)
    if "format" in payload and payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            path,
            tr(
                "written in checkpoint format {format!r}, this course reads format {expected}",
                format=payload["format"],
                expected=CHECKPOINT_FORMAT,
            ),
            retrain,
        )
    if missing:
        fields = ", ".join(map(repr, missing))
        raise CheckpointError(path, tr("a course checkpoint without its field(s) {fields}", fields=fields), retrain)
    if payload["model"] != type(model).__name__:
        raise CheckpointError(
            path,
            tr("holds a {stored}, not a {expected}", stored=payload["model"], expected=type(model).__name__),
            retrain,
        )
    if config is not None and payload["config"] != dict(config):
        raise CheckpointError(
            path,
            tr(
                "was made with {stored}, but this model needs {expected}",
                stored=payload["config"],
                expected=dict(config),
            ),
            retrain,
        )
    problem = _state_dict_mismatch(model.state_dict(), payload["state_dict"])
    if problem:  # checked before loading, so a failed load leaves the model untouched
        raise CheckpointError(path, tr("weights do not fit the model ({problem})", problem=problem), retrain)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return payload["history"]


def _state_dict_mismatch(expected: dict, stored: dict) -> str:
    """'' if `stored` has exactly the keys and shapes of `expected`, else the first difference."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing:
        return tr("missing {key!r}", key=missing[0])
    if unexpected:
        return tr("unexpected {key!r}", key=unexpected[0])
    for key, tensor in expected.items():
        if tuple(stored[key].shape) != tuple(tensor.shape):
            return tr(
                "{key!r} has shape {stored}, the model needs {expected}",
                key=key,
                stored=tuple(stored[key].shape),
                expected=tuple(tensor.shape),
            )
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
    Returns the history (the stored one when loading); the model is left in eval mode.
    """
    path = Path(path)
    try:
        history = load_checkpoint(path, model, config)
    except CheckpointError as error:
        if not retrain:
            raise
        if verbose:
            if not path.exists():
                print(tr("Training a new model (none found); it will be saved to {path}.", path=_short(path)))
            else:
                print(
                    tr(
                        "Training a new model (the saved one is unusable: {problem}); it will be saved to {path}.",
                        problem=error.problem,
                        path=_short(path),
                    )
                )
        history = train(model)
        save_checkpoint(path, model, config, history)
        model.eval()
        return history
    if verbose:
        print(tr("Loaded the trained model from {path}.", path=_short(path)))
    return history


def _short(path: Path) -> str:
    """Path relative to the repository when inside it, for shorter messages."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
