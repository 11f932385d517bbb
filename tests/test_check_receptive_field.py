"""check_receptive_field (notebook 2): layer_geometry, the reference trace (proved against torchinfo's shapes
and an empirical receptive field), every correct formulation passes, each typical mistake gets its message."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchinfo

from course_utils.checks.receptive_field import _MISTAKES, _cases, _real_sizes, _steps, _trace, check_receptive_field
from course_utils.models import layer_geometry
from tests.test_checks import assert_passes, assert_rejected

SUCCESS = (
    "trace: output sizes, receptive fields and jumps right for 5 stacks of layers (sizes checked against the real "
    "layers)."
)

# ----------------------------------------------------------------------------- layer_geometry


@pytest.mark.parametrize(
    "layer, expected",
    [
        (nn.Conv2d(3, 4, 3, padding=1), (3, 1, 1)),
        (nn.Conv2d(3, 4, (5, 5), stride=(2, 2), padding=(2, 2)), (5, 2, 2)),
        (nn.Conv2d(3, 4, 5, padding="same"), (5, 1, 2)),
        (nn.Conv2d(3, 4, 7, padding="valid"), (7, 1, 0)),
        (nn.MaxPool2d(2), (2, 2, 0)),
        (nn.MaxPool2d((3, 3), stride=2, padding=1), (3, 2, 1)),
        (nn.AvgPool2d(2), (2, 2, 0)),
        (nn.AvgPool2d(3, stride=1, padding=1), (3, 1, 1)),
        (nn.BatchNorm2d(4), None),
        (nn.ReLU(), None),
        (nn.Sequential(nn.Conv2d(3, 4, 3)), None),
    ],
    ids=repr,
)
def test_layer_geometry(layer, expected):
    got = layer_geometry(layer)
    assert got == expected
    assert got is None or all(type(value) is int for value in got)


@pytest.mark.parametrize(
    "layer, message",
    [
        (nn.Conv2d(3, 4, (3, 5)), r"Conv2d has a non-square kernel_size \(3, 5\)"),
        (nn.Conv2d(3, 4, 3, stride=(1, 2)), r"non-square stride \(1, 2\)"),
        (nn.Conv2d(3, 4, 3, padding=(0, 1)), r"non-square padding \(0, 1\)"),
        (nn.Conv2d(3, 4, 3, dilation=2), r"Conv2d has dilation \(2, 2\): layer_geometry assumes dilation 1"),
        (nn.MaxPool2d(3, dilation=2), r"MaxPool2d has dilation 2"),
        (nn.MaxPool2d(2, ceil_mode=True), r"MaxPool2d with ceil_mode=True rounds .* up"),
        (nn.AvgPool2d(2, ceil_mode=True), r"AvgPool2d with ceil_mode=True"),
        (nn.Conv2d(3, 4, 4, padding="same"), r"padding='same' and an even kernel"),
    ],
)
def test_layer_geometry_refuses_what_the_recursion_does_not_describe(layer, message):
    with pytest.raises(ValueError, match=message):
        layer_geometry(layer)


# ----------------------------------------------------------------------------- the reference is right

CASES = _cases()
CASE_IDS = [description.split(" (")[0] for description, _, _ in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reference_sizes_agree_with_the_real_layers_and_torchinfo(case):
    _, layers, size = case
    recursion = [entry[0] for entry in _trace(_steps(layers), size)]
    channels = next(layer.in_channels for layer in layers if isinstance(layer, nn.Conv2d))
    summary = torchinfo.summary(layers, input_size=(1, channels, size, size), verbose=0)
    shapes = [
        info.output_size
        for info in summary.summary_list
        if isinstance(info.module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
    ]
    assert [shape[-2] for shape in shapes] == [shape[-1] for shape in shapes] == recursion
    assert _real_sizes(layers, size) == recursion


def linear_positive_copy(layers: nn.Sequential) -> list[nn.Module]:
    """The same geometry, 1 channel, all-ones kernels, no bias: every input pixel a conv or pool sees counts."""
    copy = []
    for layer in layers:
        geometry = layer_geometry(layer)
        if geometry is None:
            continue  # BatchNorm and ReLU keep the geometry
        kernel, stride, padding = geometry
        if isinstance(layer, nn.Conv2d):
            conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, bias=False).double()
            nn.init.ones_(conv.weight)
            copy.append(conv)
        else:
            copy.append(nn.AvgPool2d(kernel, stride=stride, padding=padding))
    return copy


def seen_rows(layers: list[nn.Module], side: int, row: int) -> tuple[int, int]:
    """First and last input rows whose gradient is nonzero for output (row, centre column)."""
    x = torch.zeros(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    out = nn.Sequential(*layers)(x + 1)
    (grad,) = torch.autograd.grad(out[0, 0, row, out.shape[-1] // 2], x)
    rows = grad[0, 0].abs().sum(dim=1).nonzero().flatten()
    assert rows.numel() and rows[0] > 0 and rows[-1] < side - 1, "the field is clipped: use a larger input"
    assert torch.equal(rows, torch.arange(int(rows[0]), int(rows[-1]) + 1)), "a field has no holes"
    return int(rows[0]), int(rows[-1])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reference_fields_and_jumps_are_the_empirical_ones(case):
    """The span of input pixels with a nonzero gradient for one central output is the field; the shift of
    that span between two neighbouring outputs is the jump. Every prefix of every stack is measured."""
    _, layers, size = case
    copy = linear_positive_copy(layers)
    reference = _trace(_steps(layers), size)
    side = 3 * reference[-1][1] + 2 * reference[-1][2]
    for count, (_, field, jump) in enumerate(reference, start=1):
        out_side = _trace(_steps(layers), side)[count - 1][0]
        first, last = seen_rows(copy[:count], side, out_side // 2)
        next_first, _ = seen_rows(copy[:count], side, out_side // 2 + 1)
        assert (last - first + 1, next_first - first) == (field, jump), f"after {count} layers"


def test_the_first_stack_tells_the_mistakes_apart():
    """On the first stack, each mistake's trace is wrong, and two mistakes give the same trace only if they
    share a hint: the check names a mistake from the first stack that fails, and that is usually the first."""
    _, layers, size = CASES[0]
    steps = _steps(layers)
    traces = {mistake: _trace(steps, size, mistake) for mistake in _MISTAKES}
    assert all(trace != _trace(steps, size) for trace in traces.values())
    for one, two in itertools.combinations(_MISTAKES, 2):
        assert traces[one] != traces[two] or _MISTAKES[one] == _MISTAKES[two], (one, two)


# ----------------------------------------------------------------------------- correct answers pass


def trace_loop(layers, size):
    field, jump, trace = 1, 1, []
    for layer in layers:
        geometry = layer_geometry(layer)
        if geometry is None:
            continue
        k, s, p = geometry
        size = (size + 2 * p - k) // s + 1
        field = field + (k - 1) * jump
        jump = jump * s
        trace.append((size, field, jump))
    return trace


def trace_lists_and_floor(layers, size):
    """Lists, math.floor of a true division, modules() (the container itself gives None), geometry unpacked late."""
    rows, field, jump = [], 1, 1
    for module in layers.modules():
        if layer_geometry(module) is not None:
            kernel, stride, padding = layer_geometry(module)
            size = math.floor((size + 2 * padding - kernel) / stride) + 1
            field, jump = field + (kernel - 1) * jump, jump * stride
            rows.append([size, field, jump])
    return rows


def trace_numpy(layers, size):
    """NumPy integers throughout, returned as an (n, 3) array."""
    geometries = np.array([g for g in map(layer_geometry, layers) if g is not None])
    kernels, strides, paddings = geometries.T
    jumps = np.cumprod(strides)
    fields = 1 + np.cumsum((kernels - 1) * np.concatenate([[1], jumps[:-1]]))
    sizes = []
    for k, s, p in geometries:
        size = (size + 2 * p - k) // s + 1
        sizes.append(size)
    return np.stack([sizes, fields, jumps], axis=1)


def trace_torch_measured(layers, size):
    """Sizes measured by running the layers, fields and jumps as 0-d torch integer tensors."""
    x = torch.zeros(1, next(layers.parameters()).shape[1], size, size)
    field, jump, out = torch.tensor(1), torch.tensor(1), []
    with torch.no_grad():
        for layer in layers:
            x = layer(x)
            if (geometry := layer_geometry(layer)) is not None:
                field = field + (geometry[0] - 1) * jump
                jump = jump * geometry[1]
                out.append((torch.tensor(x.shape[-1]), field, jump))
    return out


def trace_recursive(layers, size):
    """Recursion on the list of geometries; jump multiplied first, field grown with the old jump (jump // s)."""

    def steps(geometries, size, field, jump):
        if not geometries:
            return []
        (k, s, p), *rest = geometries
        size, jump = (size + 2 * p - k) // s + 1, jump * s
        field += (k - 1) * (jump // s)
        return [(size, field, jump)] + steps(rest, size, field, jump)

    return steps([g for g in (layer_geometry(layer) for layer in layers) if g is not None], size, 1, 1)


def trace_int_of_division(layers, size):
    """int() of a true division (truncation is floor for these positive sizes), a tuple of tuples."""
    entries, field, jump = (), 1, 1
    for layer in layers:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = layer_geometry(layer)
            size = int((size + 2 * p - k) / s) + 1
            field += (k - 1) * jump
            jump *= s
            entries += ((size, field, jump),)
    return entries


def trace_numpy_ints_in_lists(layers, size):
    return [[np.int64(value) for value in entry] for entry in trace_loop(layers, size)]


@pytest.mark.parametrize(
    "answer",
    [
        trace_loop,
        trace_lists_and_floor,
        trace_numpy,
        trace_numpy_ints_in_lists,
        trace_torch_measured,
        trace_recursive,
        trace_int_of_division,
    ],
)
def test_every_correct_answer_passes(answer, capsys):
    assert_passes(check_receptive_field, answer, capsys, SUCCESS)


# ----------------------------------------------------------------------------- each mistake named


def wrong(
    size_out=lambda size, k, s, p: (size + 2 * p - k) // s + 1,
    grow=lambda layer, k, jump: (k - 1) * jump,
    jump_first=False,
    keep=lambda layer: layer_geometry(layer) is not None,
    entry=lambda size, field, jump: (size, field, jump),
    field=1,
):
    """trace_loop with one thing changed."""

    def trace(layers, size):
        nonlocal_field, jump, out = field, 1, []
        for layer in layers:
            if not keep(layer):
                continue
            k, s, p = layer_geometry(layer) or (1, 1, 0)
            size = size_out(size, k, s, p)
            if jump_first:
                jump *= s
            nonlocal_field += grow(layer, k, jump)
            if not jump_first:
                jump *= s
            out.append(entry(size, nonlocal_field, jump))
        return out

    return trace


def is_pool(layer):
    return isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d))


def pools_only_shrink(layers, size):
    field, jump, out = 1, 1, []
    for layer in layers:
        if (geometry := layer_geometry(layer)) is None:
            continue
        k, s, p = geometry
        size = (size + 2 * p - k) // s + 1
        if isinstance(layer, nn.Conv2d):
            field += (k - 1) * jump
            jump *= s
        out.append((size, field, jump))
    return out


def unpacks_none(layers, size):
    out, field, jump = [], 1, 1
    for layer in layers:
        k, s, p = layer_geometry(layer)
        size = (size + 2 * p - k) // s + 1
        out.append((size, field, jump))
    return out


def reads_attributes(layers, size):
    out = []
    for layer in layers:
        k, s, p = (value if isinstance(value, int) else value[0] for value in (layer.kernel_size, layer.stride, 0))
        size = (size + 2 * p - k) // s + 1
        out.append((size, 1, 1))
    return out


def attributes_of_convs_and_pools(layers, size):
    out = []
    for layer in layers:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            size = (size + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
            out.append((size, 1, 1))
    return out


def a_generator(layers, size):
    yield from trace_loop(layers, size)


NOTEBOOK_SIZE = 224  # an answer that ignores `size`


@pytest.mark.parametrize(
    "answer, message",
    [
        (
            wrong(grow=lambda layer, k, jump: k - 1),
            r"^trace: for an AlexNet-like stack \(Conv2d k=5 s=2 p=2, ReLU, MaxPool2d\(3, 2\), Conv2d k=3 p=1, ReLU\) "
            r"at size 67, after the 2nd conv or pool layer \(pool k=3 s=2 p=0\) expected \(size, field, jump\) = "
            r"\(16, 9, 4\), got \(16, 7, 4\) \(field \+= k - 1 forgets the jump",
        ),
        (wrong(jump_first=True), r"the jump was multiplied by the stride before the field grew"),
        (wrong(grow=lambda layer, k, jump: 2 * jump), r"field \+= 2 \* jump assumes 3x3 kernels"),
        (
            wrong(grow=lambda layer, k, jump: (1 if is_pool(layer) else 2) * jump),
            r"AlexNet-like .* at size 67, after the 1st .* \(conv k=5 s=2 p=2\) expected \(size, field, jump\) = "
            r"\(34, 5, 2\), got \(34, 3, 2\) \(2 \* jump per conv and 1 \* jump per pool assumes 3x3 kernels",
        ),
        (
            wrong(grow=lambda layer, k, jump: ((k - 1) if is_pool(layer) else 2) * jump),
            r"AlexNet-like .* = \(34, 5, 2\), got \(34, 3, 2\) \(field \+= 2 \* jump assumes 3x3 kernels",
        ),
        (
            wrong(size_out=lambda size, k, s, p: (size - k) // s + 1),
            r"at size 67, after the 1st .* = \(34, 5, 2\), got \(32, 5, 2\) \(padding ignored in the size",
        ),
        (wrong(size_out=lambda size, k, s, p: size + 2 * p - k + 1), r"\(stride ignored in the size"),
        (
            wrong(size_out=lambda size, k, s, p: math.ceil((size + 2 * p - k) / s) + 1),
            r"at size 67, after the 2nd .* \(pool k=3 s=2 p=0\) expected .* = \(16, 9, 4\), got \(17, 9, 4\) "
            r"\(rounded up: .* round down with //\)",
        ),
        (wrong(size_out=lambda size, k, s, p: (size + 2 * p - k) / s + 1), r"not a whole number: / divides exactly"),
        (wrong(grow=lambda layer, k, jump: 0 if is_pool(layer) else (k - 1) * jump), r"pools grow the field too"),
        (pools_only_shrink, r"pools grow the field too: .*, and jump \*= s"),
        (wrong(field=0), r"the field starts at 1"),
        (
            wrong(keep=lambda layer: isinstance(layer, nn.Conv2d)),
            r"at size 67, expected 3 entries, got 2 \(only the convolutions: pools change",
        ),
        (wrong(keep=lambda layer: True), r"expected 3 entries, got 5 \(one per layer, BatchNorm and ReLU included"),
        (wrong(entry=lambda size, field, jump: (field, jump, size)), r"your entries are \(field, jump, size\)"),
        (wrong(entry=lambda size, field, jump: (size, jump, field)), r"your entries are \(size, jump, field\)"),
        (wrong(entry=lambda size, field, jump: (size, field)), r"the 1st entry is a tuple of 2 items .*three numbers"),
        (lambda layers, size: trace_loop(layers, NOTEBOOK_SIZE), r"\(size wrong: size = \(size \+ 2 \* p - k\)"),
        (
            lambda layers, size: [(s, f + 1, j) for s, f, j in trace_loop(layers, size)],
            r"\(field wrong: field \+= \(k - 1\) \* jump, with the jump from before this layer\)",
        ),
        (
            unpacks_none,
            r"your code raised TypeError: cannot unpack non-iterable NoneType object \(layer_geometry\(layer\) is "
            r"None for layers such as BatchNorm",
        ),
        (reads_attributes, r"raised AttributeError: .* \(only conv and pool layers have a kernel"),
        (attributes_of_convs_and_pools, r"raised TypeError: .*tuple.* \(a layer's kernel_size, stride and padding"),
        (a_generator, r"expected a list of 3 \(size, field, jump\) tuples, got a generator"),
    ],
)
def test_each_mistake_gets_its_own_message(answer, message):
    assert_rejected(check_receptive_field, answer, message)


def test_not_written():
    def trace(layers, size):
        raise NotImplementedError("your code here")

    assert_rejected(
        check_receptive_field, trace, r"^trace: not written yet: replace `raise NotImplementedError` with your code\.$"
    )


def test_forgotten_return():
    def trace(layers, size):
        trace_loop(layers, size)

    assert_rejected(
        check_receptive_field,
        trace,
        r"^trace: for an AlexNet-like stack .* at size 67, your function returned None: did you forget `return`",
    )
