"""Peers: segmentation networks learners would reach for instead, from random weights, trained on the
course's training scenes and scored on its held-out ones.

  - smp's Unet with a vgg11_bn encoder (18 M parameters) and torchvision's fcn_resnet50 (33 M):
    the tools as they come;
  - an equal-size peer: smp's Unet with a small resnet18 encoder (3 stages) and a thin decoder,
    the configuration closest to the course's FCN-8s in parameters and multiply-adds.

Each is trained for the course's wall-clock time (equal time), and the equal-size peer also for
the course's number of optimizer steps at its batch size (equal steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from course_utils.data import NUM_CLASSES
from course_utils.models import count_parameters

from .common import BenchmarkConfig, log
from .quality import held_out_scenes, scene_miou, training_scenes
from .speed import multiply_adds
from .training import TrainingPlan, seconds_per_step, steps_within, train_steps

#: The peers' learning rate (AdamW, one-cycle): the best of 1e-3, 3e-3 and 1e-2 for the vgg11_bn
#: Unet in a 60 s trial on the reference machine; the libraries' own examples use 1e-3 or lower.
#: Not tuned for the small Unet.
PEER_LR = 1e-3

#: The small Unet's decoder widths tried (finest last), and the one closest to the course's
#: FCN-8s at width 16 (599,512 parameters, 163 M multiply-adds per 128x128 image): see
#: closest_configuration; a unit test checks the choice.
SMALL_UNET_CANDIDATES = ((64, 32, 16), (32, 16, 8), (16, 8, 4))
SMALL_UNET_DECODER = (16, 8, 4)
#: resnet18 stages the small Unet keeps: the stem (stride 2), layer1 (4) and layer2 (8).
SMALL_UNET_DEPTH = 3


class MissingPeer(RuntimeError):
    """A peer's library is not installed (it is a benchmark-only extra)."""


class MainOutput(nn.Module):
    """torchvision's segmentation models return {"out": scores, ...}; keep the scores only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def import_smp():
    """segmentation_models_pytorch, or MissingPeer saying how to install it."""
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise MissingPeer(
            "segmentation_models_pytorch is not installed; it is a benchmark-only extra: "
            "pip install -e '.[benchmark]' (make benchmark does it)"
        ) from None
    return smp


def unet_vgg11_bn(num_classes: int) -> nn.Module:
    """smp's Unet, vgg11_bn encoder, random weights: images (N, 3, H, W) -> scores (N, num_classes, H, W)."""
    return import_smp().Unet("vgg11_bn", encoder_weights=None, classes=num_classes)


def fcn_resnet50(num_classes: int) -> nn.Module:
    """torchvision's fcn_resnet50 without its auxiliary head, random weights: (N, 3, H, W) -> (N, num_classes, H, W)."""
    from torchvision.models.segmentation import fcn_resnet50 as build

    return MainOutput(build(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False))


def small_unet(num_classes: int, decoder_channels: tuple[int, ...] = SMALL_UNET_DECODER) -> nn.Module:
    """smp's Unet on resnet18's first SMALL_UNET_DEPTH stages, random weights: (N, 3, H, W) -> (N, num_classes, H, W).

    smp builds the whole resnet18 and leaves the stages past encoder_depth unused (layer3 and
    layer4: 10.5 M parameters that never see an image); they are removed, so that the parameter
    count is that of the network that runs.
    """
    model = import_smp().Unet(
        "resnet18",
        encoder_weights=None,
        encoder_depth=SMALL_UNET_DEPTH,
        decoder_channels=decoder_channels,
        classes=num_classes,
    )
    for name in ("layer1", "layer2", "layer3", "layer4")[SMALL_UNET_DEPTH - 1 :]:
        if hasattr(model.encoder, name):
            delattr(model.encoder, name)
    return model


@dataclass(frozen=True)
class Peer:
    """A peer: its key in the result, its label in tables and figures, how to build it for
    `num_classes` classes (background included), and its learning rate."""

    name: str
    label: str
    build: Callable[[int], nn.Module]
    lr: float = PEER_LR


EQUAL_SIZE_PEER = Peer(
    "smp_unet_resnet18_small",
    f"smp Unet, resnet18 encoder ({SMALL_UNET_DEPTH} stages), decoder {SMALL_UNET_DECODER}",
    small_unet,
)
PEERS = {
    peer.name: peer
    for peer in (
        Peer("smp_unet_vgg11_bn", "smp Unet, vgg11_bn encoder", unet_vgg11_bn),
        Peer("torchvision_fcn_resnet50", "torchvision fcn_resnet50", fcn_resnet50),
        EQUAL_SIZE_PEER,
    )
}


def build_peer(peer: Peer, device: torch.device) -> nn.Module:
    """The peer for the course's classes plus background, seeded (the same weights every run), on `device`."""
    torch.manual_seed(0)
    return peer.build(NUM_CLASSES + 1).to(device)


def size_and_compute(model: nn.Module) -> dict:
    """{"parameters": trainable parameters, "multiply_adds": per 128x128 image, forward}."""
    return {"parameters": count_parameters(model), "multiply_adds": multiply_adds(model)}


def size_distance(a: dict, b: dict) -> float:
    """How far apart two models are in size and compute: |log| of the parameters' ratio plus
    |log| of the multiply-adds' ratio (0: equal; 0.69: one is twice the other in one of them)."""
    return sum(abs(math.log(a[key] / b[key])) for key in ("parameters", "multiply_adds"))


def closest_configuration(reference: dict, candidates: dict) -> object:
    """The key of `candidates` ({key: size_and_compute's dict}) closest to `reference` (size_distance)."""
    return min(candidates, key=lambda key: size_distance(candidates[key], reference))


def skipped_record(peer: Peer, error: MissingPeer) -> dict:
    """A peer whose library is missing: no figures, and why."""
    log(f"  {peer.name}: skipped: {error}")
    return {"label": peer.label, "miou": None, "skipped": str(error)}


def equal_size_report(course_model: nn.Module) -> dict:
    """The small Unet's configuration, its size and compute beside the course FCN-8s's, and every
    candidate's, so that the choice can be checked.

    Returns {"label", "encoder", "encoder_depth", "decoder_channels", "parameters", "multiply_adds",
    "course_parameters", "course_multiply_adds", "candidates": [{"decoder_channels", "parameters",
    "multiply_adds"}], "closest_decoder_channels"}.
    """
    course = size_and_compute(course_model)
    try:
        candidates = {
            channels: size_and_compute(small_unet(NUM_CLASSES + 1, channels)) for channels in SMALL_UNET_CANDIDATES
        }
    except MissingPeer as error:
        return {**skipped_record(EQUAL_SIZE_PEER, error), "course_parameters": course["parameters"]}
    return {
        "label": EQUAL_SIZE_PEER.label,
        "encoder": "resnet18",
        "encoder_depth": SMALL_UNET_DEPTH,
        "decoder_channels": list(SMALL_UNET_DECODER),
        **candidates[SMALL_UNET_DECODER],
        "course_parameters": course["parameters"],
        "course_multiply_adds": course["multiply_adds"],
        "candidates": [{"decoder_channels": list(key), **value} for key, value in candidates.items()],
        "closest_decoder_channels": list(closest_configuration(course, candidates)),
    }


def run_record(peer: Peer, model: nn.Module, run: dict, miou: float) -> dict:
    """What the result keeps of one peer run: mIoU, steps, images seen, training seconds, seconds
    per step, learning rate, label, parameters and multiply-adds per 128x128 image."""
    return {
        "label": peer.label,
        "miou": miou,
        "steps": run["steps"],
        "images_seen": run["images_seen"],
        "train_s": run["train_s"],
        "seconds_per_step": run["train_s"] / run["steps"],
        "lr": peer.lr,
        **size_and_compute(model),
    }


def equal_time_run(peer: Peer, budget_s: float, device: torch.device, config: BenchmarkConfig) -> dict:
    """Train `peer` for about `budget_s` wall-clock seconds, never longer; score it on the held-out scenes.

    The one-cycle schedule needs its length in advance: the steps are the budget over the time of
    one step, measured first; the budget is a deadline as well, in case steps slow down.
    """
    try:
        model = build_peer(peer, device)
    except MissingPeer as error:
        return {**skipped_record(peer, error), "budget_s": budget_s}
    data, batch_size = training_scenes(config), config.scene_recipe.batch_size
    step_s = seconds_per_step(model, data, peer.lr, batch_size)
    plan = TrainingPlan(steps_within(budget_s, step_s), peer.lr, batch_size, deadline_s=budget_s)
    log(f"  {peer.name}: training for {budget_s:.0f} s ({plan.total_steps} steps of about {step_s:.2f} s) ...")
    run = train_steps(model, data, plan)
    (test_images, test_masks), _ = held_out_scenes()
    record = {**run_record(peer, model, run, scene_miou(model, test_images, test_masks)), "budget_s": budget_s}
    log(f"  {peer.name}: {run['steps']} steps in {run['train_s']:.0f} s, mIoU {record['miou']:.3f}")
    return record


def race_at_equal_time(budget_s: float, course_miou: float, device: torch.device, config: BenchmarkConfig) -> dict:
    """Every peer trained for `budget_s` seconds. Returns {peer name: record}, each with
    "ours_over_theirs": the course FCN-8s's mIoU over the peer's."""
    results = {}
    for name, peer in PEERS.items():
        record = equal_time_run(peer, budget_s, device, config)
        if record["miou"] is not None:
            record["ours_over_theirs"] = course_miou / record["miou"] if record["miou"] > 0 else None
        results[name] = record
    return results


def equal_steps_run(steps: int, device: torch.device, config: BenchmarkConfig, peer: Peer = EQUAL_SIZE_PEER) -> dict:
    """Train `peer` (the equal-size peer) for exactly `steps` optimizer steps at the course's batch
    size, however long they take; score it on the held-out scenes."""
    try:
        model = build_peer(peer, device)
    except MissingPeer as error:
        return skipped_record(peer, error)
    plan = TrainingPlan(steps, peer.lr, config.scene_recipe.batch_size)
    log(f"  {peer.name}: {steps} steps ...")
    run = train_steps(model, training_scenes(config), plan)
    (test_images, test_masks), _ = held_out_scenes()
    record = run_record(peer, model, run, scene_miou(model, test_images, test_masks))
    log(f"  {peer.name}: {run['steps']} steps in {run['train_s']:.0f} s, mIoU {record['miou']:.3f}")
    return record
