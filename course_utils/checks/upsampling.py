"""Notebook 5: check_bilinear_kernel, check_transposed_padding (a ConvTranspose2d that multiplies
sizes exactly) and check_skip_fusion (upsample, align by the layer's geometry, add)."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..i18n import tr
from ..models import bilinear_kernel, bilinear_upsampler
from ._common import _describe, _Exercise, _first_line, _first_match, _self_check


def _with_hint(message: str, hint: str | None) -> str:
    """message, followed by " (hint)" when there is a hint."""
    return tr("{text} ({hint})", text=message, hint=hint) if hint else message


# =========================================================================== notebook 5: the bilinear kernel


def _ramp_kernel(factor: int, center: float) -> torch.Tensor:
    ramp = 1 - (torch.arange(2 * factor, dtype=torch.float64) - center).abs() / factor
    return ramp[:, None] * ramp[None, :]


def _kernel_shape_hint(factor: int) -> Callable[[tuple], str | None]:
    size = 2 * factor

    def hint(shape: tuple) -> str | None:
        if shape == (size,):
            return tr("that is the 1-D ramp: the 2-D kernel is the outer product ramp[:, None] * ramp[None, :]")
        if shape in ((size - 1, size - 1), (size + 1, size + 1)):
            return tr(
                "a kernel of size {got_size}: for a stride-{factor} transposed convolution it is 2 * factor = "
                "{size} wide, an even size whose centre lies between its two middle pixels, at factor - 0.5",
                got_size=shape[0],
                factor=factor,
                size=size,
            )
        return None

    return hint


@_self_check
def check_bilinear_kernel(bilinear_kernel_2d: Callable[[int], torch.Tensor]) -> None:
    """bilinear_kernel_2d(factor) -> (2f, 2f) kernel; a stride-f transposed conv with it is bilinear."""
    __tracebackhide__ = True
    exercise = _Exercise("bilinear_kernel_2d")
    for factor in (2, 4, 8):
        case = tr("for factor {factor}", factor=factor)
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
                    tr(
                        "the centre is at {center}: for an even size 2f it "
                        "lies between the two middle pixels, at factor - 0.5 = {right_center}",
                        center=center,
                        right_center=factor - 0.5,
                    ),
                )
                for center in (factor, factor - 1)
            ],
            atol=1e-6,
        )
        if hint is None and total != 0 and torch.allclose(got * expected.sum() / total, expected, atol=1e-6):
            hint = tr(
                "right shape, wrong scale: the kernel should sum to factor**2 = {total}, so that a "
                "constant stays constant",
                total=factor * factor,
            )
        elif hint is None and torch.allclose(total, expected.sum(), atol=1e-4):
            hint = tr("the sum is right: check where the centre is, factor - 0.5 for an even size")
        message = tr(
            "{case}, first row expected {expected}, got {got}",
            case=case,
            expected=[round(v, 4) for v in expected[0].tolist()],
            got=[round(v, 4) for v in got[0].tolist()],
        )
        raise exercise.error(_with_hint(message, hint))
    exercise.passed(tr("right kernels for factors 2, 4 and 8."))


# =========================================================================== notebook 5: transposed padding

#: (factor, kernel), kernel >= factor. (5, 5) comes early: there only `factor // 2` goes wrong, so
#: each typical mistake first fails on a case whose numbers tell it from the others.
_PADDING_CASES = [(2, 4), (4, 8), (5, 5), (3, 6), (3, 5), (2, 3), (8, 16)]
#: Input sizes n. 5 first, so that a message speaks of a typical map; 1 catches outputs too small to exist.
_PADDING_SIZES = (5, 1, 2, 7)


def _first_wrong_size(factor: int, kernel: int, padding, output_padding):
    """(n, (H, W)) for the first n x n input that does not come out (n * factor) x (n * factor), else None.

    The layer is nn.ConvTranspose2d(2, 2, kernel, stride=factor, padding, output_padding) on a
    (1, 2, n, n) input; the error PyTorch raises, if it refuses these numbers, is returned instead.
    """
    try:
        layer = nn.ConvTranspose2d(2, 2, kernel, stride=factor, padding=padding, output_padding=output_padding)
        for n in _PADDING_SIZES:
            with torch.no_grad():
                size = tuple(layer(torch.zeros(1, 2, n, n)).shape[-2:])
            if size != (n * factor, n * factor):
                return n, size
    except Exception as error:  # PyTorch refused the learner's numbers
        return error
    return None


def _padding_error_hint(factor: int, kernel: int, padding, output_padding) -> str | None:
    """Why PyTorch refused nn.ConvTranspose2d(..., padding, output_padding)."""
    values = (padding, output_padding)
    if any(isinstance(value, float) for value in values):
        return tr(
            "PyTorch needs ints: use integer arithmetic, e.g. (kernel - factor + 1) // 2 rather than "
            "(kernel - factor) / 2, or int(math.ceil(...))"
        )
    if not all(isinstance(value, numbers.Integral) and not isinstance(value, bool) for value in values):
        return tr(
            "padding and output_padding must be Python ints, got {padding} and {output_padding}",
            padding=_describe(padding),
            output_padding=_describe(output_padding),
        )
    if padding < 0:
        return tr(
            "padding {padding} is negative: the output overshoots n * factor by kernel - factor = {overshoot} "
            ">= 0 pixels, which the padding removes, so padding >= 0: did you compute factor - kernel?",
            padding=padding,
            overshoot=kernel - factor,
        )
    if output_padding < 0:
        return tr("output_padding is negative: it adds rows at the end, 0 <= output_padding < stride")
    if output_padding >= factor:
        return tr(
            "output_padding must be smaller than the stride {factor}: take the smallest padding, "
            "ceil((kernel - factor) / 2), and output_padding = 2 * padding - (kernel - factor) is then 0 or 1",
            factor=factor,
        )
    return None


def _padding_size_hint(factor: int, kernel: int, padding: int, output_padding: int) -> str:
    """The mistake behind a pair that PyTorch accepts but that gives the wrong size."""
    overshoot = kernel - factor
    right = -(-overshoot // 2)
    candidates = [
        (
            (overshoot // 2, 0),
            tr(
                "padding (kernel - factor) // 2 = {padding} rounds the odd kernel - factor = {overshoot} down, "
                "leaving one pixel too many: round it up, padding = ceil((kernel - factor) / 2) = {right}, and "
                "output_padding = 2 * padding - (kernel - factor) = {output_padding}",
                padding=overshoot // 2,
                overshoot=overshoot,
                right=right,
                output_padding=2 * right - overshoot,
            ),
        ),
        (
            (right, 0),
            tr(
                "output_padding forgotten: padding {padding} removes 2 * {padding} = {removed} pixels, one more "
                "than the overshoot kernel - factor = {overshoot}; output_padding = 2 * padding - (kernel - factor) "
                "= {output_padding} adds it back at the end",
                padding=right,
                removed=2 * right,
                overshoot=overshoot,
                output_padding=2 * right - overshoot,
            ),
        ),
        (
            (factor // 2, 0),
            tr(
                "padding factor // 2 = {padding} is the bilinear upsampler's, right only for kernel 2 * factor with "
                "an even factor: derive it from kernel - factor = {overshoot}",
                padding=factor // 2,
                overshoot=overshoot,
            ),
        ),
        (
            (kernel // 2, 0),
            tr(
                "padding kernel // 2 = {padding} is a 'same' convolution's: a transposed convolution overshoots "
                "n * factor by kernel - factor = {overshoot} pixels only, so 2 * padding - output_padding = "
                "kernel - factor",
                padding=kernel // 2,
                overshoot=overshoot,
            ),
        ),
    ]
    for pair, hint in candidates:
        if (padding, output_padding) == pair:
            return hint
    return tr(
        "the output is (n - 1) * factor - 2 * padding + kernel + output_padding, so 2 * padding - output_padding "
        "must equal kernel - factor = {overshoot}; yours is 2 * {padding} - {output_padding} = {difference}",
        overshoot=overshoot,
        padding=padding,
        output_padding=output_padding,
        difference=2 * padding - output_padding,
    )


def _expect_pair(exercise: _Exercise, case: str, got) -> tuple:
    """Raise unless `got` is a pair (padding, output_padding)."""
    __tracebackhide__ = True
    exercise.expect_returned(case, got)
    if isinstance(got, numbers.Number):
        raise exercise.error(
            tr(
                "{case}, your function returned a single number, {got}: return a pair, (padding, output_padding)",
                case=case,
                got=_describe(got),
            )
        )
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise exercise.error(
            tr("{case}, expected a pair (padding, output_padding), got {got}", case=case, got=_describe(got))
        )
    return tuple(got)


@_self_check
def check_transposed_padding(padding_for: Callable[[int, int], tuple[int, int]]) -> None:
    """padding_for(factor, kernel) -> (padding, output_padding), ints, kernel >= factor.

    nn.ConvTranspose2d(C, C, kernel, stride=factor, padding, output_padding) must turn every n x n
    input into (n * factor) x (n * factor): (n - 1) * s - 2p + k + output_padding = n * s, so
    2p - output_padding = k - s with 0 <= output_padding < s, e.g. p = ceil((k - s) / 2) and
    output_padding = 2p - (k - s). Any pair PyTorch accepts that gives those sizes passes.
    """
    __tracebackhide__ = True
    exercise = _Exercise("padding_for")
    for factor, kernel in _PADDING_CASES:
        case = tr("for factor {factor}, kernel {kernel}", factor=factor, kernel=kernel)
        padding, output_padding = _expect_pair(exercise, case, exercise.run(case, padding_for, factor, kernel))
        wrong = _first_wrong_size(factor, kernel, padding, output_padding)
        if wrong is None:
            continue
        swapped = _first_wrong_size(factor, kernel, output_padding, padding) is None
        order = tr("the pair is in the wrong order: return (padding, output_padding), padding first")
        if isinstance(wrong, Exception):
            hint = order if swapped else _padding_error_hint(factor, kernel, padding, output_padding)
            message = tr(
                "{case}, nn.ConvTranspose2d(C, C, {kernel}, stride={factor}, padding={padding!r}, "
                "output_padding={output_padding!r}) raised {error}: {detail}",
                case=case,
                kernel=kernel,
                factor=factor,
                padding=padding,
                output_padding=output_padding,
                error=type(wrong).__name__,
                detail=_first_line(wrong),
            )
            raise exercise.error(_with_hint(message, hint))
        n, (height, width) = wrong
        hint = order if swapped else _padding_size_hint(factor, kernel, padding, output_padding)
        raise exercise.error(
            tr(
                "{case}, (padding, output_padding) = ({padding}, {output_padding}): a {n}x{n} input gives "
                "{height}x{width}, expected {size}x{size} ({n} x {factor}): {hint}",
                case=case,
                padding=padding,
                output_padding=output_padding,
                n=n,
                height=height,
                width=width,
                size=n * factor,
                factor=factor,
                hint=hint,
            )
        )
    exercise.passed(
        tr(
            "every n x n input comes out (n * factor) x (n * factor), for {count} (factor, kernel) "
            "pairs, odd kernel - factor included.",
            count=len(_PADDING_CASES),
        )
    )


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


def _overshoot(upsample: nn.ConvTranspose2d) -> int:
    """k - s - 2p: how far upsample's output (N, C, (h - 1) * s - 2p + k, ...) overshoots h * s, half on each side."""
    return upsample.kernel_size[0] - upsample.stride[0] - 2 * upsample.padding[0]


def _align(upsampled: torch.Tensor, size, offset: int, where: str = "end", mode: str = "replicate") -> torch.Tensor:
    """Drop `offset` rows and columns at the top/left, then crop or pad (at `where`, see _fit) to `size`.

    With where="end" and the layer's offset, (k - s - 2p) // 2, this is the geometry's alignment.
    """
    return _fit(upsampled[..., offset:, offset:], size, where, mode)


def _drop_overshoot(upsampled: torch.Tensor, overshoot: int) -> torch.Tensor:
    """upsampled without its overshoot on either side: (N, K, h' - overshoot, w' - overshoot)."""
    before, after = overshoot // 2, overshoot - overshoot // 2
    return upsampled[..., before : upsampled.shape[-2] - after, before : upsampled.shape[-1] - after]


def _geometry_rule(offset: int) -> str:
    return tr(
        "drop (k - s - 2p) // 2 = {offset} at the top and left, then crop or pad at the bottom/right to skip's size",
        offset=offset,
    )


def _fusion_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, nn.Module]]:
    """(description, coarse, skip, upsample): equal sizes, an overshooting layer (crop), skip larger (pad).

    The unpadded ConvTranspose2d(kernel 4, stride 2) overshoots 2h by 2 pixels, one on each side.
    Its even case (skip exactly 2h) comes first: a centre crop is right there, a bottom/right or a
    top/left crop is not, and each gets its own message. In the odd case (skip 2h + 1) a centre
    crop, excess // 2 = 0, is not. The crop cases come before the pad case: for a one-pixel pad,
    nearest resizing gives the same result as padding at the top/left.
    """
    generator = torch.Generator().manual_seed(0)
    classes = 3
    learned = nn.ConvTranspose2d(classes, classes, kernel_size=4, stride=2)  # no padding: 2h + 2
    with torch.no_grad():
        learned.weight.copy_(torch.randn(learned.weight.shape, generator=generator) * 0.5)
        learned.bias.copy_(torch.randn(classes, generator=generator))
    unpadded = tr("upsample = nn.ConvTranspose2d(3, 3, 4, stride=2) with random weights")
    specs = [
        (
            tr("coarse (2, 3, 4, 6), skip (2, 3, 8, 12), upsample = bilinear_upsampler(3, 2) (gives 8x12)"),
            (4, 6),
            (8, 12),
            bilinear_upsampler(classes, 2),
        ),
        (
            tr(
                "coarse (2, 3, 4, 5), skip (2, 3, 8, 10), {upsample} (gives 10x12, 2 pixels too many: crop)",
                upsample=unpadded,
            ),
            (4, 5),
            (8, 10),
            learned,
        ),
        (
            tr(
                "coarse (2, 3, 3, 4), skip (2, 3, 7, 9), {upsample} (gives 8x10, 1 pixel too many: crop)",
                upsample=unpadded,
            ),
            (3, 4),
            (7, 9),
            learned,
        ),
        (
            tr("coarse (2, 3, 5, 3), skip (2, 3, 11, 7), upsample = bilinear_upsampler(3, 2) (gives 10x6: pad)"),
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


def _placement_mistakes(upsampled: torch.Tensor, size, upsample: nn.ConvTranspose2d) -> list[tuple[torch.Tensor, str]]:
    """(result, hint) of typical wrong ways to bring upsampled (N, K, h', w') to `size`, first match first."""
    overshoot, padding = _overshoot(upsample), upsample.padding[0]
    offset, rule = overshoot // 2, _geometry_rule(overshoot // 2)
    height, width = size
    mistakes = []
    if overshoot > 0:
        if padding == 0:
            bottom_right = tr(
                "cropped at the bottom/right only: this layer has no padding, so its output overshoots by "
                "k - s - 2p = {overshoot} pixels, half on each side: drop (k - s - 2p) // 2 = {offset} at the "
                "top/left first",
                overshoot=overshoot,
                offset=offset,
            )
        else:
            bottom_right = tr(
                "cropped at the bottom/right only: this layer has padding {padding}, so its output overshoots by "
                "k - s - 2p = {overshoot} pixels, half on each side: drop (k - s - 2p) // 2 = {offset} at the "
                "top/left first",
                padding=padding,
                overshoot=overshoot,
                offset=offset,
            )
        mistakes += [
            (
                _fit(upsampled, size, "centre"),
                tr(
                    "cropped around the centre, excess // 2 = {excess} at the top: where "
                    "the layer's output lies is set by its geometry, not by the size difference: {rule}",
                    excess=(upsampled.shape[-2] - height) // 2,
                    rule=rule,
                ),
            ),
            (_fit(upsampled, size), bottom_right),
            (
                _fit(upsampled, size, "start"),
                tr(
                    "cropped at the top/left only: the overshoot, k - s - 2p = {overshoot} pixels, lies half on each "
                    "side: {rule}",
                    overshoot=overshoot,
                    rule=rule,
                ),
            ),
            (
                _fit(_drop_overshoot(upsampled, overshoot), size),
                tr(
                    "dropped the overshoot at the bottom too, then padded: upsample(coarse)[..., offset:offset + "
                    "{height}, offset:offset + {width}] keeps its own rows where it has them; pad only what is "
                    "missing",
                    height=height,
                    width=width,
                ),
            ),
        ]
    naive = (upsample.kernel_size[0] - upsample.stride[0]) // 2
    if padding and naive != offset:
        mistakes.append(
            (
                _align(upsampled, size, naive),
                tr(
                    "dropped (k - s) // 2 = {naive} at the top/left, but the padding p = {padding} already trims "
                    "2p = {trimmed} pixels: {rule}",
                    naive=naive,
                    padding=padding,
                    trimmed=2 * padding,
                    rule=rule,
                ),
            )
        )
    edge = tr("pad at the bottom and right, where pooling dropped the odd row or column")
    mistakes += [
        (
            _align(upsampled, size, offset, mode="constant"),
            tr('zero padding: pad by repeating the edge, F.pad(..., mode="replicate"), so the border keeps its scores'),
        ),
        (_align(upsampled, size, offset, "start"), tr("padded at the top and left: {rule}", rule=edge)),
    ]
    if min(upsampled.shape[-2:]) > 1:  # reflect padding needs two rows and columns
        mistakes.append(
            (
                _align(upsampled, size, offset, mode="reflect"),
                tr('reflect padding: pad by repeating the edge, F.pad(..., mode="replicate")'),
            )
        )
    resized = tr(
        "you resized upsample(coarse) to skip's size with F.interpolate: crop or pad it instead, so that "
        "each pixel of both maps keeps its place"
    )
    return mistakes + [
        (F.interpolate(upsampled, size=size, mode="nearest"), resized),
        (F.interpolate(upsampled, size=size, mode="bilinear", align_corners=False), resized),
        (F.interpolate(upsampled, size=size, mode="bilinear", align_corners=True), resized),
    ]


def _fusion_mistakes(
    upsampled: torch.Tensor, skip: torch.Tensor, upsample: nn.ConvTranspose2d
) -> list[tuple[torch.Tensor, str]]:
    """(result, hint) of typical wrong fusions, from the right upsampled scores."""
    size = skip.shape[-2:]
    aligned = _align(upsampled, size, _overshoot(upsample) // 2)
    return [(fit + skip, hint) for fit, hint in _placement_mistakes(upsampled, size, upsample)] + [
        (aligned * skip, tr("multiplied: FCN adds the two score maps")),
        (aligned, tr("skip is missing: add it to the upsampled coarse scores")),
    ]


def _fusion_error_hint(
    coarse: torch.Tensor, skip: torch.Tensor, upsample: nn.ConvTranspose2d, upsampled_size: tuple, calls: list[tuple]
) -> Callable[[Exception], str | None]:
    """A hint for an error raised by the learner's fusion, from what `upsample` was called on."""

    def explain(error: Exception) -> str | None:
        if tuple(skip.shape) in calls:
            return tr(
                "you upsampled skip instead of coarse: `upsample` brings the coarse scores up to skip's resolution"
            )
        if "size" not in str(error):
            return None
        (h, w), (height, width) = upsampled_size, skip.shape[-2:]
        if not calls:
            return tr(
                "coarse was not upsampled: pass it through `upsample` (x2) before adding it to skip; coarse is "
                "{coarse_height}x{coarse_width}, skip {height}x{width}",
                coarse_height=coarse.shape[-2],
                coarse_width=coarse.shape[-1],
                height=height,
                width=width,
            )
        return tr(
            "upsample(coarse) is {upsampled_height}x{upsampled_width} but skip is {height}x{width}: bring it to "
            "skip's size before adding: {rule}, padding by repeating the edge",
            upsampled_height=h,
            upsampled_width=w,
            height=height,
            width=width,
            rule=_geometry_rule(_overshoot(upsample) // 2),
        )

    return explain


def _fusion_shape_hint(coarse, skip, upsampled) -> Callable[[tuple], str | None]:
    batch, classes, height, width = skip.shape

    def hint(shape: tuple) -> str | None:
        if shape == (batch, 2 * classes, height, width):
            return tr("that is U-Net's concatenation (torch.cat along channels); FCN adds the two score maps")
        if shape[-2:] == tuple(upsampled.shape[-2:]):
            return tr(
                "the result is upsample(coarse)'s size: bring upsample(coarse) to skip's size (crop or pad it), "
                "not skip to its size"
            )
        if shape[-2:] == tuple(coarse.shape[-2:]):
            return tr("the result is coarse's size: upsample coarse to skip's resolution, not skip down to coarse's")
        return None

    return hint


def _fusion_reference(coarse: torch.Tensor, skip: torch.Tensor, upsample: nn.Module, upstream: torch.Tensor):
    """(upsample(coarse), the fused scores, and their gradients by name), on copies of the inputs.

    The reference aligns by the layer's geometry: it drops (k - s - 2p) // 2 rows and columns at
    the top/left, then crops or pads (repeating the edge) at the bottom/right to skip's size.
    """
    layer = copy.deepcopy(upsample)
    inputs = {
        **{f"upsample.{name}": p for name, p in layer.named_parameters()},
        "coarse": coarse.clone().requires_grad_(),
        "skip": skip.clone().requires_grad_(),
    }
    upsampled = layer(inputs["coarse"])
    expected = _align(upsampled, skip.shape[-2:], _overshoot(layer) // 2) + inputs["skip"]
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
    case = tr("for {description}", description=description)
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
            explain=_fusion_error_hint(coarse, skip, upsample, tuple(upsampled.shape[-2:]), calls),
        )
    finally:
        stop()
    if tuple(skip.shape) in calls and tuple(coarse.shape) not in calls:
        raise exercise.error(
            tr(
                "{case}, you upsampled skip instead of coarse: `upsample` brings the coarse scores up "
                "to skip's resolution, then the two are added",
                case=case,
            )
        )
    got = exercise.expect_tensor(case, got, expected.shape, shape_hint=_fusion_shape_hint(coarse, skip, upsampled))
    if not torch.allclose(got.detach(), expected, rtol=1e-4, atol=1e-5):
        difference = f"{(got.detach() - expected).abs().max().item():.3g}"
        if not calls:
            raise exercise.error(
                tr(
                    "{case}, the result differs from the reference by up to {difference}: use the "
                    "`upsample` layer you are given, upsample(coarse): it is learned, while "
                    "F.interpolate is fixed",
                    case=case,
                    difference=difference,
                )
            )
        hint = _first_match(got.detach(), _fusion_mistakes(upsampled, skip, upsample))
        raise exercise.error(
            tr(
                "{case}, the result differs from the reference, upsample(coarse) aligned by the layer's geometry "
                "plus skip, by up to {difference} ({hint})",
                case=case,
                difference=difference,
                hint=hint or _geometry_rule(_overshoot(upsample) // 2),
            )
        )
    if calls:
        consequence = tr("the upsampling layer and the scores before it could not learn")
    else:
        consequence = tr(
            "the upsampling layer and the scores before it could not learn: use the `upsample` layer you are "
            "given, it is learned"
        )
    exercise.expect_gradients(case, got, upstream, mine, expected_grads, consequence)


@_self_check
def check_skip_fusion(fuse_skip: Callable[[torch.Tensor, torch.Tensor, nn.Module], torch.Tensor]) -> None:
    """fuse_skip(coarse, skip, upsample) -> upsample(coarse), aligned with skip (N, K, H, W), plus skip.

    upsample is a ConvTranspose2d (kernel k, stride s, padding p): its output overshoots h * s by
    k - s - 2p pixels, half before and half after. Aligning by the geometry drops
    (k - s - 2p) // 2 rows and columns at the top/left (0 for the course's bilinear_upsampler),
    then crops or pads (repeating the edge) at the bottom/right to (H, W): pooling's floor
    rounding drops the last row or column, so coarse maps come up short there.
    Cases: equal sizes, an unpadded layer overshooting skip by 2 (crop one pixel on each side) and
    by 1 (skip odd), and a skip one row and column larger than upsample's output (pad).
    Values and gradients (to upsample's weights, coarse and skip) are compared with the reference.
    """
    __tracebackhide__ = True
    exercise = _Exercise("fuse_skip")
    cases = _fusion_cases()
    for description, coarse, skip, upsample in cases:
        _check_one_fusion(exercise, fuse_skip, description, coarse, skip, upsample)
    exercise.passed(
        tr(
            "upsample, align by the layer's geometry (drop (k - s - 2p) // 2 at the top/left, then crop or pad at "
            "the bottom/right), add: right for {count} size combinations, gradients included.",
            count=len(cases),
        )
    )
