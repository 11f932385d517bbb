"""Every self-check accepts every correct formulation and rejects each typical wrong answer with
its own message, and a failing check shows the learner no frame from inside course_utils."""

import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import course_utils.checks as checks_package
from course_utils.checks import (
    SelfCheckError,
    check_backbone,
    check_bilinear_kernel,
    check_classifier_head,
    check_copy_last_layer,
    check_linear_to_conv,
    check_mask_to_box,
    check_mean_iou,
    check_receptive_field,
    check_skip_fusion,
    check_training_step,
    check_transposed_padding,
)
from course_utils.models import VGG11_LAYOUT, VGG11Backbone, conv_bn_relu


def not_written(*args):
    raise NotImplementedError("your code here")


def returns_none(*args):
    pass


def assert_passes(check, answer, capsys, start):
    check(answer)
    out = capsys.readouterr().out
    assert out.startswith(f"✓ {start}") and out.count("\n") == 1, out


def assert_rejected(check, answer, pattern):
    """The check raises its own SelfCheckError matching `pattern`, from hidden frames only, unchained."""
    with pytest.raises(SelfCheckError, match=pattern) as info:
        check(answer)
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    entry = info.tb.tb_next  # the first entry is this function's own frame
    assert entry is not None
    while entry is not None:  # every frame of the check, the raising one included, is hidden
        assert entry.tb_frame.f_locals.get("__tracebackhide__"), entry.tb_frame.f_code.co_name
        entry = entry.tb_next
    return str(error)


def both(check):
    """A check of two functions, given the same answer for both (so it reports the first)."""

    def check_both(answer):
        __tracebackhide__ = True
        return check(answer, answer)

    check_both.__name__ = check.__name__
    return check_both


ALL_CHECKS = [
    check_mask_to_box,
    check_backbone,
    check_receptive_field,
    check_classifier_head,
    both(check_training_step),
    check_copy_last_layer,
    check_linear_to_conv,
    both(check_mean_iou),
    check_bilinear_kernel,
    check_transposed_padding,
    check_skip_fusion,
]
#: The exercises that return nothing: they fill the layer they are given.
RETURN_NOTHING = {check_copy_last_layer.__name__, check_linear_to_conv.__name__}


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_every_check_says_not_written_for_the_stub(check):
    assert_rejected(
        check,
        not_written,
        r"^\S.*: not written yet: replace `raise NotImplementedError` with your "
        r"code\.$",
    )


@pytest.mark.parametrize("check", [c for c in ALL_CHECKS if c.__name__ not in RETURN_NOTHING], ids=lambda c: c.__name__)
def test_every_check_says_when_return_is_forgotten(check):
    assert_rejected(check, returns_none, r"returned None: did you forget `return`\?")


# ----------------------------------------------------------------------------- tracebacks in IPython

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CHECKS_FILE = re.compile(r"checks[/\\]\w+\.py")  # a file of the course_utils.checks package


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.colors = "nocolor"
    shell.run_cell("from course_utils.checks import check_mask_to_box, check_skip_fusion")
    yield shell
    shell.run_cell("%xmode Context")
    InteractiveShell.clear_instance()


@pytest.mark.parametrize("mode", ["Context", "Verbose", "Plain"])
@pytest.mark.parametrize(
    "cell, message",
    [
        (
            "def mask_to_box(mask):\n    return [1, 2, 3, 4]\n\ncheck_mask_to_box(mask_to_box)",
            "SelfCheckError: mask_to_box: for a wide rectangle",
        ),
        (
            "def mask_to_box(mask):\n    return mask.nonzero()[10**6]\n\ncheck_mask_to_box(mask_to_box)",
            "your code raised IndexError",
        ),
        (
            "def fuse_skip(coarse, skip, upsample):\n    return coarse + skip\n\ncheck_skip_fusion(fuse_skip)",
            "coarse was not upsampled",
        ),
    ],
)
def test_a_failing_check_shows_only_the_learners_cell_in_ipython(shell, capsys, cell, message, mode):
    shell.run_cell(f"%xmode {mode}")
    capsys.readouterr()
    result = shell.run_cell(cell)
    shown = ANSI.sub("", capsys.readouterr().out)
    assert isinstance(result.error_in_exec, SelfCheckError)
    assert message in shown
    assert "SelfCheckError: " in shown and cell.splitlines()[-1] in shown  # the learner's line, then the message
    # No frame of the package: its files (course_utils/checks/*.py) would be named by their path.
    assert "course_utils" not in shown and not CHECKS_FILE.search(shown) and "hidden" not in shown, shown
    assert shown.count("Cell In[") == 1 and "During handling" not in shown  # no learner frames chained


def test_without_the_hook_ipython_would_show_the_raising_frame(shell, capsys):
    """Why SelfCheckError renders its own traceback: IPython always shows the innermost frame."""
    error = pytest.raises(SelfCheckError, check_mask_to_box, lambda mask: [1, 2, 3, 4]).value
    plain = "\n".join(shell.InteractiveTB.structured_traceback(type(error), error, error.__traceback__))
    innermost = error.__traceback__
    while innermost.tb_next is not None:
        innermost = innermost.tb_next
    raising_file = Path(innermost.tb_frame.f_code.co_filename)  # a file of the package, e.g. checks/_common.py
    assert raising_file.parent == Path(checks_package.__file__).parent
    assert str(Path("course_utils", "checks", raising_file.name)) in ANSI.sub("", plain)
    rendered = ANSI.sub("", "\n".join(error._render_traceback_()))
    assert "course_utils" not in rendered and not CHECKS_FILE.search(rendered), rendered


# ----------------------------------------------------------------------------- exercise 1: mask_to_box


def objects_of(mask):
    return (mask != 0) & (mask != 255)


def box_where(mask):
    rows, cols = torch.where(objects_of(mask))
    return torch.stack([cols.min(), rows.min(), cols.max(), rows.max()])


def box_nonzero(mask):
    where = objects_of(mask).nonzero()  # (n, 2) rows and columns
    return torch.cat([where.min(dim=0).values.flip(0), where.max(dim=0).values.flip(0)])


def box_any_argmax(mask):
    rows, cols = objects_of(mask).any(dim=1).int(), objects_of(mask).any(dim=0).int()
    last = lambda line: len(line) - 1 - line.flip(0).argmax()  # noqa: E731
    return torch.stack([cols.argmax(), rows.argmax(), last(cols), last(rows)])


def box_torchvision(mask):
    return torchvision.ops.masks_to_boxes(objects_of(mask)[None])[0]


def box_float(mask):
    return box_where(mask).float()


def box_python_numbers(mask):
    rows, cols = torch.where(objects_of(mask))
    return torch.tensor([int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())])


@pytest.mark.parametrize(
    "answer", [box_where, box_nonzero, box_any_argmax, box_torchvision, box_float, box_python_numbers]
)
def test_mask_to_box_accepts_every_correct_answer(answer, capsys):
    assert_passes(check_mask_to_box, answer, capsys, "mask_to_box: all 5 test masks give the right box.")


def box_swapped(mask):
    rows, cols = torch.where(objects_of(mask))
    return torch.stack([rows.min(), cols.min(), rows.max(), cols.max()])


def box_counts_ignore(mask):
    rows, cols = torch.where(mask > 0)
    return torch.stack([cols.min(), rows.min(), cols.max(), rows.max()])


def box_counts_ignore_not_zero(mask):
    rows, cols = torch.where(mask != 0)
    return torch.stack([cols.min(), rows.min(), cols.max(), rows.max()])


def box_first_last(mask):
    where = objects_of(mask).nonzero()
    return torch.stack([where[0, 1], where[0, 0], where[-1, 1], where[-1, 0]])


def box_xxyy(mask):
    return box_where(mask)[[0, 2, 1, 3]]


def box_xywh(mask):
    x0, y0, x1, y1 = box_where(mask)
    return torch.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1])


def box_changes_mask(mask):
    mask[mask == 255] = 0
    rows, cols = torch.where(mask != 0)
    return torch.stack([cols.min(), rows.min(), cols.max(), rows.max()])


@pytest.mark.parametrize(
    "wrong, message",
    [
        (box_swapped, r"expected \[20, 5, 49, 11\], got \[5, 20, 11, 49\] \(x and y are swapped"),
        (
            lambda mask: box_where(mask) + torch.tensor([0, 0, 1, 1]),
            r"got \[20, 5, 50, 12\] \(x_max and y_max "
            r"are one too large: the box is inclusive",
        ),
        (box_counts_ignore, r"band of ignored \(255\) pixels.*\(pixels marked 255 are 'ignore', not part"),
        (box_counts_ignore_not_zero, r"band of ignored \(255\) pixels.*\(pixels marked 255 are 'ignore'"),
        (
            box_first_last,
            r"two separate pixels.*expected \[2, 3, 25, 27\], got \[25, 3, 2, 27\] \(x_min > x_max: "
            r"that is the first and the last object pixel",
        ),
        (box_xxyy, r"got \[20, 49, 5, 11\] \(the order is \[x_min, x_max, y_min, y_max\]"),
        (box_xywh, r"got \[20, 5, 30, 7\] \(that is \(x, y, width, height\)"),
        (box_changes_mask, r"band of ignored .*your function changed the mask it was given"),
        (lambda mask: mask.nonzero()[10**6], r"wide rectangle .*, your code raised IndexError: index 1000000"),
        (
            lambda mask: box_where(mask).tolist(),
            r"expected a torch.Tensor of shape \(4,\), got a list of 4 items "
            r"\[20, 5, 49, 11\]: build a tensor.*draw_box, which needs a tensor",
        ),
        (lambda mask: tuple(box_where(mask).tolist()), r"got a tuple of 4 items \(20, 5, 49, 11\): build a tensor"),
        (
            lambda mask: box_where(mask).numpy(),
            r"got a numpy.ndarray of shape \(4,\): use torch operations "
            r"\(or torch.as_tensor\): the next cell passes the box to draw_box",
        ),
        (lambda mask: box_where(mask)[None], r"got shape \(1, 4\): one box of 4 numbers, shape \(4,\)"),
    ],
)
def test_mask_to_box_names_each_mistake(wrong, message):
    assert_rejected(check_mask_to_box, wrong, message)


# ----------------------------------------------------------------------------- exercise 2: the backbone


def vgg_layers(
    width, relu=True, bias=True, batchnorm=True, padding=1, pool=nn.MaxPool2d, order="conv-bn-relu", layout=VGG11_LAYOUT
):
    """A learner's nn.Sequential VGG11 layer list, with one thing changed for the wrong answers."""
    layers, channels = [], 3
    for item in layout:
        if item == "M":
            layers.append(pool(2))
            continue
        out = item * width // 64
        steps = {
            "conv": nn.Conv2d(channels, out, 3, padding=padding, bias=bias),
            "bn": nn.BatchNorm2d(out) if batchnorm else None,
            "relu": nn.ReLU() if relu else None,
        }
        layers += [steps[name] for name in order.split("-") if steps[name] is not None]
        channels = out
    return layers


def backbone_sequential(width):
    return nn.Sequential(*vgg_layers(width))


class LectureBackbone(nn.Module):
    """Named conv1..conv8 / bn1..bn8, functional ReLU and pools in forward, as in the lecture."""

    def __init__(self, width=64):
        super().__init__()
        c = [width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width, 8 * width, 8 * width]
        for i, (cin, cout) in enumerate(zip([3] + c[:-1], c), start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, kernel_size=3, padding=1))
            setattr(self, f"bn{i}", nn.BatchNorm2d(cout))

    def forward(self, x):
        for i in range(1, 9):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            if i in (1, 2, 4, 6):
                x = F.max_pool2d(x, 2)
        return x


class ModuleListBackbone(nn.Module):
    """Convolutions in one nn.ModuleList, BatchNorms in another."""

    def __init__(self, width=64):
        super().__init__()
        c = [width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width, 8 * width, 8 * width]
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1) for cin, cout in zip([3] + c[:-1], c))
        self.norms = nn.ModuleList(nn.BatchNorm2d(cout) for cout in c)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = torch.relu(norm(conv(x)))
            if i in (0, 1, 3, 5):
                x = self.pool(x)
        return x


class ShuffledBackbone(nn.Module):
    """Named attributes declared in another order than forward uses them."""

    def __init__(self, width=64):
        super().__init__()
        c = [width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width, 8 * width, 8 * width]
        pairs = list(zip([3] + c[:-1], c))
        for i in reversed(range(8)):
            setattr(self, f"norm_{i}", nn.BatchNorm2d(c[i]))
        for i in (5, 2, 7, 0, 3, 6, 1, 4):
            setattr(self, f"layer_{i}", nn.Conv2d(*pairs[i], 3, padding=1))

    def forward(self, x):
        for i in range(8):
            x = F.relu(getattr(self, f"norm_{i}")(getattr(self, f"layer_{i}")(x)))
            if i in (0, 1, 3, 5):
                x = F.max_pool2d(x, kernel_size=2, stride=2)
        return x


class BlocksBackbone(nn.Module):
    """The notebook's solution: blocks of conv_bn_relu with the pools inside."""

    def __init__(self, width=64):
        super().__init__()
        c1, c2, c3, c4 = width, 2 * width, 4 * width, 8 * width
        self.block1 = nn.Sequential(*conv_bn_relu(3, c1), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*conv_bn_relu(c1, c2), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*conv_bn_relu(c2, c3), *conv_bn_relu(c3, c3), nn.MaxPool2d(2))
        self.block4 = nn.Sequential(*conv_bn_relu(c3, c4), *conv_bn_relu(c4, c4), nn.MaxPool2d(2))
        self.block5 = nn.Sequential(*conv_bn_relu(c4, c4), *conv_bn_relu(c4, c4))

    def forward(self, x):
        for block in (self.block1, self.block2, self.block3, self.block4, self.block5):
            x = block(x)
        return x


class ConvenienceListBackbone(LectureBackbone):
    """A plain list that only *refers* to registered layers is fine."""

    def __init__(self, width=64):
        super().__init__(width)
        self.all_convs = [getattr(self, f"conv{i}") for i in range(1, 9)]


@pytest.mark.parametrize(
    "answer",
    [
        backbone_sequential,
        LectureBackbone,
        ModuleListBackbone,
        ShuffledBackbone,
        BlocksBackbone,
        ConvenienceListBackbone,
    ],
)
def test_backbone_accepts_every_correct_structure(answer, capsys):
    assert_passes(
        check_backbone,
        answer,
        capsys,
        "VGG11 backbone: 9,225,984 parameters, same layers and outputs as the reference.",
    )


class CourseSubclass(VGG11Backbone):
    pass


class WrapsTheCourse(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.features = VGG11Backbone(width)

    def forward(self, x):
        return self.features(x)


class PlainListBackbone(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.layers = vgg_layers(width)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class UnusedLayerBackbone(LectureBackbone):
    def __init__(self, width=64):
        super().__init__(width)
        self.conv9 = nn.Conv2d(8 * width, 8 * width, 3, padding=1)


class SkipsALayerBackbone(LectureBackbone):
    def forward(self, x):
        for i in range(1, 9):
            if i == 7:
                continue
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            if i in (1, 2, 4, 6):
                x = F.max_pool2d(x, 2)
        return x


class ForgetsReturnBackbone(LectureBackbone):
    def forward(self, x):
        super().forward(x)


WRONG_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 256, 512, "M", 512, 512)
MISPLACED_POOLS = (64, "M", 128, "M", 256, "M", 256, 512, "M", 512, 512)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (VGG11Backbone, r"that is the course's VGG11Backbone: build the layers yourself"),
        (CourseSubclass, r"that is the course's VGG11Backbone"),
        (WrapsTheCourse, r"that is the course's VGG11Backbone"),
        (
            PlainListBackbone,
            r"the layers in self.layers \(a list\) are invisible to PyTorch.*nn.ModuleList or "
            r"nn.Sequential",
        ),
        (
            lambda w: nn.Sequential(*vgg_layers(w, batchnorm=False)),
            r"expected 9,225,984 parameters at width 64, got 9,220,480 \(difference -5,504\): no BatchNorm",
        ),
        (
            lambda w: nn.Sequential(*vgg_layers(w, bias=False)),
            r"got 9,223,232 \(difference -2,752\): the convolutions have no bias",
        ),
        (
            lambda w: nn.Sequential(*vgg_layers(64)),
            r"make_backbone\(8\) has 9,225,984 parameters, as many as "
            r"make_backbone\(64\): width is not used",
        ),
        (
            lambda w: nn.Sequential(*vgg_layers(w), nn.MaxPool2d(2)),
            r"expected a torch.Tensor of shape \(2, 64, 6, 4\), got shape \(2, 64, 3, 2\): output stride 32: there is "
            r"a fifth pool \(pool5\)",
        ),
        (
            lambda w: nn.Sequential(*vgg_layers(w, layout=VGG11_LAYOUT[:1] + VGG11_LAYOUT[2:])),
            r"the 2nd convolution used in forward sees 96x64 maps, expected 48x32: a pool is missing",
        ),
        (
            lambda w: nn.Sequential(*vgg_layers(w, layout=MISPLACED_POOLS)),
            r"the 4th convolution used in forward sees 12x8 maps, expected 24x16: a pool too many, or one too early",
        ),
        (lambda w: nn.Sequential(*vgg_layers(w, order="conv-relu-bn")), r"ReLU comes before BatchNorm"),
        (lambda w: nn.Sequential(*vgg_layers(w, pool=nn.AvgPool2d)), r"the pools average: VGG uses max pooling"),
        (lambda w: nn.Sequential(*vgg_layers(w, relu=False)), r"there is no ReLU"),
        (
            lambda w: nn.Sequential(*vgg_layers(w, padding=0)),
            r"the 1st convolution used in forward turns 96x64 maps "
            r"into 94x62: convolutions without padding.*padding=1",
        ),
        (
            lambda w: nn.Sequential(*vgg_layers(w, layout=WRONG_CHANNELS)),
            r"the 5th convolution used in forward has weight shape \(32, 32, 3, 3\).*expected \(64, 32, 3, 3\)",
        ),
        (UnusedLayerBackbone, r"1 of your convolution layers is never used in forward"),
        (
            SkipsALayerBackbone,
            r"forward uses 7 convolution layers, expected 8 \(1 of your convolution layers is "
            r"never used",
        ),
        (lambda w: torch.zeros(3), r"make_backbone\(64\) should give an nn.Module, got a torch.Tensor"),
        (
            ForgetsReturnBackbone,
            r"for a \(2, 3, 96, 64\) batch, your function returned None: did you forget "
            r"`return`\?",
        ),
    ],
)
def test_backbone_names_each_mistake(wrong, message):
    assert_rejected(check_backbone, wrong, message)


# ----------------------------------------------------------------------------- exercise 3: classifier head


def head_reference(features, fc):
    return fc(F.max_pool2d(features, kernel_size=2).mean(dim=(2, 3)))


def head_torch_mean(x, fc):
    return fc(torch.mean(F.max_pool2d(x, 2), dim=[-1, -2]))


def head_modules(x, fc):
    return fc(nn.AdaptiveAvgPool2d(1)(nn.MaxPool2d(2)(x)).flatten(1))


def head_functional_linear(x, fc):
    return F.linear(F.max_pool2d(x, 2).mean((2, 3)), fc.weight, fc.bias)


def head_matmul(x, fc):
    pooled = F.max_pool2d(x, 2)
    return pooled.sum(dim=(2, 3)) / (pooled.shape[2] * pooled.shape[3]) @ fc.weight.T + fc.bias


@pytest.mark.parametrize("answer", [head_reference, head_torch_mean, head_modules, head_functional_linear, head_matmul])
def test_classifier_head_accepts_every_correct_answer(answer, capsys):
    assert_passes(
        check_classifier_head,
        answer,
        capsys,
        "classifier head: pool5 -> global average pooling -> fc, right for 3 feature-map sizes.",
    )


def head_no_grad(x, fc):
    with torch.no_grad():
        return head_reference(x, fc)


FIRST = r"for features of shape \(1, 12, 5, 7\)"


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            head_no_grad,
            FIRST + r", no gradient reaches fc.weight, fc.bias and the features: .*torch.no_grad\(\).* "
            r"the backbone and fc could not learn",
        ),
        (lambda x, fc: head_reference(x.detach(), fc), r"no gradient reaches the features:"),
        (
            lambda x, fc: F.linear(F.max_pool2d(x, 2).mean((2, 3)), fc.weight.data, fc.bias.data),
            r"no gradient reaches fc.weight and fc.bias:",
        ),
        (lambda x, fc: fc(F.max_pool2d(x, 2, ceil_mode=True).mean((2, 3))), FIRST + r".*ceil_mode=True"),
        (lambda x, fc: fc(F.avg_pool2d(x, 2).mean((2, 3))), r"pool5 is an average pool: use max pooling"),
        (lambda x, fc: fc(x.mean(dim=(2, 3))), r"pool5 is missing"),
        (lambda x, fc: fc(F.max_pool2d(x, 2).amax(dim=(2, 3))), r"global \*max\* pooling"),
        (
            lambda x, fc: head_reference(x, fc).softmax(dim=1),
            r"return raw scores \(logits\): cross-entropy applies "
            r"softmax itself",
        ),
        (lambda x, fc: head_reference(x, fc).log_softmax(dim=-1), r"return raw scores \(logits\)"),
        (
            lambda x, fc: fc(nn.AdaptiveAvgPool2d(1)(F.max_pool2d(x, 2)).squeeze()),
            r"expected a torch.Tensor of shape \(1, 5\), got shape \(5,\): .squeeze\(\) dropped the batch dimension",
        ),
        (
            lambda x, fc: fc(F.max_pool2d(x, 2).flatten(1)),
            FIRST + r", your code raised RuntimeError: mat1 and mat2.*"
            r"global average pooling gives exactly C",
        ),
        (lambda x, fc: fc(nn.AdaptiveAvgPool2d(1)(F.max_pool2d(x, 2))), r"raised RuntimeError.*fc expects \(N, C\)"),
        (lambda x, fc: F.max_pool2d(x, 2).mean(dim=(2, 3)), r"got shape \(1, 12\): that is the pooled features"),
        (
            lambda x, fc: head_reference(x, fc).detach().numpy(),
            r"got a numpy.ndarray of shape \(1, 5\): use torch "
            r"operations",
        ),
    ],
)
def test_classifier_head_names_each_mistake(wrong, message):
    assert_rejected(check_classifier_head, wrong, message)


# ----------------------------------------------------------------------------- exercise 4: copy_last_layer


def copy_reshape(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(conv.weight.shape))
        conv.bias.copy_(fc.bias)


def copy_none_indexing(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight[:, :, None, None])
        conv.bias.copy_(fc.bias)


def copy_view_as(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.view_as(conv.weight))
        conv.bias.copy_(fc.bias)


def copy_unsqueeze(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.unsqueeze(-1).unsqueeze(-1))
        conv.bias.copy_(fc.bias)


def copy_data(fc, conv):
    conv.weight.data.copy_(fc.weight.data.reshape(conv.weight.shape))
    conv.bias.data.copy_(fc.bias.data)


def copy_load_state_dict(fc, conv):
    conv.load_state_dict({"weight": fc.weight.reshape(conv.weight.shape), "bias": fc.bias})


@pytest.mark.parametrize(
    "answer", [copy_reshape, copy_none_indexing, copy_view_as, copy_unsqueeze, copy_data, copy_load_state_dict]
)
def test_copy_last_layer_accepts_every_correct_answer(answer, capsys):
    assert_passes(
        check_copy_last_layer,
        answer,
        capsys,
        "copy_last_layer: weight and bias copied, for two layer sizes; conv == fc at every position.",
    )


def copy_backwards(fc, conv):
    with torch.no_grad():
        fc.weight.copy_(conv.weight.flatten(1))
        fc.bias.copy_(conv.bias)


def copy_new_parameters(fc, conv):
    conv.weight = nn.Parameter(fc.weight.detach().clone().reshape(conv.weight.shape))
    conv.bias = nn.Parameter(fc.bias.detach().clone())


def copy_seed_version(fc, conv):
    """The lecture's first version: a new Parameter, and the bias forgotten."""
    conv.weight = nn.Parameter(fc.weight.detach().clone().reshape(conv.weight.shape))


def copy_shared(fc, conv):
    conv.weight = nn.Parameter(fc.weight.view(conv.weight.shape))
    conv.bias = fc.bias


def copy_data_views(fc, conv):
    conv.weight.data = fc.weight.data.view(conv.weight.shape)
    conv.bias.data = fc.bias.data


def copy_weight_only(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(conv.weight.shape))


def copy_transposed(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.T.reshape(conv.weight.shape))
        conv.bias.copy_(fc.bias)


def copy_without_no_grad(fc, conv):
    conv.weight.copy_(fc.weight.reshape(conv.weight.shape))
    conv.bias.copy_(fc.bias)


def copy_hard_coded(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(7, 512, 1, 1))
        conv.bias.copy_(fc.bias)


def copy_returns_new_conv(fc, conv):
    new = nn.Conv2d(fc.in_features, fc.out_features, 1)
    copy_reshape(fc, new)
    return new


@pytest.mark.parametrize(
    "wrong, message",
    [
        (copy_backwards, r"fc was changed: copy from fc into conv, not the other way round"),
        (
            copy_new_parameters,
            r"conv.weight is a new nn.Parameter, so an optimizer \(or a hook\) holding the old one "
            r"would not see the copy: .*in place, conv.weight.copy_\(...\)",
        ),
        (copy_seed_version, r"conv.weight is a new nn.Parameter"),
        (copy_shared, r"conv.weight shares memory with fc.weight, so training one would change the other"),
        (copy_data_views, r"conv.weight shares memory with fc.weight"),
        (copy_weight_only, r"expected conv.bias == fc.bias = .*the bias was not copied"),
        (
            copy_transposed,
            r"conv.weight differs from fc.weight .*fc's numbers in the wrong places.*without "
            r"transposing",
        ),
        (
            copy_without_no_grad,
            r"your code raised RuntimeError: a leaf Variable that requires grad.*wrap the copy "
            r"in `with torch.no_grad\(\):`",
        ),
        (
            copy_hard_coded,
            r"with fc = nn.Linear\(12, 5\) .*raised RuntimeError: .*this check uses fc = "
            r"nn.Linear\(12, 5\), not the notebook's 512 channels and 7 classes: use fc's shapes",
        ),
        (copy_returns_new_conv, r"you returned a new Conv2d, but the conv you were given is unchanged"),
        (returns_none, r"conv.weight differs from fc.weight .*conv.weight was not changed"),
    ],
)
def test_copy_last_layer_names_each_mistake(wrong, message):
    assert_rejected(check_copy_last_layer, wrong, message)


# ----------------------------------------------------------------------------- exercise 5: bilinear kernel


def kernel_arange(factor):
    ramp = 1 - (torch.arange(2 * factor) - (factor - 0.5)).abs() / factor
    return ramp[:, None] * ramp[None, :]


def kernel_outer(factor):
    ramp = 1 - torch.abs(torch.arange(2 * factor, dtype=torch.float32) - factor + 0.5) / factor
    return torch.outer(ramp, ramp)


def kernel_loops(factor):
    kernel = torch.zeros(2 * factor, 2 * factor)
    center = factor - 0.5
    for i in range(2 * factor):
        for j in range(2 * factor):
            kernel[i, j] = (1 - abs(i - center) / factor) * (1 - abs(j - center) / factor)
    return kernel


def kernel_float64(factor):
    return kernel_arange(factor).double()


def kernel_linspace(factor):
    ramp = 1 - torch.linspace(-(factor - 0.5), factor - 0.5, 2 * factor).abs() / factor
    return torch.outer(ramp, ramp)


@pytest.mark.parametrize("answer", [kernel_arange, kernel_outer, kernel_loops, kernel_float64, kernel_linspace])
def test_bilinear_kernel_accepts_every_correct_answer(answer, capsys):
    assert_passes(check_bilinear_kernel, answer, capsys, "bilinear_kernel_2d: right kernels for factors 2, 4 and 8.")


def kernel_centre_at_factor(factor):
    ramp = 1 - (torch.arange(2 * factor) - factor).abs() / factor
    return torch.outer(ramp, ramp)


def kernel_odd(factor, size):
    ramp = 1 - (torch.arange(size) - (size - 1) / 2).abs() / factor
    return torch.outer(ramp, ramp)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f: kernel_arange(f) / kernel_arange(f).sum(), r"wrong scale: the kernel should sum to factor\*\*2 = 4"),
        (kernel_centre_at_factor, r"for factor 2, .*\(the centre is at 2: .*at factor - 0.5 = 1.5\)"),
        (lambda f: torch.roll(kernel_arange(f), (1, 1), dims=(0, 1)), r"the sum is right: check where the centre is"),
        (
            lambda f: 1 - (torch.arange(2 * f) - (f - 0.5)).abs() / f,
            r"expected a torch.Tensor of shape \(4, 4\), got "
            r"shape \(4,\): that is the 1-D ramp",
        ),
        (lambda f: kernel_odd(f, 2 * f - 1), r"got shape \(3, 3\): a kernel of size 3: .*2 \* factor = 4 wide"),
        (lambda f: kernel_odd(f, 2 * f + 1), r"got shape \(5, 5\): a kernel of size 5"),
        (lambda f: kernel_arange(f).numpy(), r"got a numpy.ndarray of shape \(4, 4\): use torch operations"),
    ],
)
def test_bilinear_kernel_names_each_mistake(wrong, message):
    assert_rejected(check_bilinear_kernel, wrong, message)


# ----------------------------------------------------------------------------- exercise 6: skip fusion


def fuse_notebook(coarse, skip, upsample):
    """Align by the layer's geometry: drop (k - s - 2p) // 2 at the top/left, crop or pad at the bottom/right."""
    scores = upsample(coarse)
    k, s, p = upsample.kernel_size[0], upsample.stride[0], upsample.padding[0]
    offset = (k - s - 2 * p) // 2
    height, width = skip.shape[-2:]
    scores = scores[..., offset : offset + height, offset : offset + width]
    scores = F.pad(scores, (0, width - scores.shape[-1], 0, height - scores.shape[-2]), mode="replicate")
    return scores + skip


def fuse_offset_from_sizes(coarse, skip, upsample):
    """The overshoot measured: upsample(coarse)'s size minus coarse's size times the stride."""
    scores = upsample(coarse)
    offset = (scores.shape[2] - coarse.shape[2] * upsample.stride[0]) // 2
    scores = scores[:, :, offset:, offset:][:, :, : skip.shape[2], : skip.shape[3]]
    rows, cols = skip.shape[2] - scores.shape[2], skip.shape[3] - scores.shape[3]
    if rows > 0 or cols > 0:
        scores = F.pad(scores, [0, cols, 0, rows], mode="replicate")
    return skip + scores


def fuse_narrow_match_size(coarse, skip, upsample):
    from course_utils.models import match_size

    scores = upsample(coarse)
    offset = (upsample.kernel_size[0] - upsample.stride[0] - 2 * upsample.padding[0]) // 2
    for dim in (-2, -1):
        scores = scores.narrow(dim, offset, min(skip.shape[dim], scores.shape[dim] - offset))
    return match_size(scores, skip.shape[-2:]) + skip


def fuse_negative_pad(coarse, skip, upsample):
    """F.pad with negative amounts crops: one call drops the offset, another fits the bottom/right."""
    scores = upsample(coarse)
    offset = (upsample.kernel_size[0] - upsample.stride[0] - 2 * upsample.padding[0]) // 2
    scores = F.pad(scores, (-offset, 0, -offset, 0))
    scores = scores[..., : skip.shape[-2], : skip.shape[-1]]
    return (
        F.pad(scores, (0, skip.shape[-1] - scores.shape[-1], 0, skip.shape[-2] - scores.shape[-2]), "replicate") + skip
    )


def fuse_cat_edges(coarse, skip, upsample):
    overshoot = upsample.kernel_size[1] - upsample.stride[1] - 2 * upsample.padding[1]
    scores = upsample(coarse)[..., overshoot // 2 :, overshoot // 2 :][..., : skip.shape[-2], : skip.shape[-1]]
    while scores.shape[-2] < skip.shape[-2]:
        scores = torch.cat([scores, scores[..., -1:, :]], dim=-2)
    while scores.shape[-1] < skip.shape[-1]:
        scores = torch.cat([scores, scores[..., :, -1:]], dim=-1)
    return scores + skip


def fuse_functional(coarse, skip, upsample):
    """The learned layer's own weights through F.conv_transpose2d, rows and columns aligned separately."""
    from course_utils.models import match_size

    scores = F.conv_transpose2d(
        coarse, upsample.weight, upsample.bias, stride=upsample.stride, padding=upsample.padding
    )
    top, left = ((k - s - 2 * p) // 2 for k, s, p in zip(upsample.kernel_size, upsample.stride, upsample.padding))
    return match_size(scores[..., top:, left:], skip.shape[-2:]) + skip


CORRECT_FUSIONS = [
    fuse_notebook,
    fuse_offset_from_sizes,
    fuse_narrow_match_size,
    fuse_negative_pad,
    fuse_cat_edges,
    fuse_functional,
]


@pytest.mark.parametrize("answer", CORRECT_FUSIONS)
def test_skip_fusion_accepts_every_correct_answer(answer, capsys):
    assert_passes(check_skip_fusion, answer, capsys, "fuse_skip: upsample, align by the layer's geometry")


@pytest.mark.parametrize("factor", range(1, 9))
def test_the_courses_bilinear_upsamplers_need_no_offset(factor):
    """k - s - 2p = 0 for every bilinear_upsampler: the offset is 0, and cropping at the bottom/right
    alone (match_size, as VGG11SkipFCN does) is the geometry's alignment for them."""
    from course_utils.models import bilinear_upsampler

    layer = bilinear_upsampler(2, factor)
    k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
    assert k - s - 2 * p == 0
    assert layer(torch.zeros(1, 2, 5, 3)).shape[-2:] == (5 * factor, 3 * factor)


def test_the_unpadded_layer_overshoots_symmetrically():
    """Why the geometry's offset: with the same bilinear weights, the unpadded ConvTranspose2d(4, stride 2)
    gives 2 pixels more than bilinear_upsampler (padding 1), one on each side: dropping
    (k - s - 2p) // 2 = 1 at the top/left lines the two up, dropping none at the bottom/right does not."""
    from course_utils.models import bilinear_upsampler

    padded = bilinear_upsampler(1, 2)
    unpadded = nn.ConvTranspose2d(1, 1, 4, stride=2, bias=False)
    with torch.no_grad():
        unpadded.weight.copy_(padded.weight)
        coarse = torch.rand(1, 1, 3, 4, generator=torch.Generator().manual_seed(0))
        inside, outside = padded(coarse), unpadded(coarse)
    assert outside.shape[-2:] == (8, 10) and inside.shape[-2:] == (6, 8)
    assert torch.allclose(outside[..., 1:7, 1:9], inside)
    assert not torch.allclose(outside[..., :6, :8], inside)
    assert torch.equal(unpadded(torch.ones(1, 1, 3, 3))[0, 0, :, 4], torch.tensor([0.25, 0.75, 1, 1, 1, 1, 0.75, 0.25]))


def fit(scores, skip, where="end", mode="replicate"):
    """A learner's crop/pad to skip's size: at the end (bottom/right), the start, or the centre."""
    for dim in (2, 3):
        excess = scores.shape[dim] - skip.shape[dim]
        if excess > 0:
            start = {"end": 0, "start": excess, "centre": excess // 2}[where]
            scores = scores.narrow(dim, start, skip.shape[dim])
    rows, cols = skip.shape[2] - scores.shape[2], skip.shape[3] - scores.shape[3]
    if rows or cols:
        pads = {
            "end": (0, cols, 0, rows),
            "start": (cols, 0, rows, 0),
            "centre": (cols // 2, cols - cols // 2, rows // 2, rows - rows // 2),
        }
        scores = F.pad(scores, pads[where], mode=mode)
    return scores


def align(scores, skip, upsample, mode="replicate"):
    """The geometry's alignment, with any padding mode: drop the offset, then fit at the bottom/right."""
    offset = (upsample.kernel_size[0] - upsample.stride[0] - 2 * upsample.padding[0]) // 2
    return fit(scores[..., offset:, offset:], skip, mode=mode)


def fuse_symmetric_drop(coarse, skip, upsample):
    """Drops the whole overshoot, half at the top, half at the bottom, then pads: loses a real row."""
    scores = upsample(coarse)
    overshoot = upsample.kernel_size[0] - upsample.stride[0] - 2 * upsample.padding[0]
    before, after = overshoot // 2, overshoot - overshoot // 2
    scores = scores[..., before : scores.shape[-2] - after, before : scores.shape[-1] - after]
    return fit(scores, skip) + skip


def fuse_ignores_padding(coarse, skip, upsample):
    offset = (upsample.kernel_size[0] - upsample.stride[0]) // 2
    return fit(upsample(coarse)[..., offset:, offset:], skip) + skip


def fuse_bottom_right(coarse, skip, upsample):
    """The old rule: crop or pad at the bottom/right only."""
    scores = upsample(coarse)
    height, width = skip.shape[-2:]
    scores = scores[..., :height, :width]
    scores = F.pad(scores, (0, width - scores.shape[-1], 0, height - scores.shape[-2]), mode="replicate")
    return scores + skip


def fuse_pads_top_left(coarse, skip, upsample):
    """Aligned, but F.pad's amounts read as (before, after) the wrong way round: padded at the top/left."""
    scores = upsample(coarse)
    offset = (upsample.kernel_size[0] - upsample.stride[0] - 2 * upsample.padding[0]) // 2
    height, width = skip.shape[-2:]
    scores = scores[..., offset : offset + height, offset : offset + width]
    scores = F.pad(scores, (width - scores.shape[-1], 0, height - scores.shape[-2], 0), mode="replicate")
    return scores + skip


def fuse_match_size(coarse, skip, upsample):
    from course_utils.models import match_size

    return match_size(upsample(coarse), skip.shape[-2:]) + skip


EQUAL_CASE = r"for coarse \(2, 3, 4, 6\), skip \(2, 3, 8, 12\)"
CROP_CASE = r"for coarse \(2, 3, 4, 5\), skip \(2, 3, 8, 10\)"
ODD_CASE = r"for coarse \(2, 3, 3, 4\), skip \(2, 3, 7, 9\)"
PAD_CASE = r"for coarse \(2, 3, 5, 3\), skip \(2, 3, 11, 7\)"
BOTTOM_RIGHT_ONLY = (
    CROP_CASE + r".*the result differs from the reference, upsample\(coarse\) aligned by the layer's geometry plus "
    r"skip, by up to [\d.]+ \(cropped at the bottom/right only: this layer has no padding, so its output overshoots "
    r"by k - s - 2p = 2 pixels, half on each side: drop \(k - s - 2p\) // 2 = 1 at the top/left first\)$"
)


def fuse_no_grad(coarse, skip, upsample):
    with torch.no_grad():
        return fuse_notebook(coarse, skip, upsample)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda c, s, up: c + s,
            r"your code raised RuntimeError: The size of tensor a .*coarse was not upsampled: "
            r"pass it through `upsample`",
        ),
        (
            lambda c, s, up: up(c) + s,
            CROP_CASE + r".*, your code raised RuntimeError.*upsample\(coarse\) is 10x12 "
            r"but skip is 8x10: bring it to skip's size before adding: drop \(k - s - 2p\) // 2 = 1 at the top "
            r"and left",
        ),
        (lambda c, s, up: fit(up(s), c) + c, r"you upsampled skip instead of coarse"),
        (lambda c, s, up: up(s) + s, r"you upsampled skip instead of coarse"),
        (
            lambda c, s, up: fit(F.interpolate(c, scale_factor=2, mode="bilinear"), s) + s,
            r"use the `upsample` layer you are given, upsample\(coarse\): it is learned",
        ),
        (
            lambda c, s, up: F.interpolate(c, size=s.shape[-2:], mode="bilinear") + s,
            r"use the `upsample` layer you are given",
        ),
        (fuse_bottom_right, BOTTOM_RIGHT_ONLY),
        (fuse_match_size, BOTTOM_RIGHT_ONLY),
        (lambda c, s, up: fit(up(c), s) + s, BOTTOM_RIGHT_ONLY),
        (
            lambda c, s, up: fit(up(c), s, "start") + s,
            CROP_CASE + r".*\(cropped at the top/left only: the overshoot, k - s - 2p = 2 pixels, lies half on each "
            r"side: drop \(k - s - 2p\) // 2 = 1",
        ),
        (
            lambda c, s, up: fit(up(c), s, "centre") + s,
            ODD_CASE + r".*\(cropped around the centre, excess // 2 = 0 at the top: where the layer's output lies is "
            r"set by its geometry",
        ),
        (fuse_symmetric_drop, ODD_CASE + r".*\(dropped the overshoot at the bottom too, then padded"),
        (
            fuse_ignores_padding,
            EQUAL_CASE + r".*\(dropped \(k - s\) // 2 = 1 at the top/left, but the padding p = 1 already trims "
            r"2p = 2 pixels",
        ),
        (
            lambda c, s, up: align(up(c), s, up, mode="constant") + s,
            PAD_CASE + r".*\(zero padding: pad by repeating the edge",
        ),
        (lambda c, s, up: align(up(c), s, up, mode="reflect") + s, PAD_CASE + r".*\(reflect padding"),
        (
            fuse_pads_top_left,
            PAD_CASE + r".*\(padded at the top and left: pad at the bottom and right, where pooling dropped",
        ),
        (
            lambda c, s, up: F.interpolate(up(c), size=s.shape[-2:], mode="bilinear") + s,
            CROP_CASE + r".*\(you resized upsample\(coarse\) to skip's size with F.interpolate",
        ),
        (lambda c, s, up: F.interpolate(up(c), size=s.shape[-2:]) + s, r"\(you resized upsample\(coarse\)"),
        (
            lambda c, s, up: torch.cat([align(up(c), s, up), s], dim=1),
            r"got shape \(2, 6, 8, 12\): that is U-Net's concatenation \(torch.cat along channels\); FCN adds",
        ),
        (lambda c, s, up: align(up(c), s, up) * s, r"\(multiplied: FCN adds the two score maps\)"),
        (lambda c, s, up: align(up(c), s, up), EQUAL_CASE + r".*\(skip is missing: add it"),
        (fuse_no_grad, r"no gradient reaches upsample.weight, coarse and skip: .*torch.no_grad\(\)"),
        (lambda c, s, up: fuse_notebook(c.detach(), s, up), r"no gradient reaches coarse:"),
        (lambda c, s, up: fuse_notebook(c, s, up).detach().numpy(), r"got a numpy.ndarray of shape \(2, 3, 8, 12\)"),
    ],
)
def test_skip_fusion_names_each_mistake(wrong, message):
    assert_rejected(check_skip_fusion, wrong, message)


def test_skip_fusion_tells_the_placement_mistakes_apart():
    """Bottom/right, top/left, centre and symmetric-drop crops each get their own hint."""
    answers = [
        fuse_bottom_right,
        lambda c, s, up: fit(up(c), s, "start") + s,
        lambda c, s, up: fit(up(c), s, "centre") + s,
        fuse_symmetric_drop,
        fuse_ignores_padding,
    ]
    hints = {re.sub(r"^.*\) \(", "", assert_rejected(check_skip_fusion, answer, ".")) for answer in answers}
    assert len(hints) == len(answers)


def test_messages_are_distinct_for_distinct_mistakes():
    """Each wrong answer above gets its own message: no two mistake lists share one catch-all."""
    answers = [box_swapped, box_xxyy, box_xywh, box_first_last, box_counts_ignore, box_changes_mask]
    hints = {re.sub(r"^.*?\(", "", assert_rejected(check_mask_to_box, answer, ".")) for answer in answers}
    assert len(hints) == len(answers)


# ----------------------------------------------------------------------------- side effects


@pytest.mark.parametrize(
    "check, answer",
    [
        (check_mask_to_box, box_where),
        (check_backbone, LectureBackbone),
        (check_classifier_head, head_reference),
        (check_copy_last_layer, copy_reshape),
        (check_bilinear_kernel, kernel_arange),
        (check_skip_fusion, fuse_notebook),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_a_check_leaves_the_learners_random_state_alone(check, answer, capsys):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check(answer)
    assert torch.equal(torch.rand(3), expected)
    assert capsys.readouterr().out.startswith("✓")
