"""Notebook 2: check_backbone, the learner's VGG11-BN backbone compared layer by layer with VGG11Backbone.

One idea, so one module: layers are matched by the order forward *uses* them (hooks on every
Conv2d and BatchNorm2d), each mistake in that sequence gets its own message, then the reference's
weights are loaded into the learner's layers in that order and the outputs compared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..i18n import tr
from ..models import VGG11_LAYOUT, VGG11Backbone, count_parameters
from ._common import _describe, _Exercise, _first_match, _join, _ordinal, _self_check, _shape


def _vgg_layers(width: int) -> list[tuple[int, bool]]:
    """(out_channels, followed by a pool) for each of the 8 conv layers of VGG11Backbone(width)."""
    layers: list[tuple[int, bool]] = []
    for item in VGG11_LAYOUT:
        if item == "M":
            layers[-1] = (layers[-1][0], True)
        else:
            layers.append((item * width // 64, False))
    return layers


@contextlib.contextmanager
def _recording_layers(model: nn.Module) -> Iterator[list[dict]]:
    """Record each call of an nn.Conv2d or nn.BatchNorm2d of `model`, in the order forward makes them.

    Each record: {"module", "input" (H, W), "output" (H, W) or None while (or if) it has not returned}.
    """
    calls: list[dict] = []

    def before(module, inputs):
        size = tuple(inputs[0].shape[-2:]) if inputs and isinstance(inputs[0], torch.Tensor) else None
        calls.append({"module": module, "input": size, "output": None})

    def after(module, inputs, output):
        for call in reversed(calls):
            if call["module"] is module and call["output"] is None:
                call["output"] = tuple(output.shape[-2:]) if isinstance(output, torch.Tensor) else None
                break

    handles = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _unregistered_layers(model: nn.Module) -> list[str]:
    """Attributes that are plain lists, tuples or dicts of layers PyTorch does not know about."""
    registered = set(model.modules())

    def layers_in(value) -> Iterator[nn.Module]:
        if isinstance(value, nn.Module):
            yield value
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from layers_in(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from layers_in(item)

    found = []
    for module in model.modules():
        for name, value in vars(module).items():
            if isinstance(value, (list, tuple, dict)) and any(m not in registered for m in layers_in(value)):
                found.append(tr("self.{name} (a {type})", name=name, type=type(value).__name__))
    return found


def _build_backbone(exercise: _Exercise, make_backbone: Callable, width: int) -> nn.Module:
    __tracebackhide__ = True
    model = exercise.run(tr("building it with width={width}", width=width), make_backbone, width)
    if not isinstance(model, nn.Module):
        if model is None:
            raise exercise.error(tr("make_backbone({width}) returned None: did you forget `return`?", width=width))
        raise exercise.error(
            tr("make_backbone({width}) should give an nn.Module, got {got}", width=width, got=_describe(model))
        )
    if any(isinstance(module, VGG11Backbone) for module in model.modules()):
        raise exercise.error(
            tr(
                "that is the course's VGG11Backbone: build the layers yourself "
                "(nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)"
            )
        )
    hidden = _unregistered_layers(model)
    if hidden:
        raise exercise.error(
            tr(
                "the layers in {attributes} are invisible to PyTorch: a plain Python list or "
                "dict does not register them, so their parameters are not in model.parameters() "
                "(never trained, never moved to the GPU, not saved): use nn.ModuleList or "
                "nn.Sequential (or nn.ModuleDict)",
                attributes=_join(hidden),
            )
        )
    return model


def _count_hint(difference: int, per_channel: int, has_batchnorm: bool) -> str | None:
    """Name the mistake behind a parameter count `difference` (got - expected), if it is a known one."""
    if difference == -per_channel:
        return tr(
            "the convolutions have no bias (one number short per output channel): VGG11-BN keeps "
            "nn.Conv2d's default bias=True, so that torchvision's weights fit"
        )
    if difference == -2 * per_channel:
        if has_batchnorm:
            return tr("the BatchNorm layers have no weight and bias (affine=False): keep the default affine=True")
        return tr(
            "no BatchNorm (two numbers, weight and bias, short per channel): add nn.BatchNorm2d(C) after "
            "each convolution"
        )
    if difference == -3 * per_channel:
        return tr("no BatchNorm, and convolutions without bias: each layer is Conv2d(bias=True) -> BatchNorm2d -> ReLU")
    return None


def _check_parameter_count(exercise: _Exercise, model: nn.Module, width: int) -> str | None:
    """Raise for a count that names its mistake; return the general message for any other wrong count."""
    __tracebackhide__ = True
    expected, got = count_parameters(VGG11Backbone(width)), count_parameters(model)
    if got == expected:
        return None
    per_channel = sum(channels for channels, _ in _vgg_layers(width))
    has_batchnorm = any(isinstance(module, nn.BatchNorm2d) for module in model.modules())
    counts = {"expected": expected, "width": width, "got": got, "difference": got - expected}
    hint = _count_hint(got - expected, per_channel, has_batchnorm)
    if hint:
        raise exercise.error(
            tr(
                "expected {expected:,} parameters at width {width}, got {got:,} (difference {difference:+,}): {hint}",
                hint=hint,
                **counts,
            )
        )
    return tr(
        "expected {expected:,} parameters at width {width}, got {got:,} (difference {difference:+,}): a conv3x3 "
        "from C_in to C_out has 9*C_in*C_out + C_out parameters, a BatchNorm over C channels 2*C: compare your "
        "layers with the table above",
        **counts,
    )


def _layers_used(calls: list[dict], kind: type) -> list[dict]:
    return [call for call in calls if isinstance(call["module"], kind)]


def _check_convolutions(exercise: _Exercise, mine: list[dict], reference: list[dict], width: int) -> None:
    """Compare the convolutions forward used so far with the reference's, one by one."""
    __tracebackhide__ = True
    channels = ", ".join(str(c) for c, _ in _vgg_layers(width))
    pools = ", ".join(str(i + 1) for i, (_, pool) in enumerate(_vgg_layers(width)) if pool)
    seen = set()
    for index, (call, ref) in enumerate(zip(mine, reference)):
        conv, ref_conv = call["module"], ref["module"]
        which = tr("the {ordinal} convolution used in forward", ordinal=_ordinal(index))
        if conv in seen:
            raise exercise.error(tr("{layer} was already used before: each layer needs its own nn.Conv2d", layer=which))
        seen.add(conv)
        if conv.weight.shape != ref_conv.weight.shape:
            hint = (
                tr("3x3 kernels")
                if conv.weight.shape[-2:] != ref_conv.weight.shape[-2:]
                else tr(
                    "at width {width} the layers have {channels} output channels, from 3 input channels",
                    width=width,
                    channels=channels,
                )
            )
            raise exercise.error(
                tr(
                    "{layer} has weight shape {shape} (C_out, C_in, kh, kw), expected {expected} ({hint})",
                    layer=which,
                    shape=_shape(conv.weight.shape),
                    expected=_shape(ref_conv.weight.shape),
                    hint=hint,
                )
            )
        if conv.bias is None:
            raise exercise.error(tr("{layer} has no bias: VGG11-BN keeps nn.Conv2d's default bias=True", layer=which))
        if call["output"] is not None and call["output"] != call["input"]:
            raise exercise.error(
                tr(
                    "{layer} turns {height}x{width} maps into {out_height}x{out_width}: convolutions without "
                    "padding shrink the map; use padding=1 so that a 3x3 convolution keeps the size",
                    layer=which,
                    height=call["input"][0],
                    width=call["input"][1],
                    out_height=call["output"][0],
                    out_width=call["output"][1],
                )
            )
        if call["input"] != ref["input"]:
            (h, w), (ref_h, ref_w) = call["input"], ref["input"]
            mistake = (
                tr("a pool is missing or comes too late") if h > ref_h else tr("a pool too many, or one too early")
            )
            raise exercise.error(
                tr(
                    "{layer} sees {height}x{width} maps, expected {expected_height}x{expected_width}: {mistake} "
                    "(VGG11 max-pools 2x2 after layers {pooled_layers} only)",
                    layer=which,
                    height=h,
                    width=w,
                    expected_height=ref_h,
                    expected_width=ref_w,
                    mistake=mistake,
                    pooled_layers=pools,
                )
            )


def _check_batchnorms(exercise: _Exercise, mine: list[dict], reference: list[dict]) -> None:
    __tracebackhide__ = True
    seen = set()
    for index, (call, ref) in enumerate(zip(mine, reference)):
        norm, which = call["module"], tr("the {ordinal} BatchNorm used in forward", ordinal=_ordinal(index))
        if norm in seen:
            raise exercise.error(
                tr("{layer} was already used before: each layer needs its own nn.BatchNorm2d", layer=which)
            )
        seen.add(norm)
        if norm.num_features != ref["module"].num_features or norm.weight is None or norm.running_mean is None:
            raise exercise.error(
                tr(
                    "{layer} is {got}, expected {expected} (with its default affine weight and running statistics)",
                    layer=which,
                    got=norm,
                    expected=ref["module"],
                )
            )


def _check_all_used(
    exercise: _Exercise, model: nn.Module, kind: type, name: str, mine: list[dict], theirs: list[dict]
) -> None:
    """After a whole forward pass: as many layers of this kind as the reference, and none left unused.

    `name`: the kind of layer, for the messages ("convolution", in the course's language, or "BatchNorm").
    """
    __tracebackhide__ = True
    used = {id(call["module"]) for call in mine}
    unused = sum(isinstance(module, kind) and id(module) not in used for module in model.modules())
    if unused == 1:
        never = tr("{count} of your {kind} layers is never used in forward", count=unused, kind=name)
    else:
        never = tr("{count} of your {kind} layers are never used in forward", count=unused, kind=name)
    if len(mine) != len(theirs):
        hint = never if unused else (tr("no BatchNorm: each layer is conv -> BatchNorm -> ReLU") if not mine else None)
        counts = {"count": len(mine), "kind": name, "expected": len(theirs)}
        if hint:
            raise exercise.error(
                tr("forward uses {count} {kind} layers, expected {expected} ({hint})", hint=hint, **counts)
            )
        raise exercise.error(tr("forward uses {count} {kind} layers, expected {expected}", **counts))
    if unused:
        raise exercise.error(
            tr(
                "{never_used}: create only the layers forward uses, as their parameters are counted (and saved) "
                "all the same",
                never_used=never,
            )
        )


def _check_layers_used(
    exercise: _Exercise, model: nn.Module, calls: list[dict], reference: list[dict], width: int, complete: bool
) -> tuple[list[nn.Module], list[nn.Module]]:
    """Check the convolutions and BatchNorms forward used (all of them if `complete`): return them in order."""
    __tracebackhide__ = True
    convs, reference_convs = _layers_used(calls, nn.Conv2d), _layers_used(reference, nn.Conv2d)
    norms, reference_norms = _layers_used(calls, nn.BatchNorm2d), _layers_used(reference, nn.BatchNorm2d)
    _check_convolutions(exercise, convs, reference_convs, width)
    _check_batchnorms(exercise, norms, reference_norms)
    if complete:
        _check_all_used(exercise, model, nn.Conv2d, tr("convolution"), convs, reference_convs)
        _check_all_used(exercise, model, nn.BatchNorm2d, "BatchNorm", norms, reference_norms)
    return [call["module"] for call in convs], [call["module"] for call in norms]


def _reference_backbone(width: int) -> nn.Module:
    """VGG11Backbone(width) with random BatchNorm weights and running statistics, in eval mode."""
    torch.manual_seed(0)
    reference = VGG11Backbone(width)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, (low, high) in (
                    (module.weight, (0.5, 1.5)),
                    (module.bias, (-0.2, 0.2)),
                    (module.running_mean, (-0.5, 0.5)),
                    (module.running_var, (0.5, 2.0)),
                ):
                    tensor.uniform_(low, high, generator=generator)
    return reference.eval()


def _record_forward(model: nn.Module, x: torch.Tensor) -> tuple[list[dict], torch.Tensor | Exception]:
    """Run model(x) in eval mode, recording its layers: (calls, output or the error it raised)."""
    with _recording_layers(model) as calls, torch.no_grad():
        try:
            output = model.eval()(x)
        except Exception as error:  # NotImplementedError included: the caller reports it
            output = error
    return calls, output


def _load_in_order(exercise: _Exercise, sources: list[nn.Module], targets: list[nn.Module], what: str) -> None:
    """Copy each reference layer's tensors into the learner's layer used at the same place in forward.

    `what`: the kind of layer, for the messages ("convolution", in the course's language, or "BatchNorm").
    """
    __tracebackhide__ = True
    names = ("weight", "bias", "running_mean", "running_var")
    with torch.no_grad():
        for index, (source, target) in enumerate(zip(sources, targets)):
            for name in names:
                if getattr(source, name, None) is None:
                    continue
                mine = getattr(target, name, None)
                if mine is None or mine.shape != getattr(source, name).shape:
                    fields = {
                        "ordinal": _ordinal(index),
                        "kind": what,
                        "tensor": name,
                        "expected": _shape(getattr(source, name).shape),
                    }
                    if mine is None:
                        raise exercise.error(
                            tr(
                                "the {ordinal} {kind} used in forward has {tensor} none, expected shape {expected}",
                                **fields,
                            )
                        )
                    raise exercise.error(
                        tr(
                            "the {ordinal} {kind} used in forward has {tensor} shape {shape}, expected shape "
                            "{expected}",
                            shape=_shape(mine.shape),
                            **fields,
                        )
                    )
                mine.copy_(getattr(source, name))


def _vgg_forward(
    x: torch.Tensor,
    convs: list[nn.Module],
    norms: list[nn.Module],
    width: int,
    order: tuple[str, ...] = ("conv", "bn", "relu"),
    pool: Callable = F.max_pool2d,
) -> torch.Tensor:
    """The backbone's forward from its layers, with another layer order or pooling for the variants."""
    for conv, norm, (_, pooled) in zip(convs, norms, _vgg_layers(width)):
        for step in order:
            x = {"conv": conv, "bn": norm, "relu": F.relu}[step](x)
        if pooled:
            x = pool(x, 2)
    return x


def _backbone_variants(x, convs, norms, width) -> list[tuple[torch.Tensor, str]]:
    """(output, hint) of typical wrong backbones with the reference's weights."""
    with torch.no_grad():
        return [
            (
                _vgg_forward(x, convs, norms, width, order=("conv", "relu", "bn")),
                tr("ReLU comes before BatchNorm: each layer is conv -> BatchNorm -> ReLU"),
            ),
            (
                _vgg_forward(x, convs, norms, width, pool=F.avg_pool2d),
                tr("the pools average: VGG uses max pooling, nn.MaxPool2d(2)"),
            ),
            (
                _vgg_forward(x, convs, norms, width, order=("conv", "bn")),
                tr("there is no ReLU: each layer is conv -> BatchNorm -> ReLU"),
            ),
        ]


def _stride_hint(expected: tuple) -> Callable[[tuple], str]:
    def hint(shape: tuple) -> str:
        if shape[:2] == expected[:2] and shape[2:] == (expected[2] // 2, expected[3] // 2):
            return tr(
                "output stride 32: there is a fifth pool (pool5) after the last layer; the backbone stops at stride 16"
            )
        return tr("four 2x2 max pools: stride 16, no pool after the last layer")

    return hint


def _check_width_is_used(exercise: _Exercise, make_backbone: Callable, full: nn.Module, width: int) -> nn.Module:
    """make_backbone(width), which must not have as many parameters as the full-width network."""
    __tracebackhide__ = True
    small = _build_backbone(exercise, make_backbone, width)
    count = count_parameters(small)
    if count == count_parameters(full) != count_parameters(VGG11Backbone(width)):
        raise exercise.error(
            tr(
                "make_backbone({width}) has {count:,} parameters, as many as make_backbone(64): "
                "width is not used; every layer's channels scale with it (width, 2*width, 4*width, "
                "8*width)",
                width=width,
                count=count,
            )
        )
    return small


def _compare_backbone_outputs(
    exercise: _Exercise,
    case: str,
    model: nn.Module,
    x: torch.Tensor,
    expected: torch.Tensor,
    convs: list[nn.Module],
    norms: list[nn.Module],
    width: int,
) -> None:
    """model(x) in eval mode must equal the reference's output, else name the variant it matches."""
    __tracebackhide__ = True
    with torch.no_grad():
        got = exercise.run(case, model.eval(), x.clone())
    got = exercise.expect_tensor(case, got, expected.shape, shape_hint=_stride_hint(tuple(expected.shape)))
    if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        hint = _first_match(got, _backbone_variants(x, convs, norms, width), atol=1e-4)
        raise exercise.error(
            tr(
                "{case}, same weights and statistics as the reference, different outputs (max "
                "difference {difference:.3g}): {hint}",
                case=case,
                difference=(got - expected).abs().max().item(),
                hint=hint or tr("check the order conv -> BatchNorm -> ReLU in every layer, and the pools"),
            )
        )


@_self_check
def check_backbone(make_backbone: Callable[[int], nn.Module]) -> None:
    """make_backbone(width) -> a VGG11-BN backbone; compared layer by layer with VGG11Backbone.

    Layers are matched by the order forward *uses* them (hooks on every Conv2d and BatchNorm2d),
    so any structure passes: one nn.Sequential, named attributes in any order, ModuleLists. The
    reference's weights and BatchNorm statistics are copied into the learner's layers in that
    order, then both run in eval mode on a non-square batch.
    """
    __tracebackhide__ = True
    exercise = _Exercise(tr("VGG11 backbone"))
    model = _build_backbone(exercise, make_backbone, 64)
    wrong_count = _check_parameter_count(exercise, model, 64)
    width = 8
    small = _check_width_is_used(exercise, make_backbone, model, width)

    reference = _reference_backbone(width)
    x = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(0))
    reference_calls, expected = _record_forward(reference, x)
    case = tr("for a {shape} batch", shape="(2, 3, 96, 64)")
    calls, output = _record_forward(small, x.clone())
    if isinstance(output, Exception):
        _check_layers_used(exercise, small, calls, reference_calls, width, complete=False)
        raise exercise.crash(case, output) from None
    convs, norms = _check_layers_used(exercise, small, calls, reference_calls, width, complete=True)
    if wrong_count:
        raise exercise.error(wrong_count)

    reference_convs = [call["module"] for call in _layers_used(reference_calls, nn.Conv2d)]
    reference_norms = [call["module"] for call in _layers_used(reference_calls, nn.BatchNorm2d)]
    _load_in_order(exercise, reference_convs, convs, tr("convolution"))
    _load_in_order(exercise, reference_norms, norms, "BatchNorm")
    _compare_backbone_outputs(exercise, case, small, x, expected, reference_convs, reference_norms, width)
    exercise.passed(
        tr("{count:,} parameters, same layers and outputs as the reference.", count=count_parameters(model))
    )
