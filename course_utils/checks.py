"""Self-checks for the notebooks' exercises.

Each `check_*` function runs the learner's code on several cases and compares what it *does*
with the reference implementation, never how it is written: every correct formulation passes.
It either prints one line starting with "✓", or raises `SelfCheckError` whose message names the
exercise, the case, what was expected, what came back, and a hint naming the likely mistake.

Errors raised *inside* the learner's code are reported the same way ("... raised IndexError:
...", chained `from None`), so a learner never reads a traceback from inside this package.

Tracebacks. IPython (8 and later) leaves out of a traceback every frame whose locals hold
`__tracebackhide__ = True`, but always shows the innermost frame, the one that raised, even when
it is marked (`ultratb.VerboseTB.format_exception_as_a_whole`: `i != lastrecord`). So:

* every function here that raises a `SelfCheckError`, or calls one that does, sets
  `__tracebackhide__ = True` (pytest honours it too, and IPython's debugger);
* `SelfCheckError._render_traceback_`, IPython's hook for an exception's own traceback, formats
  the traceback without those frames, the raising one included. In Jupyter the learner sees
  their own cell's line and then `SelfCheckError: <message>`, nothing from `course_utils`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import types
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import IGNORE_INDEX, bounding_box
from .models import VGG11_LAYOUT, VGG11Backbone, bilinear_kernel, bilinear_upsampler, count_parameters, match_size

NOT_WRITTEN = "not written yet: replace `raise NotImplementedError` with your code."


# =========================================================================== errors and tracebacks


class SelfCheckError(AssertionError):
    """The learner's answer is wrong; the message says how."""

    def _render_traceback_(self) -> list[str]:
        """The traceback IPython shows: the learner's frames only (see the module docstring)."""
        try:
            from IPython import get_ipython

            visible = _without_hidden_frames(self.__traceback__)
            return get_ipython().InteractiveTB.structured_traceback(type(self), self, visible, tb_offset=0)
        except Exception:  # never let the formatting hide the message itself
            return [f"{type(self).__name__}: {self}"]


def _without_hidden_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """A copy of the traceback chain without the frames that set `__tracebackhide__`."""
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_locals.get("__tracebackhide__"):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


# =========================================================================== shared helpers


def _ordinal(index: int) -> str:
    """0 -> '1st', 1 -> '2nd', 10 -> '11th'."""
    number = index + 1
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _shape(shape) -> str:
    return str(tuple(shape))


def _describe(value) -> str:
    """What came back, for a message: its type and its shape or value."""
    if value is None:
        return "None"
    kind = type(value)
    if isinstance(value, torch.Tensor):
        return f"a torch.Tensor of shape {_shape(value.shape)}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a NumPy (or other) array
        return f"a {kind.__module__.split('.')[0]}.{kind.__name__} of shape {_shape(value.shape)}"
    if isinstance(value, nn.Module):
        return f"an nn.Module ({kind.__name__})"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    article = "an" if kind.__name__[0] in "aeiou" else "a"
    if isinstance(value, (list, tuple, dict)):
        return f"{article} {kind.__name__} of {len(value)} items {text}"
    return f"{article} {kind.__name__} {text}"


def _make_a_tensor_hint(value) -> str:
    """How to turn what came back into a tensor."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return "use torch operations (or torch.as_tensor)"
    if isinstance(value, (list, tuple)):
        return "build a tensor, e.g. torch.tensor([...]) or torch.stack([...])"
    return "return a torch.Tensor"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


class _Exercise:
    """One exercise's name, and the helpers every check uses to run and judge the learner's code."""

    def __init__(self, name: str):
        self.name = name

    def error(self, message: str) -> SelfCheckError:
        return SelfCheckError(f"{self.name}: {message}")

    def passed(self, detail: str) -> None:
        print(f"✓ {self.name}: {detail}")

    def crash(self, case: str, error: Exception, hint: str | None = None) -> SelfCheckError:
        """The error to raise when the learner's code raised `error` for `case`."""
        if isinstance(error, NotImplementedError):
            return self.error(NOT_WRITTEN)
        return self.error(f"{case}, your code raised {type(error).__name__}: {_first_line(error)}"
                          + (f" ({hint})" if hint else ""))

    def run(self, case: str, function: Callable, *args, explain: Callable[[Exception], str | None] | None = None):
        """function(*args), with any error it raises turned into a SelfCheckError about `case`.

        explain(error) may return a hint naming the mistake behind that error. The SelfCheckError
        is raised after the `except` block, `from None`: the learner's traceback is not chained.
        """
        __tracebackhide__ = True
        try:
            return function(*args)
        except Exception as error:  # the learner's code crashed: say where, not how deep
            crash = error
        hint = None if isinstance(crash, NotImplementedError) or explain is None else explain(crash)
        raise self.crash(case, crash, hint) from None

    def expect_tensor(self, case: str, got, shape, *, why: str = "",
                      shape_hint: Callable[[tuple], str | None] | None = None) -> torch.Tensor:
        """Raise unless `got` is a torch.Tensor of `shape`; shape_hint(wrong shape) may name a mistake."""
        __tracebackhide__ = True
        shape = tuple(shape)
        if got is None:
            raise self.error(f"{case}, your function returned None: did you forget `return`?")
        if not isinstance(got, torch.Tensor):
            raise self.error(f"{case}, expected a torch.Tensor of shape {_shape(shape)}, got {_describe(got)}: "
                             f"{_make_a_tensor_hint(got)}{why}")
        if tuple(got.shape) != shape:
            hint = shape_hint(tuple(got.shape)) if shape_hint else None
            raise self.error(f"{case}, expected a torch.Tensor of shape {_shape(shape)}, got shape "
                             f"{_shape(got.shape)}" + (f": {hint}" if hint else ""))
        return got

    def expect_gradients(self, case: str, output: torch.Tensor, upstream: torch.Tensor,
                         inputs: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], consequence: str) -> None:
        """Raise unless the gradients of (output * upstream).sum() reach `inputs` and equal `expected`."""
        __tracebackhide__ = True
        got = _gradients(output, upstream, list(inputs.values()))
        if isinstance(got, Exception):
            raise self.error(f"{case}, backpropagating through your result raised {type(got).__name__}: "
                             f"{_first_line(got)}")
        missing = [name for name, grad in zip(inputs, got) if grad is None]
        if missing:
            raise self.error(f"{case}, no gradient reaches {_join(missing)}: the result was computed under "
                             f"torch.no_grad(), or from .detach() or .data, so {consequence}")
        for name, grad in zip(inputs, got):
            if not torch.allclose(grad, expected[name], rtol=1e-4, atol=1e-5):
                raise self.error(f"{case}, the gradient reaching {name} differs from the reference's by up to "
                                 f"{(grad - expected[name]).abs().max().item():.3g}")


def _gradients(output: torch.Tensor, upstream: torch.Tensor, inputs: list[torch.Tensor]):
    """d(output * upstream).sum() / d(input) for each input (None where none reaches it), or the error."""
    if not output.requires_grad:
        return [None] * len(inputs)
    try:
        return torch.autograd.grad(output, inputs, upstream, allow_unused=True)
    except Exception as error:  # e.g. an in-place change that autograd refuses
        return error


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _first_match(got: torch.Tensor, candidates, atol: float = 1e-5) -> str | None:
    """The hint of the first (tensor, hint) candidate that `got` equals, if any."""
    for tensor, hint in candidates:
        if tensor.shape == got.shape and torch.allclose(got.double(), tensor.double(), rtol=1e-4, atol=atol):
            return hint
    return None


def _self_check(check: Callable) -> Callable:
    """Decorate a check_* function: it leaves the learner's random number generator as it was.

    (The checks seed their own test data; the notebook's next cells must not notice.)
    """
    @functools.wraps(check)
    def run_check(*args, **kwargs):
        __tracebackhide__ = True
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)
    return run_check


# =========================================================================== notebook 1: mask_to_box


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
    mask[8:22, 8:22][mask[8:22, 8:22] == 0] = IGNORE_INDEX  # an ignore band around the object
    cases.append(("an object with a band of ignored (255) pixels around it", mask))
    mask = torch.zeros(30, 30, dtype=torch.long)
    mask[3, 25] = mask[27, 2] = 6
    cases.append(("two separate pixels of the same object (row 3, column 25 and row 27, column 2)", mask))
    return cases


def _box_of(pixels: torch.Tensor) -> list[int]:
    rows, cols = torch.where(pixels)
    return [cols.min().item(), rows.min().item(), cols.max().item(), rows.max().item()]


def _box_mistakes(mask: torch.Tensor, expected: list[int]) -> list[tuple[list[int], str]]:
    """(box, hint) for each typical wrong answer on this mask."""
    x0, y0, x1, y1 = expected
    objects = (mask != 0) & (mask != IGNORE_INDEX)
    (first_y, first_x), (last_y, last_x) = objects.nonzero()[[0, -1]].tolist()
    size = "that is (x, y, width, height): the box is given by its corners [x_min, y_min, x_max, y_max]"
    return [
        ([y0, x0, y1, x1], "x and y are swapped: x is the column index, y the row index"),
        ([x0, y0, x1 + 1, y1 + 1], "x_max and y_max are one too large: the box is inclusive (the last object "
                                   "pixel), like torchvision's masks_to_boxes"),
        ([x0, x1, y0, y1], "the order is [x_min, x_max, y_min, y_max]: the box is [x_min, y_min, x_max, y_max]"),
        ([x0, y0, x1 - x0 + 1, y1 - y0 + 1], size),
        ([x0, y0, x1 - x0, y1 - y0], size),
        ([first_x, first_y, last_x, last_y], "x_min > x_max: that is the first and the last object pixel (in "
                                             "reading order), not the smallest and largest column and row: use "
                                             "min() and max()"),
        (_box_of(mask != 0), "pixels marked 255 are 'ignore', not part of the object: leave them out, e.g. "
                             "(mask != 0) & (mask != 255)"),
    ]


def _box_shape_hint(shape: tuple) -> str | None:
    if shape in ((1, 4), (4, 1)):
        return "one box of 4 numbers, shape (4,): drop the extra dimension (e.g. .flatten())"
    return "one box of 4 numbers [x_min, y_min, x_max, y_max]"


@_self_check
def check_mask_to_box(mask_to_box: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """mask_to_box(mask (H, W)) -> [x_min, y_min, x_max, y_max] of the object pixels, inclusive."""
    __tracebackhide__ = True
    exercise = _Exercise("mask_to_box")
    cases = _box_cases()
    for description, mask in cases:
        case = f"for {description}"
        given = mask.clone()
        got = exercise.run(case, mask_to_box, given)
        got = exercise.expect_tensor(case, got, (4,), shape_hint=_box_shape_hint, why=(
            ": the next cell passes the box to draw_box, which needs a tensor (it calls box.reshape(1, 4))"))
        if not torch.equal(given, mask):
            raise exercise.error(f"{case}, your function changed the mask it was given (the notebook uses that "
                                 "mask again): leave it as it is, e.g. build objects = (mask != 0) & (mask != 255)")
        expected = bounding_box(mask).long().tolist()
        if not torch.equal(got.double(), torch.tensor(expected, dtype=torch.double)):
            shown = [int(v) if float(v).is_integer() else round(v, 3) for v in got.double().tolist()]
            hint = next((hint for box, hint in _box_mistakes(mask, expected) if box == shown), None)
            raise exercise.error(f"{case}, expected {expected}, got {shown}" + (f" ({hint})" if hint else ""))
    exercise.passed(f"all {len(cases)} test masks give the right box.")


# =========================================================================== notebook 2: the backbone


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
                found.append(f"self.{name} (a {type(value).__name__})")
    return found


def _build_backbone(exercise: _Exercise, make_backbone: Callable, width: int) -> nn.Module:
    __tracebackhide__ = True
    model = exercise.run(f"building it with width={width}", make_backbone, width)
    if not isinstance(model, nn.Module):
        if model is None:
            raise exercise.error(f"make_backbone({width}) returned None: did you forget `return`?")
        raise exercise.error(f"make_backbone({width}) should give an nn.Module, got {_describe(model)}")
    if any(isinstance(module, VGG11Backbone) for module in model.modules()):
        raise exercise.error("that is the course's VGG11Backbone: build the layers yourself "
                             "(nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)")
    hidden = _unregistered_layers(model)
    if hidden:
        raise exercise.error(f"the layers in {_join(hidden)} are invisible to PyTorch: a plain Python list or "
                             "dict does not register them, so their parameters are not in model.parameters() "
                             "(never trained, never moved to the GPU, not saved): use nn.ModuleList or "
                             "nn.Sequential (or nn.ModuleDict)")
    return model


def _count_hint(difference: int, per_channel: int, has_batchnorm: bool) -> str | None:
    """Name the mistake behind a parameter count `difference` (got - expected), if it is a known one."""
    if difference == -per_channel:
        return ("the convolutions have no bias (one number short per output channel): VGG11-BN keeps "
                "nn.Conv2d's default bias=True, so that torchvision's weights fit")
    if difference == -2 * per_channel:
        if has_batchnorm:
            return "the BatchNorm layers have no weight and bias (affine=False): keep the default affine=True"
        return ("no BatchNorm (two numbers, weight and bias, short per channel): add nn.BatchNorm2d(C) after "
                "each convolution")
    if difference == -3 * per_channel:
        return "no BatchNorm, and convolutions without bias: each layer is Conv2d(bias=True) -> BatchNorm2d -> ReLU"
    return None


def _check_parameter_count(exercise: _Exercise, model: nn.Module, width: int) -> str | None:
    """Raise for a count that names its mistake; return the general message for any other wrong count."""
    __tracebackhide__ = True
    expected, got = count_parameters(VGG11Backbone(width)), count_parameters(model)
    if got == expected:
        return None
    per_channel = sum(channels for channels, _ in _vgg_layers(width))
    has_batchnorm = any(isinstance(module, nn.BatchNorm2d) for module in model.modules())
    message = (f"expected {expected:,} parameters at width {width}, got {got:,} (difference {got - expected:+,})")
    hint = _count_hint(got - expected, per_channel, has_batchnorm)
    if hint:
        raise exercise.error(f"{message}: {hint}")
    return (f"{message}: a conv3x3 from C_in to C_out has 9*C_in*C_out + C_out parameters, a BatchNorm over C "
            "channels 2*C: compare your layers with the table above")


def _layers_used(calls: list[dict], kind: type) -> list[dict]:
    return [call for call in calls if isinstance(call["module"], kind)]


def _check_convolutions(exercise: _Exercise, mine: list[dict], reference: list[dict], width: int) -> None:
    """Compare the convolutions forward used so far with the reference's, one by one."""
    __tracebackhide__ = True
    channels = ", ".join(str(c) for c, _ in _vgg_layers(width))
    pools = ", ".join(str(i + 1) for i, (_, pool) in enumerate(_vgg_layers(width)) if pool)
    seen = set()
    for index, (call, ref) in enumerate(zip(mine, reference)):
        conv, ref_conv, which = call["module"], ref["module"], f"the {_ordinal(index)} convolution used in forward"
        if conv in seen:
            raise exercise.error(f"{which} was already used before: each layer needs its own nn.Conv2d")
        seen.add(conv)
        if conv.weight.shape != ref_conv.weight.shape:
            hint = ("3x3 kernels" if conv.weight.shape[-2:] != ref_conv.weight.shape[-2:]
                    else f"at width {width} the layers have {channels} output channels, from 3 input channels")
            raise exercise.error(f"{which} has weight shape {_shape(conv.weight.shape)} (C_out, C_in, kh, kw), "
                                 f"expected {_shape(ref_conv.weight.shape)} ({hint})")
        if conv.bias is None:
            raise exercise.error(f"{which} has no bias: VGG11-BN keeps nn.Conv2d's default bias=True")
        if call["output"] is not None and call["output"] != call["input"]:
            raise exercise.error(f"{which} turns {call['input'][0]}x{call['input'][1]} maps into "
                                 f"{call['output'][0]}x{call['output'][1]}: convolutions without padding shrink "
                                 "the map; use padding=1 so that a 3x3 convolution keeps the size")
        if call["input"] != ref["input"]:
            (h, w), (ref_h, ref_w) = call["input"], ref["input"]
            mistake = "a pool is missing or comes too late" if h > ref_h else "a pool too many, or one too early"
            raise exercise.error(f"{which} sees {h}x{w} maps, expected {ref_h}x{ref_w}: {mistake} (VGG11 "
                                 f"max-pools 2x2 after layers {pools} only)")


def _check_batchnorms(exercise: _Exercise, mine: list[dict], reference: list[dict]) -> None:
    __tracebackhide__ = True
    seen = set()
    for index, (call, ref) in enumerate(zip(mine, reference)):
        norm, which = call["module"], f"the {_ordinal(index)} BatchNorm used in forward"
        if norm in seen:
            raise exercise.error(f"{which} was already used before: each layer needs its own nn.BatchNorm2d")
        seen.add(norm)
        if norm.num_features != ref["module"].num_features or norm.weight is None or norm.running_mean is None:
            raise exercise.error(f"{which} is {norm}, expected {ref['module']} (with its default affine weight "
                                 "and running statistics)")


def _check_all_used(exercise: _Exercise, model: nn.Module, kind: type, name: str, mine: list[dict],
                    theirs: list[dict]) -> None:
    """After a whole forward pass: as many layers of this kind as the reference, and none left unused."""
    __tracebackhide__ = True
    used = {id(call["module"]) for call in mine}
    unused = sum(isinstance(module, kind) and id(module) not in used for module in model.modules())
    never = f"{unused} of your {name} layers {'is' if unused == 1 else 'are'} never used in forward"
    if len(mine) != len(theirs):
        hint = never if unused else ("no BatchNorm: each layer is conv -> BatchNorm -> ReLU" if not mine else None)
        raise exercise.error(f"forward uses {len(mine)} {name} layers, expected {len(theirs)}"
                             + (f" ({hint})" if hint else ""))
    if unused:
        raise exercise.error(f"{never}: create only the layers forward uses, as their parameters are counted "
                             "(and saved) all the same")


def _check_layers_used(exercise: _Exercise, model: nn.Module, calls: list[dict], reference: list[dict],
                       width: int, complete: bool) -> tuple[list[nn.Module], list[nn.Module]]:
    """Check the convolutions and BatchNorms forward used (all of them if `complete`): return them in order."""
    __tracebackhide__ = True
    convs, reference_convs = _layers_used(calls, nn.Conv2d), _layers_used(reference, nn.Conv2d)
    norms, reference_norms = _layers_used(calls, nn.BatchNorm2d), _layers_used(reference, nn.BatchNorm2d)
    _check_convolutions(exercise, convs, reference_convs, width)
    _check_batchnorms(exercise, norms, reference_norms)
    if complete:
        _check_all_used(exercise, model, nn.Conv2d, "convolution", convs, reference_convs)
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
                for tensor, (low, high) in ((module.weight, (0.5, 1.5)), (module.bias, (-0.2, 0.2)),
                                            (module.running_mean, (-0.5, 0.5)), (module.running_var, (0.5, 2.0))):
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
    """Copy each reference layer's tensors into the learner's layer used at the same place in forward."""
    __tracebackhide__ = True
    names = ("weight", "bias", "running_mean", "running_var")
    with torch.no_grad():
        for index, (source, target) in enumerate(zip(sources, targets)):
            for name in names:
                if getattr(source, name, None) is None:
                    continue
                mine = getattr(target, name, None)
                if mine is None or mine.shape != getattr(source, name).shape:
                    got = "none" if mine is None else f"shape {_shape(mine.shape)}"
                    raise exercise.error(f"the {_ordinal(index)} {what} used in forward has {name} {got}, expected "
                                         f"shape {_shape(getattr(source, name).shape)}")
                mine.copy_(getattr(source, name))


def _vgg_forward(x: torch.Tensor, convs: list[nn.Module], norms: list[nn.Module], width: int,
                 order: tuple[str, ...] = ("conv", "bn", "relu"), pool: Callable = F.max_pool2d) -> torch.Tensor:
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
            (_vgg_forward(x, convs, norms, width, order=("conv", "relu", "bn")),
             "ReLU comes before BatchNorm: each layer is conv -> BatchNorm -> ReLU"),
            (_vgg_forward(x, convs, norms, width, pool=F.avg_pool2d),
             "the pools average: VGG uses max pooling, nn.MaxPool2d(2)"),
            (_vgg_forward(x, convs, norms, width, order=("conv", "bn")),
             "there is no ReLU: each layer is conv -> BatchNorm -> ReLU"),
        ]


def _stride_hint(expected: tuple) -> Callable[[tuple], str]:
    def hint(shape: tuple) -> str:
        if shape[:2] == expected[:2] and shape[2:] == (expected[2] // 2, expected[3] // 2):
            return ("output stride 32: there is a fifth pool (pool5) after the last layer; the backbone stops at "
                    "stride 16")
        return "four 2x2 max pools: stride 16, no pool after the last layer"
    return hint


def _check_width_is_used(exercise: _Exercise, make_backbone: Callable, full: nn.Module, width: int) -> nn.Module:
    """make_backbone(width), which must not have as many parameters as the full-width network."""
    __tracebackhide__ = True
    small = _build_backbone(exercise, make_backbone, width)
    count = count_parameters(small)
    if count == count_parameters(full) != count_parameters(VGG11Backbone(width)):
        raise exercise.error(f"make_backbone({width}) has {count:,} parameters, as many as make_backbone(64): "
                             "width is not used; every layer's channels scale with it (width, 2*width, 4*width, "
                             "8*width)")
    return small


def _compare_backbone_outputs(exercise: _Exercise, case: str, model: nn.Module, x: torch.Tensor,
                              expected: torch.Tensor, convs: list[nn.Module], norms: list[nn.Module],
                              width: int) -> None:
    """model(x) in eval mode must equal the reference's output, else name the variant it matches."""
    __tracebackhide__ = True
    with torch.no_grad():
        got = exercise.run(case, model.eval(), x.clone())
    got = exercise.expect_tensor(case, got, expected.shape, shape_hint=_stride_hint(tuple(expected.shape)))
    if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        hint = _first_match(got, _backbone_variants(x, convs, norms, width), atol=1e-4)
        raise exercise.error(f"{case}, same weights and statistics as the reference, different outputs (max "
                             f"difference {(got - expected).abs().max().item():.3g}): "
                             + (hint or "check the order conv -> BatchNorm -> ReLU in every layer, and the pools"))


@_self_check
def check_backbone(make_backbone: Callable[[int], nn.Module]) -> None:
    """make_backbone(width) -> a VGG11-BN backbone; compared layer by layer with VGG11Backbone.

    Layers are matched by the order forward *uses* them (hooks on every Conv2d and BatchNorm2d),
    so any structure passes: one nn.Sequential, named attributes in any order, ModuleLists. The
    reference's weights and BatchNorm statistics are copied into the learner's layers in that
    order, then both run in eval mode on a non-square batch.
    """
    __tracebackhide__ = True
    exercise = _Exercise("VGG11 backbone")
    model = _build_backbone(exercise, make_backbone, 64)
    wrong_count = _check_parameter_count(exercise, model, 64)
    width = 8
    small = _check_width_is_used(exercise, make_backbone, model, width)

    reference = _reference_backbone(width)
    x = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(0))
    reference_calls, expected = _record_forward(reference, x)
    case = "for a (2, 3, 96, 64) batch"
    calls, output = _record_forward(small, x.clone())
    if isinstance(output, Exception):
        _check_layers_used(exercise, small, calls, reference_calls, width, complete=False)
        raise exercise.crash(case, output) from None
    convs, norms = _check_layers_used(exercise, small, calls, reference_calls, width, complete=True)
    if wrong_count:
        raise exercise.error(wrong_count)

    reference_convs = [call["module"] for call in _layers_used(reference_calls, nn.Conv2d)]
    reference_norms = [call["module"] for call in _layers_used(reference_calls, nn.BatchNorm2d)]
    _load_in_order(exercise, reference_convs, convs, "convolution")
    _load_in_order(exercise, reference_norms, norms, "BatchNorm")
    _compare_backbone_outputs(exercise, case, small, x, expected, reference_convs, reference_norms, width)
    exercise.passed(f"{count_parameters(model):,} parameters, same layers and outputs as the reference.")


# =========================================================================== notebook 3: the classifier head

#: Odd-sized maps first (pool5 drops their last row or column), a batch of one first.
_HEAD_SHAPES = [(1, 12, 5, 7), (2, 12, 7, 3), (2, 12, 4, 6)]


def _head_reference(features: torch.Tensor, fc: nn.Linear) -> torch.Tensor:
    return fc(F.max_pool2d(features, 2).mean(dim=(2, 3)))


def _head_mistakes(features: torch.Tensor, fc: nn.Linear, expected: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    """(scores, hint) of typical wrong heads."""
    pooled = F.max_pool2d(features, 2)
    global_max = "that is global *max* pooling: average over height and width instead"
    logits = "return raw scores (logits): cross-entropy applies softmax itself"
    with torch.no_grad():
        return [
            (fc(features.mean(dim=(2, 3))), "pool5 is missing: max-pool 2x2 (F.max_pool2d(x, 2)) before the average"),
            (fc(F.avg_pool2d(features, 2).mean(dim=(2, 3))), "pool5 is an average pool: use max pooling, "
                                                             "F.max_pool2d(x, 2) or nn.MaxPool2d(2)"),
            (fc(F.max_pool2d(features, 2, ceil_mode=True).mean(dim=(2, 3))),
             "pool5 rounds up (ceil_mode=True): nn.MaxPool2d(2) rounds down, dropping the last row or column of an "
             "odd-sized map"),
            (fc(pooled.amax(dim=(2, 3))), global_max),
            (fc(features.amax(dim=(2, 3))), global_max),
            (expected.softmax(dim=1), logits),
            (expected.log_softmax(dim=1), logits),
            (fc(pooled.sum(dim=(2, 3))), "the features are summed, not averaged: use the mean over dims 2 and 3"),
        ]


def _head_error_hint(features: torch.Tensor, fc: nn.Linear) -> Callable[[Exception], str | None]:
    """A hint for fc's shape error: the features were flattened, or not pooled down to C numbers."""
    batch, channels, height, width = features.shape

    def explain(error: Exception) -> str | None:
        text = str(error)
        if "mat1 and mat2" not in text and "shape" not in text:
            return None
        flat = {channels * height * width, channels * (height // 2) * (width // 2)}
        if any(f"{batch}x{n}" in text for n in flat):
            return (f"fc expects C = {channels} numbers per image: global average pooling gives exactly C for any "
                    "map size, while flattening the map gives C*h*w")
        return (f"fc expects (N, C) = ({batch}, {channels}): average over dims 2 and 3 (or flatten(1) after "
                "nn.AdaptiveAvgPool2d(1)) before fc")
    return explain


def _head_shape_hint(batch: int, channels: int, classes: int) -> Callable[[tuple], str | None]:
    def hint(shape: tuple) -> str | None:
        if batch == 1 and shape == (classes,):
            return (".squeeze() dropped the batch dimension for a batch of one image: use .flatten(1), or the mean "
                    "over dims (2, 3), which keeps N")
        if shape == (batch, channels):
            return f"that is the pooled features (C = {channels} per image): apply fc to get the {classes} class scores"
        return None
    return hint


@_self_check
def check_classifier_head(head: Callable[[torch.Tensor, nn.Linear], torch.Tensor]) -> None:
    """head(features (N, C, h, w), fc) -> scores (N, K): pool5, global average pooling, fc.

    Values and gradients (to fc and to the features) are compared with the reference.
    """
    __tracebackhide__ = True
    exercise = _Exercise("classifier head")
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    fc = nn.Linear(12, 5)
    for shape in _HEAD_SHAPES:
        case = f"for features of shape {shape}"
        features = torch.randn(*shape, generator=generator)
        reference_fc, reference_in = copy.deepcopy(fc), features.clone().requires_grad_()
        expected = _head_reference(reference_in, reference_fc)
        upstream = torch.randn(expected.shape, generator=generator)
        expected_grads = dict(zip(("fc.weight", "fc.bias", "the features"), torch.autograd.grad(
            expected, [reference_fc.weight, reference_fc.bias, reference_in], upstream)))

        my_fc, my_in = copy.deepcopy(fc), features.clone().requires_grad_()
        got = exercise.run(case, head, my_in, my_fc, explain=_head_error_hint(features, fc))
        got = exercise.expect_tensor(case, got, expected.shape,
                                     shape_hint=_head_shape_hint(shape[0], shape[1], fc.out_features))
        if not torch.allclose(got.detach().double(), expected.detach().double(), rtol=1e-4, atol=1e-5):
            hint = _first_match(got.detach(), _head_mistakes(features, fc, expected.detach()))
            raise exercise.error(f"{case}, scores differ from pool5 -> GAP -> fc by up to "
                                 f"{(got.detach() - expected.detach()).abs().max().item():.3g}"
                                 + (f" ({hint})" if hint else ""))
        exercise.expect_gradients(case, got, upstream,
                                  {"fc.weight": my_fc.weight, "fc.bias": my_fc.bias, "the features": my_in},
                                  expected_grads, "the backbone and fc could not learn")
    exercise.passed(f"pool5 -> global average pooling -> fc, right for {len(_HEAD_SHAPES)} feature-map sizes.")


# =========================================================================== notebook 4: copy_last_layer

#: (K classes, C channels): not the notebook's 7 and 512, so that hard-coded sizes show.
_COPY_SIZES = [(5, 12), (3, 20)]


def _copy_error_hint(classes: int, channels: int) -> Callable[[Exception], str | None]:
    def explain(error: Exception) -> str | None:
        text = str(error)
        if "leaf Variable that requires grad" in text:
            return ("wrap the copy in `with torch.no_grad():`: autograd does not allow an in-place change of a "
                    "Parameter it tracks")
        if "shape" in text or "size" in text:
            return (f"this check uses fc = nn.Linear({channels}, {classes}), not the notebook's 512 channels and 7 "
                    "classes: use fc's shapes, e.g. fc.weight.reshape(conv.weight.shape), not numbers")
        return None
    return explain


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether changing b changes a (b is restored)."""
    with torch.no_grad():
        saved, before = b.detach().clone(), a.detach().clone()
        b.add_(1.0)
        changed = not torch.equal(a.detach(), before)
        b.copy_(saved)
    return changed


def _check_copy_in_place(exercise: _Exercise, size: str, fc: nn.Linear, conv: nn.Conv2d,
                         originals: dict[str, torch.Tensor]) -> None:
    """conv's weight and bias must be its own Parameters, filled in place, sharing nothing with fc."""
    __tracebackhide__ = True
    for name in ("weight", "bias"):
        mine = getattr(conv, name)
        if mine is not None and _shares_memory(mine, getattr(fc, name)):
            raise exercise.error(f"{size}: conv.{name} shares memory with fc.{name}, so training one would change "
                                 "the other: copy the values with conv.weight.copy_(...) inside torch.no_grad()")
    for name in ("weight", "bias"):
        if getattr(conv, name) is not originals[name]:
            raise exercise.error(f"{size}: conv.{name} is a new nn.Parameter, so an optimizer (or a hook) holding "
                                 f"the old one would not see the copy: copy into the existing Parameter in place, "
                                 f"conv.{name}.copy_(...) inside torch.no_grad()")


def _check_copied_values(exercise: _Exercise, size: str, conv: nn.Conv2d, weight: torch.Tensor,
                         bias: torch.Tensor, initial_weight: torch.Tensor) -> None:
    __tracebackhide__ = True
    classes, channels = weight.shape
    if tuple(conv.weight.shape) != (classes, channels, 1, 1):
        raise exercise.error(f"{size}: expected conv.weight of shape {(classes, channels, 1, 1)}, got "
                             f"{_shape(conv.weight.shape)}")
    got = conv.weight.detach().flatten(1)
    if not torch.equal(got, weight):
        if torch.equal(conv.weight.detach(), initial_weight):
            hint = "conv.weight was not changed"
        elif torch.equal(got.flatten().sort().values, weight.flatten().sort().values):
            hint = ("fc's numbers in the wrong places: fc.weight is (K, C) = (classes, channels) like conv.weight "
                    "(K, C, 1, 1): reshape it, or add two dimensions, without transposing")
        else:
            hint = "conv.weight[k, c, 0, 0] must be fc.weight[k, c]"
        raise exercise.error(f"{size}: conv.weight differs from fc.weight by up to "
                             f"{(got - weight).abs().max().item():.3g} ({hint})")
    if conv.bias is None or not torch.equal(conv.bias.detach(), bias):
        got_bias = "None" if conv.bias is None else f"{conv.bias.detach()[:3].tolist()}..."
        raise exercise.error(f"{size}: expected conv.bias == fc.bias = {bias[:3].tolist()}..., got {got_bias} "
                             "(the bias was not copied: every class score would be off by a constant)")


@_self_check
def check_copy_last_layer(copy_last_layer: Callable[[nn.Linear, nn.Conv2d], None]) -> None:
    """copy_last_layer(fc, conv) copies fc's weight (K, C) and bias (K,) into the given 1x1 conv, in place."""
    __tracebackhide__ = True
    exercise = _Exercise("copy_last_layer")
    for classes, channels in _COPY_SIZES:
        torch.manual_seed(classes)
        fc = nn.Linear(channels, classes)
        conv = nn.Conv2d(channels, classes, kernel_size=1)
        weight, bias = fc.weight.detach().clone(), fc.bias.detach().clone()
        originals = {"weight": conv.weight, "bias": conv.bias}
        initial_weight = conv.weight.detach().clone()
        size = f"with fc = nn.Linear({channels}, {classes}) (K={classes} classes, C={channels} channels)"
        result = exercise.run(size, copy_last_layer, fc, conv, explain=_copy_error_hint(classes, channels))
        if not (torch.equal(fc.weight.detach(), weight) and torch.equal(fc.bias.detach(), bias)):
            raise exercise.error(f"{size}: fc was changed: copy from fc into conv, not the other way round")
        if isinstance(result, nn.Module) and result is not conv and torch.equal(conv.weight.detach(), initial_weight):
            raise exercise.error(f"{size}: you returned a new {type(result).__name__}, but the conv you were given "
                                 "is unchanged: the network holds that conv, so fill its weight and bias in place "
                                 "(conv.weight.copy_(...) inside torch.no_grad())")
        _check_copy_in_place(exercise, size, fc, conv, originals)
        _check_copied_values(exercise, size, conv, weight, bias, initial_weight)
        features = torch.randn(2, channels, 3, 5)
        with torch.no_grad():
            expected = fc(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            if not torch.allclose(conv(features), expected, atol=1e-5):
                raise exercise.error(f"{size}: conv(features) differs from fc applied at each position")
    exercise.passed("weight and bias copied, for two layer sizes; conv == fc at every position.")


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
            return (f"a kernel of size {shape[0]}: for a stride-{factor} transposed convolution it is 2 * factor = "
                    f"{size} wide, an even size whose centre lies between its two middle pixels, at factor - 0.5")
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
        hint = _first_match(got, [(_ramp_kernel(factor, center), f"the centre is at {center}: for an even size 2f it "
                                   f"lies between the two middle pixels, at factor - 0.5 = {factor - 0.5}")
                                  for center in (factor, factor - 1)], atol=1e-6)
        if hint is None and total != 0 and torch.allclose(got * expected.sum() / total, expected, atol=1e-6):
            hint = (f"right shape, wrong scale: the kernel should sum to factor**2 = {factor * factor}, so that a "
                    "constant stays constant")
        elif hint is None and torch.allclose(total, expected.sum(), atol=1e-4):
            hint = "the sum is right: check where the centre is, factor - 0.5 for an even size"
        raise exercise.error(f"{case}, first row expected {[round(v, 4) for v in expected[0].tolist()]}, "
                             f"got {[round(v, 4) for v in got[0].tolist()]}" + (f" ({hint})" if hint else ""))
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
        ("coarse (2, 3, 4, 6), skip (2, 3, 8, 12), upsample = bilinear_upsampler(3, 2) (gives 8x12)",
         (4, 6), (8, 12), bilinear_upsampler(classes, 2)),
        ("coarse (2, 3, 4, 5), skip (2, 3, 8, 10), upsample = nn.ConvTranspose2d(3, 3, 4, stride=2) with random "
         "weights (gives 10x12: crop)", (4, 5), (8, 10), learned),
        ("coarse (2, 3, 5, 3), skip (2, 3, 11, 7), upsample = bilinear_upsampler(3, 2) (gives 10x6: pad)",
         (5, 3), (11, 7), bilinear_upsampler(classes, 2)),
    ]
    return [(description, torch.randn(2, classes, *coarse, generator=generator),
             torch.randn(2, classes, *skip, generator=generator), upsample)
            for description, coarse, skip, upsample in specs]


def _upsample_inputs(layer: nn.Module) -> tuple[list[tuple], Callable[[], None]]:
    """Record the shapes `layer` is called on: (list of input shapes, a function that stops recording)."""
    shapes: list[tuple] = []
    handle = layer.register_forward_pre_hook(lambda module, inputs: shapes.append(tuple(inputs[0].shape)))
    return shapes, handle.remove


def _fusion_mistakes(upsampled: torch.Tensor, skip: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    """(result, hint) of typical wrong fusions, from the right upsampled scores."""
    size = skip.shape[-2:]
    edge = "crop or pad at the bottom and right, where pooling dropped the odd row or column"
    resized = ("you resized upsample(coarse) to skip's size with F.interpolate: crop or pad it instead, so that "
               "each pixel of both maps keeps its place")
    wrong_fits = [
        (_fit(upsampled, size, mode="constant"),
         "zero padding: pad by repeating the edge, F.pad(..., mode=\"replicate\"), so the border keeps its scores"),
        (_fit(upsampled, size, "start"), f"cropped or padded at the top and left: {edge}"),
        (_fit(upsampled, size, "centre"), f"cropped or padded around the centre: {edge}"),
        (F.interpolate(upsampled, size=size, mode="nearest"), resized),
        (F.interpolate(upsampled, size=size, mode="bilinear", align_corners=False), resized),
        (F.interpolate(upsampled, size=size, mode="bilinear", align_corners=True), resized),
    ]
    if min(upsampled.shape[-2:]) > 1:  # reflect padding needs two rows and columns
        wrong_fits.append((_fit(upsampled, size, mode="reflect"),
                           "reflect padding: pad by repeating the edge, F.pad(..., mode=\"replicate\")"))
    fitted = match_size(upsampled, size)
    return [(fit + skip, hint) for fit, hint in wrong_fits] + [
        (fitted * skip, "multiplied: FCN adds the two score maps"),
        (fitted, "skip is missing: add it to the upsampled coarse scores"),
    ]


def _fusion_error_hint(coarse: torch.Tensor, skip: torch.Tensor, upsampled_size: tuple,
                       calls: list[tuple]) -> Callable[[Exception], str | None]:
    """A hint for an error raised by the learner's fusion, from what `upsample` was called on."""
    def explain(error: Exception) -> str | None:
        if tuple(skip.shape) in calls:
            return "you upsampled skip instead of coarse: `upsample` brings the coarse scores up to skip's resolution"
        if "size" not in str(error):
            return None
        (h, w), (height, width) = upsampled_size, skip.shape[-2:]
        if not calls:
            return (f"coarse was not upsampled: pass it through `upsample` (x2) before adding it to skip; coarse is "
                    f"{coarse.shape[-2]}x{coarse.shape[-1]}, skip {height}x{width}")
        return (f"upsample(coarse) is {h}x{w} but skip is {height}x{width}: bring it to skip's size before adding, "
                "cropping its bottom/right or padding by repeating the edge")
    return explain


def _fusion_shape_hint(coarse, skip, upsampled) -> Callable[[tuple], str | None]:
    batch, classes, height, width = skip.shape

    def hint(shape: tuple) -> str | None:
        if shape == (batch, 2 * classes, height, width):
            return "that is U-Net's concatenation (torch.cat along channels); FCN adds the two score maps"
        if shape[-2:] == tuple(upsampled.shape[-2:]):
            return ("the result is upsample(coarse)'s size: bring upsample(coarse) to skip's size (crop or pad it), "
                    "not skip to its size")
        if shape[-2:] == tuple(coarse.shape[-2:]):
            return "the result is coarse's size: upsample coarse to skip's resolution, not skip down to coarse's"
        return None
    return hint


def _fusion_reference(coarse: torch.Tensor, skip: torch.Tensor, upsample: nn.Module, upstream: torch.Tensor):
    """(upsample(coarse), the fused scores, and their gradients by name), on copies of the inputs."""
    layer = copy.deepcopy(upsample)
    inputs = {**{f"upsample.{name}": p for name, p in layer.named_parameters()},
              "coarse": coarse.clone().requires_grad_(), "skip": skip.clone().requires_grad_()}
    upsampled = layer(inputs["coarse"])
    expected = match_size(upsampled, skip.shape[-2:]) + inputs["skip"]
    gradients = torch.autograd.grad(expected, list(inputs.values()), upstream)
    return upsampled.detach(), expected.detach(), dict(zip(inputs, gradients))


def _check_one_fusion(exercise: _Exercise, fuse_skip: Callable, description: str, coarse: torch.Tensor,
                      skip: torch.Tensor, upsample: nn.Module) -> None:
    __tracebackhide__ = True
    case = f"for {description}"
    upstream = torch.randn(skip.shape, generator=torch.Generator().manual_seed(1))
    upsampled, expected, expected_grads = _fusion_reference(coarse, skip, upsample, upstream)
    mine = {**{f"upsample.{name}": p for name, p in upsample.named_parameters()},
            "coarse": coarse.clone().requires_grad_(), "skip": skip.clone().requires_grad_()}
    calls, stop = _upsample_inputs(upsample)
    try:
        got = exercise.run(case, fuse_skip, mine["coarse"], mine["skip"], upsample,
                           explain=_fusion_error_hint(coarse, skip, tuple(upsampled.shape[-2:]), calls))
    finally:
        stop()
    if tuple(skip.shape) in calls and tuple(coarse.shape) not in calls:
        raise exercise.error(f"{case}, you upsampled skip instead of coarse: `upsample` brings the coarse scores up "
                             "to skip's resolution, then the two are added")
    got = exercise.expect_tensor(case, got, expected.shape, shape_hint=_fusion_shape_hint(coarse, skip, upsampled))
    if not torch.allclose(got.detach(), expected, rtol=1e-4, atol=1e-5):
        difference = f"{(got.detach() - expected).abs().max().item():.3g}"
        if not calls:
            raise exercise.error(f"{case}, the result differs from the reference by up to {difference}: use the "
                                 "`upsample` layer you are given, upsample(coarse): it is learned, while "
                                 "F.interpolate is fixed")
        hint = _first_match(got.detach(), _fusion_mistakes(upsampled, skip))
        raise exercise.error(f"{case}, the result differs from upsample(coarse), cropped or padded at the "
                             f"bottom/right to skip's size, plus skip, by up to {difference}"
                             + (f" ({hint})" if hint else ""))
    consequence = ("the upsampling layer and the scores before it could not learn"
                   + ("" if calls else ": use the `upsample` layer you are given, it is learned"))
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
    exercise.passed(f"upsample, crop or pad at the bottom/right, add: right for {len(cases)} size combinations, "
                    "gradients included.")
