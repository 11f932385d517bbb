"""Datasets drawn once and kept on disk as tensors, so that a notebook run again loads its held-out
images in a fraction of a second instead of drawing them.

A cached file holds exactly one dataset. Its name comes from the dataset's repr (class, size,
seed, ...) and from a fingerprint of data.py's source, so changing either draws the data anew;
nothing has to be deleted by hand. Integer tensors (labels, masks: values 0..7 and 255) are
stored as uint8, a quarter of their size, and come back as int64.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch.utils.data import Dataset

from . import data
from .checkpoints import save_atomically
from .data import materialize
from .paths import dataset_cache_dir

#: Changes whenever data.py does, so that data drawn by an older generator is never reused.
GENERATOR_FINGERPRINT = hashlib.sha256(Path(data.__file__).read_bytes()).hexdigest()[:12]


def cache_path(dataset: Dataset) -> Path:
    """The file that holds `dataset`: e.g. datasets/ShapesScenes-<16 hex digits>.pt."""
    key = hashlib.sha256(f"{dataset!r} {GENERATOR_FINGERPRINT}".encode()).hexdigest()[:16]
    return dataset_cache_dir() / f"{type(dataset).__name__}-{key}.pt"


def _pack(tensor: torch.Tensor) -> torch.Tensor:
    """int64 values that fit in uint8 (0..255) as uint8, exactly; anything else as it is."""
    largest = torch.iinfo(torch.uint8).max
    fits = tensor.dtype == torch.int64 and (tensor.numel() == 0 or (tensor.min() >= 0 and tensor.max() <= largest))
    return tensor.to(torch.uint8) if fits else tensor


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(torch.int64) if tensor.dtype == torch.uint8 else tensor


def load_or_draw(dataset: Dataset) -> tuple[torch.Tensor, ...]:
    """materialize(dataset), loaded from its cache file when there is a valid one, else drawn and
    saved there. A missing, unreadable or foreign file is simply drawn again: it is only a cache."""
    path = cache_path(dataset)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored["dataset"] == repr(dataset) and stored["generator"] == GENERATOR_FINGERPRINT:
            return tuple(_unpack(tensor) for tensor in stored["tensors"])
    except Exception:  # no file yet, truncated, not ours: draw it again
        pass
    tensors = materialize(dataset)
    payload = {"dataset": repr(dataset), "generator": GENERATOR_FINGERPRINT, "tensors": [_pack(t) for t in tensors]}
    save_atomically(payload, path)
    return tensors
