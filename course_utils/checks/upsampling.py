"""Notebook 5: check_bilinear_kernel and check_skip_fusion (upsample, crop or pad, add)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models import bilinear_kernel, bilinear_upsampler, match_size
from ._common import _Exercise, _first_match, _self_check

# =========================================================================== notebook 5: the bilinear kernel


def _ramp_kernel(factor: int, center: float) -> torch.Tensor:
    ramp = 1 - (torch.arange(2 * factor, dtype=torch.float64) - center).abs() / factor
    return ramp[:, None] * ramp[None, :]


def _kernel_shape_hint(factor: int) -> Callable[[tuple], str | None]:
    size = 2 * factor

    def hint(shape: tuple) -> str | None:
        if shape == (size,):
            return "that is the 1-D ramp: the 2-D kernel is the outer product ramp[:, None] * ramp[None, :]"
        if shape in ((size - 1, size - 1), (size + 1, size + 1)):
            return (
                f"a kernel of size {shape[0]}: for a stride-{factor} transposed convolution it is 2 * factor = "
                f"{size} wide, an even size whose centre lies between its two middle pixels, at factor - 0.5"
            )
        return None

    return hint


@_self_check
def check_bilinear_kernel(bilinear_kernel_2d: Callable[[int], torch.Tensor]) -> None:
    """bilinear_kernel_2d(factor) -> (2f, 2f) kernel; a stride-f transposed conv with it is bilinear."""
    __tracebackhide__ = True
    exercise = _Exercise("bilinear_kernel_2d")
    for factor in (2, 4, 8):
        case = f"for factor {factor}"
        expected = bilinear_kernel(1, factor)[0, 0].double()
        got = exercise.run(case, bilinear_kernel_2d, factor)
        got = exercise.expect_tensor(case, got, expected.shape, shape_hint=_kernel_shape_hint(factor)).double()
        if torch.allclose(got, expected, atol=1e-6):
            continue
        total = got.sum()
        hint = _first_match(
            got,
            [
                (
                    _ramp_kernel(factor, center),
                    f"the centre is at {center}: for an even size 2f it "
                    f"lies between the two middle pixels, at factor - 0.5 = {factor - 0.5}",
                )
                for center in (factor, factor - 1)
            ],
            atol=1e-6,
        )
        if hint is None and total != 0 and torch.allclose(got * expected.sum() / total, expected, atol=1e-6):
            hint = (
                f"right shape, wrong scale: the kernel should sum to factor**2 = {factor * factor}, so that a "
                "constant stays constant"
            )
        elif hint is None and torch.allclose(total, expected.sum(), atol=1e-4):
            hint = "the sum is right: check where the centre is, factor - 0.5 for an even size"
        raise exercise.error(
            f"{case}, first row expected {[round(v, 4) for v in expected[0].tolist()]}, "
            f"got {[round(v, 4) for v in got[0].tolist()]}" + (f" ({hint})" if hint else "")
        )
    exercise.passed("right kernels for factors 2, 4 and 8.")


# =========================================================================== notebook 5: the skip fusion


def _fit(x: torch.Tensor, size, where: str = "end", mode: str = "replicate") -> torch.Tensor:
    """Crop or pad x to spatial `size`; where = "end" (bottom/right, as match_size), "start" or "centre"."""
    for dim, target in zip((-2, -1), size):
        excess = x.shape[dim] - target
        if excess > 0:
            x = x.narrow(dim, {"end": 0, "start": excess, "centre": excess // 2}[where], target)
    pads = []
    for dim, target in ((-1, size[1]), (-2, size[0])):
        missing = max(target - x.shape[dim], 0)
        before = {"end": 0, "start": missing, "centre": missing // 2}[where]
        pads += [before, missing - before]
    return F.pad(x, pads, mode=mode) if any(pads) else x


def _fusion_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, nn.Module]]:
    """(description, coarse, skip, upsample): equal sizes, upsample larger (crop), skip larger (pad).

    The crop case comes before the pad case: for a one-pixel pad, nearest resizing gives the same
    result as padding at the top/left, while the two-pixel crop tells every placement apart.
    """
    generator = torch.Generator().manual_seed(0)
    classes = 3
    learned = nn.ConvTranspose2d(classes, classes, kernel_size=4, stride=2)  # no padding: 2h + 2
    with torch.no_grad():
        learned.weight.copy_(torch.randn(learned.weight.shape, generator=generator) * 0.5)
        learned.bias.copy_(torch.randn(classes, generator=generator))
    specs = [
        (
            "coarse (2, 3, 4, 6), skip (2, 3, 8, 12), upsample = bilinear_upsampler(3, 2) (gives 8x12)",
            (4, 6),
            (8, 12),
            bilinear_upsampler(classes, 2),
        ),
        (
            "coarse (2, 3, 4, 5), skip (2, 3, 8, 10), upsample = nn.ConvTranspose2d(3, 3, 4, stride=2) with random "
            "weights (gives 10x12: crop)",
            (4, 5),
            (8, 10),
            learned,
        ),
        (
            "coarse (2, 3, 5, 3), skip (2, 3, 11, 7), upsample = bilinear_upsampler(3, 2) (gives 10x6: pad)",
            (5, 3),
            (11, 7),
            bilinear_upsampler(classes, 2),
        ),
    ]
    return [
        (
            description,
            torch.randn(2, classes, *coarse, generator=generator),
            torch.randn(2, classes, *skip, generator=generator),
            upsample,
        )
        for description, coarse, skip, upsample in specs
    ]


def _upsample_inputs(layer: nn.Module) -> tuple[list[tuple], Callable[[], None]]:
    """Record the shapes `layer` is called on: (list of input shapes, a function that stops recording)."""
    shapes: list[tuple] = []
    handle = layer.register_forward_pre_hook(lambda module, inputs: shapes.append(tuple(inputs[0].shape)))
    return shapes, handle.remove


def _fusion_mistakes(upsampled: torch.Tensor, skip: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    """(result, hint) of typical wrong fusions, from the right upsampled scores."""
    size = skip.shape[-2:]
    edge = "crop or pad at the bottom and right, where pooling dropped the odd row or column"
    resized = (
        "you resized upsample(coarse) to skip's size with F.interpolate: crop or pad it instead, so that "
        "each pixel of both maps keeps its place"
    )
    wrong_fits = [
        (
            _fit(upsampled, size, mode="constant"),
            'zero padding: pad by repeating the edge, F.pad(..., mode="replicate"), so the border keeps its scores',
        ),
        (_fit(upsampled, size, "start"), f"cropped or padded at the top and left: {edge}"),
        (_fit(upsampled, size, "centre"), f"cropped or padded around the centre: {edge}"),
        (F.interpolate(upsampled, size=size, mode="nearest"), resized),
        (F.interpolate(upsampled, size=size, mode="bilinear", align_corners=False), resized),
        (F.interpolate(upsampled, size=size, mode="bilinear", align_corners=True), resized),
    ]
    if min(upsampled.shape[-2:]) > 1:  # reflect padding needs two rows and columns
        wrong_fits.append(
            (
                _fit(upsampled, size, mode="reflect"),
                'reflect padding: pad by repeating the edge, F.pad(..., mode="replicate")',
            )
        )
    fitted = match_size(upsampled, size)
    return [(fit + skip, hint) for fit, hint in wrong_fits] + [
        (fitted * skip, "multiplied: FCN adds the two score maps"),
        (fitted, "skip is missing: add it to the upsampled coarse scores"),
    ]


def _fusion_error_hint(
    coarse: torch.Tensor, skip: torch.Tensor, upsampled_size: tuple, calls: list[tuple]
) -> Callable[[Exception], str | None]:
    """A hint for an error raised by the learner's fusion, from what `upsample` was called on."""

    def explain(error: Exception) -> str | None:
        if tuple(skip.shape) in calls:
            return "you upsampled skip instead of coarse: `upsample` brings the coarse scores up to skip's resolution"
        if "size" not in str(error):
            return None
        (h, w), (height, width) = upsampled_size, skip.shape[-2:]
        if not calls:
            return (
                f"coarse was not upsampled: pass it through `upsample` (x2) before adding it to skip; coarse is "
                f"{coarse.shape[-2]}x{coarse.shape[-1]}, skip {height}x{width}"
            )
        return (
            f"upsample(coarse) is {h}x{w} but skip is {height}x{width}: bring it to skip's size before adding, "
            "cropping its bottom/right or padding by repeating the edge"
        )

    return explain


def _fusion_shape_hint(coarse, skip, upsampled) -> Callable[[tuple], str | None]:
    batch, classes, height, width = skip.shape

    def hint(shape: tuple) -> str | None:
        if shape == (batch, 2 * classes, height, width):
            return "that is U-Net's concatenation (torch.cat along channels); FCN adds the two score maps"
        if shape[-2:] == tuple(upsampled.shape[-2:]):
            return (
                "the result is upsample(coarse)'s size: bring upsample(coarse) to skip's size (crop or pad it), "
                "not skip to its size"
            )
        if shape[-2:] == tuple(coarse.shape[-2:]):
            return "the result is coarse's size: upsample coarse to skip's resolution, not skip down to coarse's"
        return None

    return hint


def _fusion_reference(coarse: torch.Tensor, skip: torch.Tensor, upsample: nn.Module, upstream: torch.Tensor):
    """(upsample(coarse), the fused scores, and their gradients by name), on copies of the inputs."""
    layer = copy.deepcopy(upsample)
    inputs = {
        **{f"upsample.{name}": p for name, p in layer.named_parameters()},
        "coarse": coarse.clone().requires_grad_(),
        "skip": skip.clone().requires_grad_(),
    }
    upsampled = layer(inputs["coarse"])
    expected = match_size(upsampled, skip.shape[-2:]) + inputs["skip"]
    gradients = torch.autograd.grad(expected, list(inputs.values()), upstream)
    return upsampled.detach(), expected.detach(), dict(zip(inputs, gradients))


def _check_one_fusion(
    exercise: _Exercise,
    fuse_skip: Callable,
    description: str,
    coarse: torch.Tensor,
    skip: torch.Tensor,
    upsample: nn.Module,
) -> None:
    __tracebackhide__ = True
    case = f"for {description}"
    upstream = torch.randn(skip.shape, generator=torch.Generator().manual_seed(1))
    upsampled, expected, expected_grads = _fusion_reference(coarse, skip, upsample, upstream)
    mine = {
        **{f"upsample.{name}": p for name, p in upsample.named_parameters()},
        "coarse": coarse.clone().requires_grad_(),
        "skip": skip.clone().requires_grad_(),
    }
    calls, stop = _upsample_inputs(upsample)
    try:
        got = exercise.run(
            case,
            fuse_skip,
            mine["coarse"],
            mine["skip"],
            upsample,
            explain=_fusion_error_hint(coarse, skip, tuple(upsampled.shape[-2:]), calls),
        )
    finally:
        stop()
    if tuple(skip.shape) in calls and tuple(coarse.shape) not in calls:
        raise exercise.error(
            f"{case}, you upsampled skip instead of coarse: `upsample` brings the coarse scores up "
            "to skip's resolution, then the two are added"
        )
    got = exercise.expect_tensor(case, got, expected.shape, shape_hint=_fusion_shape_hint(coarse, skip, upsampled))
    if not torch.allclose(got.detach(), expected, rtol=1e-4, atol=1e-5):
        difference = f"{(got.detach() - expected).abs().max().item():.3g}"
        if not calls:
            raise exercise.error(
                f"{case}, the result differs from the reference by up to {difference}: use the "
                "`upsample` layer you are given, upsample(coarse): it is learned, while "
                "F.interpolate is fixed"
            )
        hint = _first_match(got.detach(), _fusion_mistakes(upsampled, skip))
        raise exercise.error(
            f"{case}, the result differs from upsample(coarse), cropped or padded at the "
            f"bottom/right to skip's size, plus skip, by up to {difference}" + (f" ({hint})" if hint else "")
        )
    consequence = "the upsampling layer and the scores before it could not learn" + (
        "" if calls else ": use the `upsample` layer you are given, it is learned"
    )
    exercise.expect_gradients(case, got, upstream, mine, expected_grads, consequence)


@_self_check
def check_skip_fusion(fuse_skip: Callable[[torch.Tensor, torch.Tensor, nn.Module], torch.Tensor]) -> None:
    """fuse_skip(coarse, skip, upsample) -> match_size(upsample(coarse), skip's size) + skip.

    Cases: equal sizes, a learned layer whose output is larger than skip (crop the bottom/right),
    and a skip one row and column larger than upsample's output (pad by repeating the edge).
    Values and gradients (to upsample's weights, coarse and skip) are compared with the reference.
    """
    __tracebackhide__ = True
    exercise = _Exercise("fuse_skip")
    cases = _fusion_cases()
    for description, coarse, skip, upsample in cases:
        _check_one_fusion(exercise, fuse_skip, description, coarse, skip, upsample)
    exercise.passed(
        f"upsample, crop or pad at the bottom/right, add: right for {len(cases)} size combinations, gradients included."
    )
