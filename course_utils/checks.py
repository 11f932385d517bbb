"""Self-checks for the notebooks' exercises.

Each `check_*` function runs the learner's code on several cases, compares it with the
reference implementation and either prints one line saying what passed, or raises
`SelfCheckError` whose message says what was expected, what came back, and a hint. Errors
raised *inside* the learner's code are reported the same way (which case, which error), so a
learner never has to read a traceback from inside this package.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from .data import bounding_box
from .models import VGG11Backbone, count_parameters


class SelfCheckError(AssertionError):
    """The learner's answer is wrong; the message says how."""


def _fail(exercise: str, message: str) -> SelfCheckError:
    return SelfCheckError(f"{exercise}: {message}")


def _run(exercise: str, case: str, function: Callable, *args):
    """Call the learner's function, turning any error it raises into a clear SelfCheckError."""
    try:
        return function(*args)
    except NotImplementedError:
        raise _fail(exercise, "not written yet: replace `raise NotImplementedError` with your code.") from None
    except Exception as error:  # the learner's code crashed: say where, not how deep
        raise _fail(exercise, f"{case} raised {type(error).__name__}: {error}") from None


def _passed(exercise: str, detail: str) -> None:
    print(f"✓ {exercise}: {detail}")


# --------------------------------------------------------------------------- notebook 1


def _box_cases() -> list[tuple[str, torch.Tensor]]:
    cases = []
    mask = torch.zeros(40, 60, dtype=torch.long)
    mask[5:12, 20:50] = 3
    cases.append(("a wide rectangle (rows 5-11, columns 20-49) in a 40x60 mask", mask))
    mask = torch.zeros(64, 64, dtype=torch.long)
    mask[30, 7] = 1
    cases.append(("a single pixel at row 30, column 7", mask))
    mask = torch.zeros(32, 48, dtype=torch.long)
    mask[:, 40:] = 2
    cases.append(("an object touching the top, bottom and right edges", mask))
    mask = torch.zeros(50, 50, dtype=torch.long)
    mask[10:20, 10:20] = 4
    mask[8:22, 8:22][mask[8:22, 8:22] == 0] = 255  # an ignore band around the object
    cases.append(("an object with a band of ignored (255) pixels around it", mask))
    mask = torch.zeros(30, 30, dtype=torch.long)
    mask[3, 25] = mask[27, 2] = 6
    cases.append(("two separate pixels of the same object", mask))
    return cases


def check_mask_to_box(mask_to_box: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """mask_to_box(mask (H, W)) -> [x_min, y_min, x_max, y_max] of the object pixels, inclusive."""
    exercise = "mask_to_box"
    cases = _box_cases()
    for description, mask in cases:
        expected = bounding_box(mask).long()
        got = _run(exercise, f"for {description} it", mask_to_box, mask.clone())
        got_tensor = torch.as_tensor(got).flatten()
        if got_tensor.numel() != 4:
            raise _fail(exercise, f"for {description}, expected 4 numbers [x_min, y_min, x_max, y_max], got {got!r}")
        if not torch.equal(got_tensor.long(), expected.long()):
            hint = ""
            if torch.equal(got_tensor.long(), expected.long()[[1, 0, 3, 2]]):
                hint = " (x and y are swapped: x is the column index, y the row index)"
            elif torch.equal(got_tensor.long(), expected.long() + torch.tensor([0, 0, 1, 1])):
                hint = " (x_max and y_max are one too large: the box is inclusive, like torchvision's masks_to_boxes)"
            elif description.startswith("an object with a band"):
                hint = " (pixels marked 255 are 'ignore', not part of the object)"
            raise _fail(exercise, f"for {description}, expected {expected.tolist()}, got {got_tensor.tolist()}{hint}")
    _passed(exercise, f"all {len(cases)} test masks give the right box.")


# --------------------------------------------------------------------------- notebook 2


def _describe(model: nn.Module) -> list[tuple[str, tuple]]:
    return [(name, tuple(t.shape)) for name, t in model.state_dict().items() if not name.endswith("num_batches_tracked")]


def _copy_in_order(source: nn.Module, target: nn.Module) -> None:
    """Load source's weights and BatchNorm statistics into target, matched by order, not name."""
    tensors = [t for name, t in source.state_dict().items() if not name.endswith("num_batches_tracked")]
    state = target.state_dict()
    names = [name for name in state if not name.endswith("num_batches_tracked")]
    target.load_state_dict({**state, **dict(zip(names, tensors))})


def check_backbone(make_backbone: Callable[[int], nn.Module]) -> None:
    """make_backbone(width) -> a VGG11-BN backbone; compared layer by layer with VGG11Backbone."""
    exercise = "VGG11 backbone"
    model = _run(exercise, "building it with width=64", make_backbone, 64)
    expected_count = count_parameters(VGG11Backbone(64))
    got_count = count_parameters(model)
    if got_count != expected_count:
        raise _fail(
            exercise,
            f"expected {expected_count:,} parameters at width 64, got {got_count:,} "
            f"(difference {got_count - expected_count:+,}; a conv3x3 from C_in to C_out has 9*C_in*C_out + C_out, "
            "a BatchNorm over C channels 2*C: compare your layers with the table above)",
        )
    # The same tensors, in the same order, with the same shapes: then the reference weights fit.
    torch.manual_seed(0)
    reference = VGG11Backbone(width=8)
    for module in reference.modules():  # BatchNorm statistics that are not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    mine = _run(exercise, "building it with width=8", make_backbone, 8)
    ours, theirs = _describe(reference), _describe(mine)
    for i, ((ref_name, ref_shape), (name, shape)) in enumerate(zip(ours, theirs)):
        if ref_shape != shape:
            raise _fail(
                exercise,
                f"tensor #{i} ({name}) has shape {shape}, expected {ref_shape} like the reference's {ref_name} "
                "(are the layers in VGG11's order, with width scaling every layer?)",
            )
    if len(ours) != len(theirs):
        raise _fail(exercise, f"expected {len(ours)} weight tensors and BatchNorm statistics at width 8, got {len(theirs)}")
    _copy_in_order(reference, mine)
    x = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = reference.eval()(x), _run(exercise, "a forward pass on a (2, 3, 96, 64) batch", mine.eval(), x)
    if tuple(got.shape) != tuple(expected.shape):
        raise _fail(exercise, f"for input (2, 3, 96, 64) expected output {tuple(expected.shape)}, got {tuple(got.shape)} "
                              "(four 2x2 max pools: stride 16, no pool after the last block)")
    if not torch.allclose(got, expected, atol=1e-5):
        raise _fail(exercise, "same weights, different outputs: max difference "
                              f"{(got - expected).abs().max().item():.3g} (check the order conv -> BatchNorm -> ReLU and where the pools go)")
    _passed(exercise, f"{got_count:,} parameters, same layers and outputs as the reference.")


# --------------------------------------------------------------------------- notebook 3


def check_classifier_head(head: Callable[[torch.Tensor, nn.Linear], torch.Tensor]) -> None:
    """head(features (N, C, h, w), fc) -> scores (N, K): pool5, global average pooling, fc."""
    exercise = "classifier head"
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    fc = nn.Linear(12, 5)
    for shape in [(2, 12, 4, 4), (3, 12, 6, 2), (1, 12, 8, 10)]:
        features = torch.randn(*shape, generator=generator)
        pooled = nn.functional.max_pool2d(features, 2)
        expected = fc(pooled.mean(dim=(2, 3)))
        got = _run(exercise, f"for features of shape {shape} it", head, features.clone(), fc)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
            raise _fail(exercise, f"for features {shape} expected scores of shape {tuple(expected.shape)}, "
                                  f"got {tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}")
        if not torch.allclose(got, expected, atol=1e-5):
            hint = ""
            if torch.allclose(got, fc(features.mean(dim=(2, 3))), atol=1e-5):
                hint = " (pool5 is missing: max-pool 2x2 before averaging)"
            elif torch.allclose(got, fc(pooled.amax(dim=(2, 3))), atol=1e-5):
                hint = " (that is global *max* pooling: average over height and width instead)"
            raise _fail(exercise, f"for features {shape}, scores differ from pool5 -> GAP -> fc by up to "
                                  f"{(got - expected).abs().max().item():.3g}{hint}")
    _passed(exercise, "pool5 -> global average pooling -> fc, right for 3 feature-map sizes.")


# --------------------------------------------------------------------------- notebook 4


def check_copy_last_layer(copy_last_layer: Callable[[nn.Linear, nn.Conv2d], None]) -> None:
    """copy_last_layer(fc, conv) copies fc's weight (K, C) and bias (K,) into the 1x1 conv."""
    exercise = "copy_last_layer"
    for classes, channels in [(7, 16), (3, 10)]:
        torch.manual_seed(classes)
        fc = nn.Linear(channels, classes)
        conv = nn.Conv2d(channels, classes, kernel_size=1)
        fc_before = (fc.weight.detach().clone(), fc.bias.detach().clone())
        _run(exercise, f"with fc = nn.Linear({channels}, {classes}) it", copy_last_layer, fc, conv)
        size = f"(K={classes} classes, C={channels} channels)"
        if tuple(conv.weight.shape) != (classes, channels, 1, 1):
            raise _fail(exercise, f"{size}: expected conv.weight of shape {(classes, channels, 1, 1)}, got {tuple(conv.weight.shape)}")
        if not torch.equal(conv.weight.detach().flatten(1), fc_before[0]):
            raise _fail(exercise, f"{size}: conv.weight differs from fc.weight by up to "
                                  f"{(conv.weight.detach().flatten(1) - fc_before[0]).abs().max().item():.3g}")
        if conv.bias is None or not torch.equal(conv.bias.detach(), fc_before[1]):
            got = "None" if conv.bias is None else f"{conv.bias.detach()[:3].tolist()}..."
            raise _fail(exercise, f"{size}: expected conv.bias == fc.bias = {fc_before[1][:3].tolist()}..., got {got} "
                                  "(the bias was not copied: every class score would be off by a constant)")
        if not (torch.equal(fc.weight.detach(), fc_before[0]) and torch.equal(fc.bias.detach(), fc_before[1])):
            raise _fail(exercise, "fc was changed: copy from fc into conv, not the other way round")
        if conv.weight.data_ptr() == fc.weight.data_ptr() or conv.bias.data_ptr() == fc.bias.data_ptr():
            raise _fail(exercise, "conv shares memory with fc, so training one would change the other: "
                                  "copy the values with .copy_() inside torch.no_grad()")
        features = torch.randn(2, channels, 3, 5)
        with torch.no_grad():
            expected = fc(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            if not torch.allclose(conv(features), expected, atol=1e-5):
                raise _fail(exercise, f"{size}: conv(features) differs from fc applied at each position")
    _passed(exercise, "weight and bias copied, for two layer sizes; conv == fc at every position.")


# --------------------------------------------------------------------------- notebook 5


def check_bilinear_kernel(bilinear_kernel_2d: Callable[[int], torch.Tensor]) -> None:
    """bilinear_kernel_2d(factor) -> (2f, 2f) kernel; a stride-f transposed conv with it is bilinear."""
    exercise = "bilinear_kernel_2d"
    from .models import bilinear_kernel  # the reference (channels, channels, 2f, 2f)

    for factor in (2, 4, 8):
        expected = bilinear_kernel(1, factor)[0, 0]
        got = _run(exercise, f"for factor {factor} it", bilinear_kernel_2d, factor)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise _fail(exercise, f"for factor {factor} expected a kernel of shape {tuple(expected.shape)}, got {shape}")
        if not torch.allclose(got.float(), expected, atol=1e-6):
            hint, total = "", got.float().sum()
            if total != 0 and torch.allclose(got.float() * expected.sum() / total, expected, atol=1e-6):
                hint = f" (right shape, wrong scale: the kernel should sum to factor**2 = {factor * factor}, so that a constant stays constant)"
            elif torch.allclose(total, expected.sum(), atol=1e-4):
                hint = " (the sum is right: check where the centre is, factor - 0.5 for an even size)"
            raise _fail(exercise, f"for factor {factor}, first row expected {[round(v, 4) for v in expected[0].tolist()]}, "
                                  f"got {[round(v, 4) for v in got.float()[0].tolist()]}{hint}")
    _passed(exercise, "right kernels for factors 2, 4 and 8.")
