"""Speed: the classifier's training at the course's width and at full width, in images/s and as a
fraction of this machine's dense float32 matrix-product speed measured in the same run; and the
compute a model needs (multiply-adds per image)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from course_utils.data import NUM_CLASSES
from course_utils.models import VGG11Classifier
from course_utils.recipes import CLASSIFIER_RECIPE, TEST_DATA_SEED, shapes_split
from course_utils.train import default_width, eval_mode, make_loader, train_one_epoch

from .common import FULL_WIDTH, SCENE_SIZE, BenchmarkConfig, log, synchronize


def best_seconds(run: Callable[[], object], device: torch.device, repeats: int = 10, warm_ups: int = 3) -> float:
    """The fastest of `repeats` timed calls of run(), in seconds, after `warm_ups` untimed ones."""
    for _ in range(warm_ups):
        run()
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(device: torch.device, size: int = 2048) -> dict[str, float]:
    """Dense float32 matrix products (size x size) @ (size x size), in GFLOP/s, per library.

    torch.mm uses the BLAS (MKL here). On a CPU torch also has oneDNN, the library that runs its
    convolutions: a 1x1 convolution over channels_last data is the same matrix product. The two
    can differ a lot (MKL takes a slower path on AMD processors), so both are measured and the
    machine's matmul speed is the faster one.
    """
    flops = 2 * size**3
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    speeds = {"torch.mm": flops / best_seconds(lambda: a @ b, device) / 1e9}
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        x = torch.randn(1, size, 1, size).to(memory_format=torch.channels_last)  # (K, M) as (1, K, 1, M)
        w = torch.randn(size, size, 1, 1)  # (N, K)
        speeds["oneDNN (1x1 convolution)"] = flops / best_seconds(lambda: F.conv2d(x, w), device) / 1e9
    return speeds


def training_flops(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> int:
    """Floating-point operations of one forward + backward pass on a batch, as torch counts them
    (convolutions and matrix products; normalisation, ReLU and pooling are not counted)."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(images), targets).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


@torch.no_grad()
def multiply_adds(model: nn.Module, image_size: int = SCENE_SIZE) -> int:
    """Multiply-adds of one forward pass on one image (1, 3, image_size, image_size), in eval mode:
    half the FLOPs FlopCounterMode counts (convolutions, transposed ones included, and matrix products)."""
    image = torch.rand(1, 3, image_size, image_size, device=next(model.parameters()).device)
    with eval_mode(model), FlopCounterMode(display=False) as counter:
        model(image)
    return counter.get_total_flops() // 2


def training_speed(
    width: int,
    device: torch.device,
    steps: int,
    image_size: int = 64,
    batch_size: int = CLASSIFIER_RECIPE.batch_size,
    repeats: int = 3,
) -> dict:
    """Train the classifier as `fit` does (AdamW, channels_last): `repeats` timed runs of
    `steps` batches each, after two warm-up batches; the fastest run counts (as in timeit: on a
    shared machine, slower runs measure the neighbours).

    Returns {"images_per_s", "gflop_per_image", "gflops"} (GFLOP/s achieved).
    """
    torch.manual_seed(0)
    model = VGG11Classifier(NUM_CLASSES, width).to(device)
    data = shapes_split((steps + 2) * batch_size, seed=TEST_DATA_SEED, image_size=image_size)
    images, labels, _ = data[:batch_size]
    flop_per_image = training_flops(model, images.to(device), labels.to(device)) / batch_size
    model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    warm_up = make_loader(torch.utils.data.Subset(data, range(2 * batch_size)), batch_size, shuffle=False)
    timed = make_loader(torch.utils.data.Subset(data, range(2 * batch_size, len(data))), batch_size, shuffle=False)
    train_one_epoch(model, warm_up, optimizer, device=device, memory_format=torch.channels_last)
    seconds = best_seconds(
        lambda: train_one_epoch(model, timed, optimizer, device=device, memory_format=torch.channels_last),
        device,
        repeats,
        warm_ups=0,
    )
    images_per_s = steps * batch_size / seconds
    return {
        "images_per_s": images_per_s,
        "gflop_per_image": flop_per_image / 1e9,
        "gflops": images_per_s * flop_per_image / 1e9,
    }


def speed_report(device: torch.device, config: BenchmarkConfig) -> dict:
    """Training speed at the course's CPU width and at FULL_WIDTH, and the matmul speed it is compared with.

    Returns the result's speed fields: train_images_per_s, train_gflops, train_gflop_per_image
    (each {str(width): value}), train_flops_utilization (full width), matmul_gflops (the faster
    library) and matmul_gflops_by_library.
    """
    matmul = matmul_gflops(device)
    widths = {default_width("cpu"): config.course_timed_steps, FULL_WIDTH: config.full_timed_steps}
    speed = {width: training_speed(width, device, steps) for width, steps in widths.items()}
    for width, s in speed.items():
        log(f"  width {width}: {s['images_per_s']:.0f} images/s, {s['gflops']:.0f} GFLOP/s")
    return {
        "train_images_per_s": {str(width): s["images_per_s"] for width, s in speed.items()},
        "train_gflops": {str(width): s["gflops"] for width, s in speed.items()},
        "train_gflop_per_image": {str(width): s["gflop_per_image"] for width, s in speed.items()},
        "train_flops_utilization": speed[FULL_WIDTH]["gflops"] / max(matmul.values()),
        "matmul_gflops": max(matmul.values()),
        "matmul_gflops_by_library": matmul,
    }
