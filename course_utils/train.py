"""Training, evaluation, seeding and device choice (checkpoints: checkpoints.py; paths: paths.py).

One loop serves the whole course: a batch is `(images, targets, ...)`, where targets are
class labels (N,) for the classifier or masks (N, H, W) for segmentation. Cross-entropy with
`ignore_index=255` and "accuracy = right / counted", counting only pixels that are not 255,
work for both.
"""

from __future__ import annotations

import copy
import os
import random
import re
import time
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.data import DataLoader, Dataset

from .data import IGNORE_INDEX
from .i18n import tr
from .progress import progress_bar

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

#: The widest VGG $FCN_COURSE_WIDTH may ask for: 4x the full width (64), already about 16x its
#: memory. Wider is almost surely a typo, and 2000 would take the machine down.
MAX_WIDTH = 256


def default_width(device: torch.device | str) -> int:
    """VGG width that trains in a couple of minutes: full width (64) on a CUDA GPU, 32 on Apple's MPS, 16 on a CPU.

    $FCN_COURSE_WIDTH, if set, wins on every device: 8 for a slow laptop, say, or 16 on a GPU to
    get the shapes of the CPU run (the notebooks' stored outputs).
    """
    value = os.environ.get(WIDTH_VARIABLE, "").strip()
    if value:
        # ASCII digits only: str.isdigit() (and isdecimal()) also pass "²" or "١٦", which int() then
        # rejects or reads. The bound stops a typo such as 2000 asking for hundreds of GB.
        if not re.fullmatch("[0-9]+", value) or not 1 <= int(value) <= MAX_WIDTH:
            raise ValueError(
                tr(
                    "{variable} must be a whole number from 1 to {maximum} (16 on a CPU, 64 the full "
                    "width), got {value!r}: change or unset the environment variable",
                    variable=WIDTH_VARIABLE,
                    maximum=MAX_WIDTH,
                    value=value,
                )
            )
        return int(value)
    kind = torch.device(device).type
    return {"cuda": 64, "mps": 32}.get(kind, 16)


# --------------------------------------------------------------------------- training loop


def make_loader(data: Dataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A DataLoader whose shuffling order depends only on `seed`."""
    if len(data) == 0:
        raise ValueError(tr("cannot train or evaluate on an empty dataset (0 samples)"))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)


def count_correct(scores: torch.Tensor, targets: torch.Tensor) -> tuple[int, int]:
    """(right, counted) for scores (N, K) vs labels (N,) or scores (N, K, H, W) vs masks (N, H, W).

    Targets equal to IGNORE_INDEX (255: unlabelled pixels) are neither right nor counted, so
    right / counted is the accuracy on the labelled pixels only, as the loss sees them.
    """
    predictions = scores.max(dim=1).indices  # the argmax over classes (.argmax: ~10x slower on NCHW scores on a CPU)
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


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """images (N, 3, H, W) -> (N, 3, size, size), shrunk (or enlarged) smoothly: bilinear with
    antialiasing, so that a shrunk image looks like the scene seen from further away."""
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def train_one_epoch(
    model,
    loader,
    optimizer,
    scheduler=None,
    device="cpu",
    progress=None,
    memory_format=torch.contiguous_format,
    image_size: int | None = None,
) -> dict:
    """One pass over `loader` in train mode, a step per batch (and a scheduler step, if given).
    image_size: resize every batch's images to image_size x image_size first (resize_images);
    None trains on them as they are. Only for labels (N,): a mask would have to be resized too.

    Returns {"loss": mean over images, "accuracy": right / counted with IGNORE_INDEX targets not
    counted (count_correct), "steps": [loss of each step]}.
    """
    model.train()
    total_loss, right, counted, step_losses = 0.0, 0, 0, []
    for images, targets, *_ in loader:
        images, targets = images.to(device, memory_format=memory_format), targets.to(device)
        if image_size is not None:
            images = resize_images(images, image_size)
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


#: Inference batches hold about this many pixels: 64 images of 64x64, 16 of 128x128. Batches that
#: fit the CPU's caches run about 1.5x faster here than batches of 256 small or 50 large images.
PIXELS_PER_BATCH = 2**18


def inference_batch_size(height: int, width: int) -> int:
    """How many images of height x width make an inference batch of about PIXELS_PER_BATCH pixels."""
    return max(1, PIXELS_PER_BATCH // (height * width))


@contextmanager
def eval_mode(model: nn.Module):
    """Run the `with` block with every module of `model` in eval mode (BatchNorm uses its running
    statistics and leaves them alone, Dropout keeps everything), then put each module back in the
    mode it was in."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode, for inference, with every BatchNorm2d that follows a Conv2d
    in an nn.Sequential folded into that convolution. In eval mode BatchNorm is a fixed scale and
    shift per channel, y = a * x + b, which the convolution's weight and bias can absorb
    (torch.nn.utils.fusion.fuse_conv_bn_eval): the same scores up to float rounding, with one pass
    over each feature map fewer (about 20 % faster on a CPU). `model` itself is left as it is."""
    folded = copy.deepcopy(model).eval()
    for block in list(folded.modules()):
        if not isinstance(block, nn.Sequential):
            continue
        for i in range(len(block) - 1):
            conv, norm = block[i], block[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None:
                block[i], block[i + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
    return folded


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int | None = None, device=None) -> dict:
    """Mean cross-entropy and accuracy of `model` on `data`, in eval mode whatever mode the model
    is in (an inference_copy: the model itself is left as it is). Both count only targets that are not IGNORE_INDEX.

    data yields (images (3, H, W), target, ...), target a label () or a mask (H, W).
    batch_size: None picks inference_batch_size for the first image's size.
    Returns {"loss": float, "accuracy": float}.
    """
    device = device or next(model.parameters()).device
    if batch_size is None:
        batch_size = inference_batch_size(*data[0][0].shape[-2:]) if len(data) else 1  # (empty: make_loader says so)
    total_loss, right, counted = 0.0, 0, 0
    folded = inference_copy(model)
    for images, targets, *_ in make_loader(data, batch_size, shuffle=False):
        images, targets = images.to(device, memory_format=torch.channels_last), targets.to(device)
        scores = folded(images)
        total_loss += F.cross_entropy(scores, targets, ignore_index=IGNORE_INDEX, reduction="sum").item()
        r, c = count_correct(scores, targets)
        right, counted = right + r, counted + c
    return {"loss": total_loss / max(counted, 1), "accuracy": right / max(counted, 1)}


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Scores of `model` for a stack of images (N, 3, H, W), batch by batch, on the CPU:
    (N, K) for a classifier, (N, K, H, W) for a segmenter.

    Runs an inference_copy of the model (eval mode whatever mode the model is in, BatchNorm folded
    into the convolutions), so the scores do not depend on the batch size, and the model, its mode
    and BatchNorm's statistics stay as they were. Images go in as channels_last, the layout the
    convolution kernels run fastest on (about 1.6-2x here; the same scores up to float rounding).
    batch_size: None picks inference_batch_size(H, W).
    """
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(
            tr("predict needs a stack of at least one image (N, 3, H, W), got shape {shape}", shape=tuple(images.shape))
        )
    device = next(model.parameters()).device
    size = batch_size or inference_batch_size(*images.shape[-2:])
    folded = inference_copy(model)
    scores = None  # allocated once the first batch shows the output's shape: no list of batches to concatenate
    for start in range(0, len(images), size):
        batch = folded(images[start : start + size].to(device, memory_format=torch.channels_last))
        if scores is None:
            scores = torch.empty((len(images), *batch.shape[1:]), dtype=batch.dtype)
        scores[start : start + len(batch)] = batch  # copied to the CPU, in the standard (N, K, ...) layout
    return scores


def make_optimizer(
    model: nn.Module, lr: float, total_steps: int, weight_decay: float = 1e-4
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW over all of `model`'s parameters, and a one-cycle schedule of `total_steps` steps
    (warm up to `lr`, then anneal to almost 0): call scheduler.step() after each optimizer.step().

    Returns (optimizer, scheduler).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    return optimizer, scheduler


def check_image_sizes(image_sizes, epochs: int, train_data: Dataset) -> list[int | None]:
    """fit's image_sizes as a list of one size (or None) per epoch, after checking it: a
    ValueError says what does not fit. None is [None] * epochs."""
    if image_sizes is None:
        return [None] * epochs
    image_sizes = list(image_sizes)
    if len(image_sizes) != epochs:
        raise ValueError(
            tr(
                "image_sizes needs one entry per epoch ({epochs}), got {count}: {image_sizes}",
                epochs=epochs,
                count=len(image_sizes),
                image_sizes=image_sizes,
            )
        )
    for size in image_sizes:
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ValueError(tr("each image size must be a positive whole number or None, got {size!r}", size=size))
    if all(size is None for size in image_sizes):
        return image_sizes  # nothing resized: no sample drawn to look at its target
    target_shape = tuple(torch.as_tensor(train_data[0][1]).shape) if len(train_data) else ()
    if target_shape != ():
        raise ValueError(
            tr(
                "image_sizes resizes the images only, so it is for labels (a classifier); these targets have "
                "shape {shape}, masks that would have to be resized too",
                shape=target_shape,
            )
        )
    return image_sizes


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
    image_sizes: Sequence[int | None] | None = None,
) -> dict:
    """Train `model` in place with AdamW and a one-cycle learning-rate schedule (make_optimizer);
    return its history. The model ends in eval mode.

    train_data (and val_data) yield (images (3, H, W), target, ...), target a label () or a
    mask (H, W) whose IGNORE_INDEX pixels count in neither the loss nor the accuracy.
    seed seeds Python, NumPy and torch (seed_everything) and the shuffling order; the initial
    weights are whatever `model` holds when it is passed in.

    channels_last stores images and weights as (N, H, W, C) in memory, the layout the CPU and
    GPU convolution kernels run fastest on (same results up to float rounding, about 1.3x faster
    here); the model is returned in the usual layout.
    image_sizes: progressive resizing, one entry per epoch: that epoch trains on the images
    resized to size x size (train_one_epoch), None on the images as they are; validation always
    sees them as they are. For a classifier only: its targets are labels, which do not change
    with the size. None (the default): every epoch at the data's own size.
    history = {"train_loss": [...], "train_accuracy": [...], "val_loss": [...],
               "val_accuracy": [...], "step_loss": [...], "seconds": float}, one entry per
    epoch (per step for step_loss); seconds is the wall-clock training time. Runs repeat
    exactly (all but the seconds) for the same seed and data on the same machine: same CPU
    instruction set, thread count, library build and device.
    """
    if epochs < 1:
        raise ValueError(tr("epochs must be at least 1, got {epochs}", epochs=epochs))
    image_sizes = check_image_sizes(image_sizes, epochs, train_data)
    device = device or next(model.parameters()).device
    seed_everything(seed)
    loader = make_loader(train_data, batch_size, shuffle=True, seed=seed)
    optimizer, scheduler = make_optimizer(model, lr, epochs * len(loader), weight_decay)
    history = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": [], "step_loss": []}
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    start = time.perf_counter()
    with progress_bar(epochs * len(loader), tr("training"), "batch", disable=not progress) as bar:
        for epoch in range(epochs):
            bar.set_description(tr("epoch {epoch}/{epochs}", epoch=epoch + 1, epochs=epochs))
            result = train_one_epoch(
                model, loader, optimizer, scheduler, device, bar, memory_format, image_size=image_sizes[epoch]
            )
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
