"""How fast and how well the course runs on this machine, beside the tools learners would use instead.

    python -m course_utils.benchmark            # make benchmark: the full run, ~10 min on 2 CPU cores
    python -m course_utils.benchmark --quick    # smoke test, under 3 minutes (see QUICK below)

It measures, on the machine it runs on:
  1. every notebook in a fresh kernel, cold (no checkpoints: it trains what it needs) and warm
     (every checkpoint cached): wall seconds, kernel start-up included, and the kernel's peak
     resident memory;
  2. the classifier's training speed (forward + backward + update, as `fit` runs it) at the
     course's CPU width and at full width, in images/s and as a fraction of this machine's dense
     float32 matrix-product speed, measured in the same run;
  3. quality: the classifier's test accuracy; the mIoU of the converted classifier and of
     FCN-32s/16s/8s on notebook 5's 200 held-out scenes;
  4. peers: segmentation_models_pytorch's Unet (vgg11_bn encoder) and torchvision's
     fcn_resnet50, from random weights, trained on the same scenes for the same wall-clock time
     as the course's FCN-8s took (classifier + FCN-8s training) and scored on the same scenes.

Checkpoints go to a scratch folder, never to data/checkpoints/, so cold runs are really cold and
your own cache is left alone. The results go to data/benchmark.json (--quick: benchmark-quick.json)
and, as one JSON object, to the last line of stdout (progress goes to stderr). Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .data import CLASSES, NUM_CLASSES
from .models import FCN_VARIANTS, VGG11FCN, VGG11Classifier, count_parameters
from .paths import CHECKPOINT_DIR_VARIABLE, DATA_DIR, NOTEBOOK_DIR
from .recipes import (
    CLASSIFIER_RECIPE,
    SCENE_TEST_DATA_SEED,
    SCENE_TRAIN_DATA_SEED,
    SCENE_VAL_DATA_SEED,
    SEGMENTER_RECIPE,
    TEST_DATA_SEED,
    scenes_split,
    shapes_split,
    trained_classifier,
    trained_segmenter,
)
from .run_notebooks import execute_notebook
from .segment import choose_threshold, scores_to_mask, segmentation_report
from .train import (
    default_width,
    evaluate,
    make_loader,
    make_optimizer,
    pick_device,
    predict,
    seed_everything,
    train_one_epoch,
    training_step,
)

FULL_WIDTH = 64
TEST_SCENES, VAL_SCENES = 200, 100  # notebook 5's held-out scenes
#: The peers' learning rate (AdamW, one-cycle): the best of 1e-3, 3e-3 and 1e-2 for the Unet in a
#: 60 s trial on this machine; the libraries' own examples use 1e-3 or lower.
PEER_LR = 1e-3

#: --quick: notebooks 1-2 only, small training recipes, fewer timed steps. Checks that every part
#: runs and that the JSON is complete; its quality figures are not the course's.
QUICK = {
    "notebooks": ["01_classification_detection_segmentation", "02_vgg11_backbone"],
    "classifier_recipe": dataclasses.replace(CLASSIFIER_RECIPE, train_samples=2000, val_samples=200, epochs=4),
    "segmenter_recipe": dataclasses.replace(SEGMENTER_RECIPE, train_samples=200, epochs=2),
    "timed_steps": {"course": 5, "full": 2},
}
FULL = {
    "notebooks": None,  # all of them
    "classifier_recipe": CLASSIFIER_RECIPE,
    "segmenter_recipe": SEGMENTER_RECIPE,
    "timed_steps": {"course": 15, "full": 5},
}


STARTED = time.perf_counter()


def log(message: str) -> None:
    """Progress for the person watching, on stderr (stdout ends with the JSON line alone)."""
    print(f"[{time.perf_counter() - STARTED:4.0f} s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- 1. notebooks

#: Appended to each notebook run: the kernel's peak resident memory in bytes (-1 where unknown).
MEMORY_PROBE = """\
try:
    import resource, sys
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024))
except ImportError:  # Windows
    print(-1)
"""


def time_notebook(path: Path) -> dict:
    """Execute a notebook top to bottom in a fresh kernel, outputs discarded; time it and measure
    the kernel's memory.

    Returns {"seconds": wall time, "peak_rss_mb": the kernel's peak resident memory or None}.
    """
    notebook, seconds = execute_notebook(path, write=False, append_code=MEMORY_PROBE)
    peak_bytes = int(notebook.cells[-1].outputs[0]["text"])
    return {"seconds": seconds, "peak_rss_mb": peak_bytes / 2**20 if peak_bytes >= 0 else None}


def empty_folder(folder: Path) -> None:
    for file in folder.glob("*"):
        file.unlink()


def benchmark_notebooks(paths: list[Path], scratch: Path, fill_cache: Callable[[], object]) -> dict:
    """Each notebook cold (scratch emptied first), then, after `fill_cache()`, warm.

    Returns {notebook name: {"cold_s", "warm_s", "peak_rss_mb"}}; peak_rss_mb is the larger of
    the two runs.
    """
    results = {}
    for path in paths:
        empty_folder(scratch)
        log(f"  {path.stem}: cold ...")
        cold = time_notebook(path)
        results[path.stem] = {"cold_s": cold["seconds"], "peak_rss_mb": cold["peak_rss_mb"]}
        log(f"  {path.stem}: cold {cold['seconds']:.1f} s")
    fill_cache()
    for path in paths:
        warm = time_notebook(path)
        result = results[path.stem]
        result["warm_s"] = warm["seconds"]
        if warm["peak_rss_mb"] is not None:
            result["peak_rss_mb"] = max(result["peak_rss_mb"], warm["peak_rss_mb"])
        log(f"  {path.stem}: warm {warm['seconds']:.1f} s, peak memory {result['peak_rss_mb']:.0f} MB")
    return results


# ---------------------------------------------------------------------------- 2. speed


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(run: Callable[[], object], device: torch.device, repeats: int = 10, warm_ups: int = 3) -> float:
    """The fastest of `repeats` timed calls of run(), after `warm_ups` untimed ones."""
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
    warm_up = torch.utils.data.Subset(data, range(2 * batch_size))
    timed = torch.utils.data.Subset(data, range(2 * batch_size, len(data)))

    def train_on(subset) -> None:
        train_one_epoch(
            model,
            make_loader(subset, batch_size, shuffle=False),
            optimizer,
            device=device,
            memory_format=torch.channels_last,
        )

    train_on(warm_up)  # the first steps allocate memory and pick kernels
    seconds = best_seconds(lambda: train_on(timed), device, repeats, warm_ups=0)
    images_per_s = steps * batch_size / seconds
    return {
        "images_per_s": images_per_s,
        "gflop_per_image": flop_per_image / 1e9,
        "gflops": images_per_s * flop_per_image / 1e9,
    }


# ---------------------------------------------------------------------------- 3. quality


def held_out_scenes():
    """Notebook 5's scenes: test (images (200, 3, 128, 128), masks) and validation (100)."""
    test, val = scenes_split(TEST_SCENES, SCENE_TEST_DATA_SEED), scenes_split(VAL_SCENES, SCENE_VAL_DATA_SEED)
    return test.tensors, val.tensors


def scene_miou(model: nn.Module, images: torch.Tensor, masks: torch.Tensor) -> float:
    """mIoU of a network with a background class (scores (N, 1 + K, H, W)) on scenes."""
    predicted = predict(model, images, batch_size=50).argmax(dim=1)
    return segmentation_report(predicted, masks, CLASSES)["mean_iou"]


def course_models(width: int, device: torch.device, config: dict) -> dict:
    """The course's classifier and FCN-32s/16s/8s, from the scratch checkpoints or trained."""
    kwargs = {"width": width, "device": device}
    classifier, classifier_history = trained_classifier(**kwargs, recipe=config["classifier_recipe"])
    segmenters = {
        variant: trained_segmenter(
            variant, **kwargs, recipe=config["segmenter_recipe"], classifier_recipe=config["classifier_recipe"]
        )
        for variant in FCN_VARIANTS
    }
    return {"classifier": (classifier, classifier_history), "segmenters": segmenters}


def course_quality(models: dict) -> dict:
    """Classifier test accuracy, and mIoU on the held-out scenes, exactly as notebooks 3 and 5."""
    classifier, _ = models["classifier"]
    (test_images, test_masks), (val_images, val_masks) = held_out_scenes()
    converted = VGG11FCN.from_classifier(classifier).eval()
    threshold, _ = choose_threshold(predict(converted, val_images, 50), val_masks, range(0, 11), CLASSES)
    converted_masks = scores_to_mask(predict(converted, test_images, 50), threshold)
    quality = {
        "classifier_accuracy": evaluate(classifier, shapes_split(1000, seed=TEST_DATA_SEED))["accuracy"],
        "converted_fcn_miou": segmentation_report(converted_masks, test_masks, CLASSES)["mean_iou"],
    }
    for variant, (model, _) in models["segmenters"].items():
        quality[f"fcn{variant}_miou"] = scene_miou(model, test_images, test_masks)
    return quality


# ---------------------------------------------------------------------------- 4. peers


class MissingPeer(RuntimeError):
    """A peer's library is not installed (it is a benchmark-only extra)."""


class MainOutput(nn.Module):
    """torchvision's segmentation models return {"out": scores, ...}; keep the scores only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def unet_vgg11_bn(num_classes: int) -> nn.Module:
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise MissingPeer(
            "segmentation_models_pytorch is not installed; it is a benchmark-only extra: "
            "pip install -e '.[benchmark]' (make benchmark does it)"
        ) from None
    return smp.Unet("vgg11_bn", encoder_weights=None, classes=num_classes)


def fcn_resnet50(num_classes: int) -> nn.Module:
    from torchvision.models.segmentation import fcn_resnet50 as build

    return MainOutput(build(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False))


PEERS = {"smp_unet_vgg11_bn": unet_vgg11_bn, "torchvision_fcn_resnet50": fcn_resnet50}


def seconds_per_step(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, repeats: int = 3) -> float:
    """Time of one training step, measured on a copy (the model itself is left untouched)."""
    probe = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(probe.parameters(), lr=PEER_LR)
    return best_seconds(lambda: training_step(probe, images, targets, optimizer), images.device, repeats, warm_ups=1)


def train_within_budget(
    model: nn.Module,
    data,
    budget_s: float,
    lr: float = PEER_LR,
    batch_size: int = SEGMENTER_RECIPE.batch_size,
    seed: int = 0,
) -> dict:
    """Train `model` in place for about `budget_s` wall-clock seconds (AdamW, one-cycle schedule,
    channels_last, as `fit`), and never longer. The schedule needs its length in advance, so the
    number of steps is the budget over the time of one step, measured first.

    Returns {"steps", "images_seen", "train_s"}.
    """
    device = next(model.parameters()).device
    seed_everything(seed)
    loader = make_loader(data, batch_size, shuffle=True, seed=seed)
    model.to(memory_format=torch.channels_last)
    images, targets = next(iter(loader))[:2]
    step_s = seconds_per_step(model, images.to(device, memory_format=torch.channels_last), targets.to(device))
    total_steps = max(1, int(budget_s / step_s))
    optimizer, scheduler = make_optimizer(model, lr, total_steps)
    model.train()
    steps, start = 0, time.perf_counter()
    while steps < total_steps and time.perf_counter() - start < budget_s:
        for images, targets in loader:
            images = images.to(device, memory_format=torch.channels_last)
            training_step(model, images, targets.to(device), optimizer)
            scheduler.step()
            synchronize(device)  # on a GPU the step runs asynchronously: wait, then read the clock
            steps += 1
            if steps == total_steps or time.perf_counter() - start >= budget_s:
                break
    train_s = time.perf_counter() - start
    model.to(memory_format=torch.contiguous_format).eval()
    return {"steps": steps, "images_seen": steps * batch_size, "train_s": train_s}


def benchmark_peers(budget_s: float, course_miou: float, device: torch.device, config: dict) -> dict:
    """Each peer trained for `budget_s` on the course's training scenes, scored on its held-out ones."""
    train_data = scenes_split(config["segmenter_recipe"].train_samples, SCENE_TRAIN_DATA_SEED)
    (test_images, test_masks), _ = held_out_scenes()
    results = {}
    for name, build in PEERS.items():
        torch.manual_seed(0)
        try:
            model = build(NUM_CLASSES + 1).to(device)
        except MissingPeer as error:
            log(f"  {name}: skipped: {error}")
            results[name] = {"miou": None, "budget_s": budget_s, "skipped": str(error)}
            continue
        log(f"  {name}: training for {budget_s:.0f} s ...")
        run = train_within_budget(model, train_data, budget_s)
        miou = scene_miou(model, test_images, test_masks)
        results[name] = {
            "miou": miou,
            "budget_s": budget_s,
            **run,
            "lr": PEER_LR,
            "parameters": count_parameters(model),
            "ours_over_theirs": course_miou / miou if miou > 0 else None,
        }
        log(f"  {name}: {run['steps']} steps ({run['images_seen']} scenes) in {run['train_s']:.0f} s, mIoU {miou:.3f}")
    return results


# ---------------------------------------------------------------------------- the whole run


#: CPU instruction-set extensions that change how fast (and, in the last bits, what) torch computes.
CPU_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 BF16", "amx_tile": "AMX"}
#: Environment variables that change which of them torch and oneDNN use.
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS")


def cpu_description(cpuinfo: str) -> tuple[str, list[str]]:
    """(model name, instruction-set extensions from CPU_FLAGS) read from /proc/cpuinfo's text."""
    name, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return name, [label for flag, label in CPU_FLAGS.items() if flag in flags]


def machine() -> dict:
    """What makes results differ between machines: CPU, its extensions, torch's code path, threads, device."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        cpuinfo = ""
    cpu, extensions = cpu_description(cpuinfo)
    device = pick_device()
    return {
        "cpu": cpu,
        "cpu_extensions": extensions,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_settings": {name: os.environ[name] for name in ISA_VARIABLES if name in os.environ},
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else device.type,
        "platform": platform.platform(),
    }


def targets(result: dict) -> dict:
    """The course's speed and quality targets (issue 5), each with its measured value."""
    notebooks = result["notebooks"].values()
    peers = [
        peer["miou"] for name, peer in result["peers"].items() if name != "course_fcn8s" and peer["miou"] is not None
    ]
    checks = {
        "notebooks cold, total seconds <= 600": (sum(n["cold_s"] for n in notebooks), 600, "max"),
        "notebooks warm, total seconds <= 120": (sum(n["warm_s"] for n in notebooks), 120, "max"),
        "largest kernel, MB <= 3072": (max(n["peak_rss_mb"] or 0 for n in notebooks), 3072, "max"),
        "classifier accuracy >= 0.98": (result["classifier_accuracy"], 0.98, "min"),
        "FCN-8s mIoU >= best peer at the same budget": (result["fcn8s_miou"], max(peers, default=0.0), "min"),
        "full-width training, fraction of matmul FLOP/s >= 0.40": (result["train_flops_utilization"], 0.40, "min"),
    }
    if result.get("peer_budget_factor", 1.0) != 1.0:  # then the race was not at the same budget
        del checks["FCN-8s mIoU >= best peer at the same budget"]
    return {
        name: {"value": value, "target": target, "met": value <= target if kind == "max" else value >= target}
        for name, (value, target, kind) in checks.items()
    }


def run_benchmark(quick: bool = False, peer_budget_factor: float = 1.0) -> dict:
    """Everything above, in order; returns the result dict (see the module docstring).

    peer_budget_factor: give the peers this many times the course's training time (1 = the
    same budget, the fair race; more shows how far they get with longer training).
    """
    config = QUICK if quick else FULL
    device = pick_device()
    course_width = default_width("cpu")  # the width a learner's laptop trains
    paths = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
    if config["notebooks"] is not None:
        paths = [path for path in paths if path.stem in config["notebooks"]]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fcn-benchmark-") as scratch:
        previous = os.environ.get(CHECKPOINT_DIR_VARIABLE)
        os.environ[CHECKPOINT_DIR_VARIABLE] = scratch  # kernels inherit it
        try:
            models = {}

            def fill_cache():  # every checkpoint the notebooks load; those runs are warm then
                log("course models: loading the cold runs' checkpoints, or training them ...")
                models.update(course_models(default_width(device), device, config))

            log(f"notebooks ({len(paths)}), each cold then warm, in fresh kernels:")
            notebooks = benchmark_notebooks(paths, Path(scratch), fill_cache)
            log("training speed and matrix products:")
            matmul = matmul_gflops(device)
            speed = {
                width: training_speed(width, device, config["timed_steps"][key])
                for width, key in ((course_width, "course"), (FULL_WIDTH, "full"))
            }
            for width, s in speed.items():
                log(f"  width {width}: {s['images_per_s']:.0f} images/s, {s['gflops']:.0f} GFLOP/s")
            log("quality on the held-out scenes:")
            quality = course_quality(models)
            classifier_s = models["classifier"][1]["seconds"]
            fcn8s_s = models["segmenters"]["8s"][1]["seconds"]
            log(
                f"peers, each with {peer_budget_factor:g} x the course's budget: "
                f"classifier {classifier_s:.0f} s + FCN-8s {fcn8s_s:.0f} s:"
            )
            peers = {
                "course_fcn8s": {
                    "miou": quality["fcn8s_miou"],
                    "budget_s": classifier_s + fcn8s_s,
                    "classifier_train_s": classifier_s,
                    "fcn8s_train_s": fcn8s_s,
                    "parameters": count_parameters(models["segmenters"]["8s"][0]),
                }
            }
            peer_budget = peer_budget_factor * (classifier_s + fcn8s_s)
            peers.update(benchmark_peers(peer_budget, quality["fcn8s_miou"], device, config))
        finally:
            if previous is None:
                os.environ.pop(CHECKPOINT_DIR_VARIABLE, None)
            else:
                os.environ[CHECKPOINT_DIR_VARIABLE] = previous
    result = {
        "quick": quick,
        "notebooks": notebooks,
        "notebooks_total": {
            "cold_s": sum(n["cold_s"] for n in notebooks.values()),
            "warm_s": sum(n["warm_s"] for n in notebooks.values()),
        },
        **quality,
        "train_images_per_s": {str(width): s["images_per_s"] for width, s in speed.items()},
        "train_gflops": {str(width): s["gflops"] for width, s in speed.items()},
        "train_gflop_per_image": {str(width): s["gflop_per_image"] for width, s in speed.items()},
        "train_flops_utilization": speed[FULL_WIDTH]["gflops"] / max(matmul.values()),
        "matmul_gflops": max(matmul.values()),
        "matmul_gflops_by_library": matmul,
        "peers": peers,
        "peer_budget_factor": peer_budget_factor,
        "machine": machine(),
        "benchmark_s": time.perf_counter() - start,
    }
    result["targets"] = targets(result)
    return result


def markdown_table(result: dict) -> str:
    """The README's results table for one benchmark result."""
    rows = [("notebook", "cold", "warm", "kernel peak memory")]
    for name, n in result["notebooks"].items():
        rows.append((f"`{name}`", f"{n['cold_s']:.0f} s", f"{n['warm_s']:.0f} s", f"{n['peak_rss_mb']:,.0f} MB"))
    total = result["notebooks_total"]
    rows.append(("**all notebooks**", f"**{total['cold_s']:.0f} s**", f"**{total['warm_s']:.0f} s**", ""))
    lines = [table(rows), ""]
    speed = [("classifier training (64x64, batch 64)", "images/s", "GFLOP/s", "of matmul peak")]
    peak = result["matmul_gflops"]
    for width, images in result["train_images_per_s"].items():
        gflops = result["train_gflops"][width]
        speed.append((f"width {width}", f"{images:,.0f}", f"{gflops:.0f}", f"{gflops / peak:.0%}"))
    libraries = ", ".join(f"{name} {value:.0f}" for name, value in result["matmul_gflops_by_library"].items())
    lines += [table(speed), "", f"Dense float32 matmul: {peak:.0f} GFLOP/s ({libraries}).", ""]
    quality = [("model (200 held-out scenes)", "mIoU", "training budget", "parameters", "FCN-8s mIoU / its mIoU")]
    quality.append(("converted classifier (no pixel labels)", f"{result['converted_fcn_miou']:.3f}", "", "", ""))
    quality.append(("course FCN-32s", f"{result['fcn32s_miou']:.3f}", "", "", ""))
    quality.append(("course FCN-16s", f"{result['fcn16s_miou']:.3f}", "", "", ""))
    for name, peer in result["peers"].items():
        miou = "skipped" if peer["miou"] is None else f"{peer['miou']:.3f}"
        budget = f"{peer['budget_s']:.0f} s"
        if "images_seen" in peer:
            budget += f" ({peer['images_seen']:,} scenes seen)"
        label = {
            "course_fcn8s": "**course FCN-8s**",
            "smp_unet_vgg11_bn": "smp Unet, vgg11_bn encoder",
            "torchvision_fcn_resnet50": "torchvision fcn_resnet50",
        }.get(name, name)
        ratio = f"{peer['ours_over_theirs']:.1f}x" if peer.get("ours_over_theirs") else ""
        quality.append((label, miou, budget, f"{peer.get('parameters', 0) / 1e6:.1f} M", ratio))
    lines += [table(quality), "", f"Classifier test accuracy: {result['classifier_accuracy']:.1%}."]
    return "\n".join(lines)


def table(rows: list[tuple]) -> str:
    """Rows of strings as a markdown table, the first row as its header."""
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def default_output(quick: bool) -> Path:
    return DATA_DIR / ("benchmark-quick.json" if quick else "benchmark.json")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: notebooks 1-2, small recipes (< 3 min)")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the JSON (default: data/benchmark.json, "
        "or data/benchmark-quick.json with --quick, so a smoke test never replaces a full result)",
    )
    parser.add_argument(
        "--peer-budget-factor",
        type=float,
        default=1.0,
        metavar="F",
        help="train the peers F times as long as the course (default 1: the same budget)",
    )
    parser.add_argument(
        "--table", type=Path, metavar="JSON", help="print the README table of a stored result, and stop"
    )
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(args.table.read_text())))
        return {}
    if args.peer_budget_factor <= 0:
        parser.error(f"--peer-budget-factor must be positive, got {args.peer_budget_factor}")
    output = args.output or default_output(args.quick)
    result = run_benchmark(quick=args.quick, peer_budget_factor=args.peer_budget_factor)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    log(f"written to {output}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
