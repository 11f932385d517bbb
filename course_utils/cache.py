"""Datasets drawn once and kept on disk as tensors, so that a notebook run again loads its held-out
images in a fraction of a second instead of drawing them.

A cached file holds exactly one dataset. Its name comes from the dataset's repr (class, size,
seed, ...) and from a fingerprint of data.py's source, so changing either draws the data anew;
nothing has to be deleted by hand. Integer tensors (labels, masks: values 0..7 and 255) are
stored as uint8, a quarter of their size, and come back as int64.

`torch.load` does not verify a zip's checksums, so a file with flipped bytes, changed values or
missing items would load and be used silently. Each file therefore also stores the number of
items and a SHA-256 digest of its tensors; a file that does not match them is reported in one
warning naming it, and the data are drawn again.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

from . import data
from .checkpoints import save_atomically, tensors_digest
from .data import materialize
from .i18n import tr
from .paths import dataset_cache_dir

#: Changes whenever data.py does, so that data drawn by an older generator is never reused.
GENERATOR_FINGERPRINT = hashlib.sha256(Path(data.__file__).read_bytes()).hexdigest()[:12]


#: The layout of a cache file; part of its name, so that files of an older layout (without the
#: count and digest, before format 2) are simply not found, rather than reported as damaged.
CACHE_FORMAT = 2


def cache_path(dataset: Dataset) -> Path:
    """The file that holds `dataset`: e.g. datasets/ShapesScenes-<16 hex digits>.pt."""
    key = hashlib.sha256(f"{dataset!r} {GENERATOR_FINGERPRINT} {CACHE_FORMAT}".encode()).hexdigest()[:16]
    return dataset_cache_dir() / f"{type(dataset).__name__}-{key}.pt"


def _pack(tensor: torch.Tensor) -> torch.Tensor:
    """int64 values that fit in uint8 (0..255) as uint8, exactly; anything else as it is."""
    largest = torch.iinfo(torch.uint8).max
    fits = tensor.dtype == torch.int64 and (tensor.numel() == 0 or (tensor.min() >= 0 and tensor.max() <= largest))
    return tensor.to(torch.uint8) if fits else tensor


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(torch.int64) if tensor.dtype == torch.uint8 else tensor


def _digest_of(tensors: list[torch.Tensor]) -> str:
    return tensors_digest({f"{index:03d}": tensor for index, tensor in enumerate(tensors)})


def _stored_tensors(path: Path, dataset: Dataset) -> list[torch.Tensor] | None:
    """The packed tensors of a valid cache file of `dataset`; None when there is none to use.

    A missing file, or one made for another dataset or generator, is None silently (a new name
    would be drawn anyway); a damaged one (unreadable, wrong count, digest mismatch) also warns.
    """
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored["dataset"] != repr(dataset) or stored["generator"] != GENERATOR_FINGERPRINT:
            return None
        tensors, count = stored["tensors"], stored["count"]
        if count != len(dataset) or any(len(tensor) != count for tensor in tensors):
            message = tr(
                "The dataset cache {path} holds {counts} items where the dataset has {length}: drawing it again.",
                path=path,
                counts=[len(t) for t in tensors],
                length=len(dataset),
            )
        elif stored["digest"] != _digest_of(tensors):
            message = tr(
                "The dataset cache {path} does not match its digest (its bytes were changed): drawing it again.",
                path=path,
            )
        else:
            return tensors
    except Exception as error:  # truncated, not a PyTorch file, a field missing
        message = tr(
            "The dataset cache {path} cannot be read ({error}): drawing it again.",
            path=path,
            error=type(error).__name__,
        )
    warnings.warn(message, stacklevel=3)
    return None


def load_or_draw(dataset: Dataset) -> tuple[torch.Tensor, ...]:
    """materialize(dataset), loaded from its cache file when there is a valid one, else drawn and
    saved there. A missing or foreign file is simply drawn again, a damaged one with a warning:
    it is only a cache."""
    path = cache_path(dataset)
    stored = _stored_tensors(path, dataset)
    if stored is not None:
        return tuple(_unpack(tensor) for tensor in stored)
    tensors = materialize(dataset)
    packed = [_pack(t) for t in tensors]
    payload = {
        "dataset": repr(dataset),
        "generator": GENERATOR_FINGERPRINT,
        "count": len(dataset),
        "digest": _digest_of(packed),
        "tensors": packed,
    }
    save_atomically(payload, path)
    return tensors
