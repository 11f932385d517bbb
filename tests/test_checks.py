"""Every self-check accepts the right answer and rejects typical wrong ones with a clear message."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.checks import (
    SelfCheckError,
    check_backbone,
    check_classifier_head,
    check_copy_last_layer,
    check_mask_to_box,
)
from course_utils.models import VGG11Backbone, conv_bn_relu


def not_written(*args):
    raise NotImplementedError


# ----------------------------------------------------------------------------- mask_to_box


def box_right(mask):
    rows, cols = torch.where((mask != 0) & (mask != 255))
    return torch.stack([cols.min(), rows.min(), cols.max(), rows.max()])


def box_swapped(mask):
    rows, cols = torch.where((mask != 0) & (mask != 255))
    return torch.stack([rows.min(), cols.min(), rows.max(), cols.max()])


def box_exclusive(mask):
    return box_right(mask) + torch.tensor([0, 0, 1, 1])


def box_counts_ignore(mask):
    rows, cols = torch.where(mask != 0)
    return torch.stack([cols.min(), rows.min(), cols.max(), rows.max()])


def box_crashes(mask):
    return mask.nonzero()[10**6]  # an index error, as a learner's code might raise


def test_mask_to_box_accepts_a_right_answer(capsys):
    check_mask_to_box(box_right)
    assert capsys.readouterr().out.startswith("✓ mask_to_box: all 5 test masks")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (box_swapped, r"expected \[20, 5, 49, 11\], got \[5, 20, 11, 49\] \(x and y are swapped"),
        (box_exclusive, r"one too large"),
        (box_counts_ignore, r"ignored \(255\).*'ignore', not part of the object"),
        (box_crashes, r"raised IndexError"),
        (lambda mask: [1, 2, 3], r"expected 4 numbers"),
        (not_written, r"not written yet"),
    ],
)
def test_mask_to_box_rejects_wrong_code(wrong, message):
    with pytest.raises(SelfCheckError, match=message):
        check_mask_to_box(wrong)


# ----------------------------------------------------------------------------- backbone


def backbone_without_batchnorm(width):
    layers, channels = [], 3
    for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512):
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item * width // 64, 3, padding=1), nn.ReLU()]
            channels = item * width // 64
    return nn.Sequential(*layers)


def backbone_with_pool5(width):
    return nn.Sequential(*VGG11Backbone(width), nn.MaxPool2d(2))


def backbone_relu_before_bn(width):
    layers, channels = [], 3
    for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512):
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            out = item * width // 64
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(out)]
            channels = out
    return nn.Sequential(*layers)


def backbone_fixed_width(width):
    return VGG11Backbone(64)


class SeedStyleBackbone(nn.Module):
    """Named layers, as in the lecture's code: a right answer with different attribute names."""

    def __init__(self, width):
        super().__init__()
        c = [width, 2 * width, 4 * width, 8 * width]
        self.block1 = nn.Sequential(*conv_bn_relu(3, c[0]))
        self.block2 = nn.Sequential(*conv_bn_relu(c[0], c[1]))
        self.block3 = nn.Sequential(*conv_bn_relu(c[1], c[2]), *conv_bn_relu(c[2], c[2]))
        self.block4 = nn.Sequential(*conv_bn_relu(c[2], c[3]), *conv_bn_relu(c[3], c[3]))
        self.block5 = nn.Sequential(*conv_bn_relu(c[3], c[3]), *conv_bn_relu(c[3], c[3]))

    def forward(self, x):
        for block in (self.block1, self.block2, self.block3, self.block4):
            x = F.max_pool2d(block(x), 2)
        return self.block5(x)


def test_backbone_check_accepts_the_reference_and_a_differently_named_answer(capsys):
    check_backbone(VGG11Backbone)
    check_backbone(SeedStyleBackbone)
    assert capsys.readouterr().out.count("✓ VGG11 backbone: 9,225,984 parameters") == 2


@pytest.mark.parametrize(
    "wrong, message",
    [
        (backbone_without_batchnorm, r"expected 9,225,984 parameters at width 64, got 9,220,480 \(difference -5,504"),
        (backbone_with_pool5, r"expected output \(2, 64, 6, 4\), got \(2, 64, 3, 2\)"),
        (backbone_relu_before_bn, r"same weights, different outputs"),
        (backbone_fixed_width, r"tensor #0 \(0.weight\) has shape \(64, 3, 3, 3\), expected \(8, 3, 3, 3\)"),
        (not_written, r"not written yet"),
    ],
)
def test_backbone_check_rejects_wrong_code(wrong, message):
    with pytest.raises(SelfCheckError, match=message):
        check_backbone(wrong)


# ----------------------------------------------------------------------------- classifier head


def head_right(features, fc):
    return fc(F.max_pool2d(features, 2).mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f, fc: fc(f.mean(dim=(2, 3))), r"pool5 is missing"),
        (lambda f, fc: fc(F.max_pool2d(f, 2).amax(dim=(2, 3))), r"global \*max\* pooling"),
        (lambda f, fc: F.max_pool2d(f, 2).mean(dim=(2, 3)), r"expected scores of shape \(2, 5\), got \(2, 12\)"),
        (lambda f, fc: fc(f.flatten(1)), r"raised RuntimeError"),
        (not_written, r"not written yet"),
    ],
)
def test_classifier_head_check(wrong, message, capsys):
    check_classifier_head(head_right)
    assert "✓ classifier head" in capsys.readouterr().out
    with pytest.raises(SelfCheckError, match=message):
        check_classifier_head(wrong)


# ----------------------------------------------------------------------------- copy_last_layer


def copy_right(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(conv.weight.shape))
        conv.bias.copy_(fc.bias)


def copy_seed_version(fc, conv):
    """The lecture's copy_last_layer: the weight only, and the bias forgotten."""
    conv.weight = nn.Parameter(fc.weight.detach().clone().reshape(conv.weight.shape))


def copy_shared(fc, conv):
    conv.weight = nn.Parameter(fc.weight.view(conv.weight.shape))
    conv.bias = fc.bias


def copy_hard_coded(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(7, 16, 1, 1))
        conv.bias.copy_(fc.bias)


def copy_backwards(fc, conv):
    with torch.no_grad():
        fc.weight.copy_(conv.weight.flatten(1))
        fc.bias.copy_(conv.bias)


def test_copy_last_layer_accepts_the_right_copy(capsys):
    check_copy_last_layer(copy_right)
    assert "✓ copy_last_layer: weight and bias copied" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (copy_seed_version, r"expected conv.bias == fc.bias = .*the bias was not copied"),
        (copy_shared, r"shares memory with fc"),
        (copy_hard_coded, r"with fc = nn.Linear\(10, 3\) it raised RuntimeError"),
        (copy_backwards, r"conv.weight differs from fc.weight|fc was changed"),
        (not_written, r"not written yet"),
    ],
)
def test_copy_last_layer_rejects_wrong_code(wrong, message):
    with pytest.raises(SelfCheckError, match=message):
        check_copy_last_layer(wrong)


# ----------------------------------------------------------------------------- bilinear kernel


def kernel_right(factor):
    ramp = 1 - (torch.arange(2 * factor) - (factor - 0.5)).abs() / factor
    return ramp[:, None] * ramp[None, :]


def test_bilinear_kernel_check_accepts_the_right_kernel(capsys):
    from course_utils.checks import check_bilinear_kernel

    check_bilinear_kernel(kernel_right)
    assert "✓ bilinear_kernel_2d" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f: kernel_right(f) / kernel_right(f).sum(), r"wrong scale: the kernel should sum to factor\*\*2 = 4"),
        (lambda f: torch.roll(kernel_right(f), (1, 1), dims=(0, 1)), r"the sum is right: check where the centre is"),
        (lambda f: torch.ones(2 * f - 1, 2 * f - 1), r"expected a kernel of shape \(4, 4\), got \(3, 3\)"),
        (not_written, r"not written yet"),
    ],
)
def test_bilinear_kernel_check_rejects_wrong_code(wrong, message):
    from course_utils.checks import check_bilinear_kernel

    with pytest.raises(SelfCheckError, match=message):
        check_bilinear_kernel(wrong)
