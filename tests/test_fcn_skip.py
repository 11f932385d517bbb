"""FCN-32s/16s/8s: bilinear-initialised upsampling, output sizes, starting from the classifier."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.models import (
    FCN_VARIANTS,
    VGG11Classifier,
    VGG11SkipFCN,
    bilinear_kernel,
    bilinear_upsampler,
    match_size,
)


@pytest.mark.parametrize("factor", [2, 4, 8, 16, 32])
def test_transposed_conv_with_bilinear_kernel_equals_interpolation_away_from_the_border(factor):
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(factor))
    with torch.no_grad():
        learned = bilinear_upsampler(3, factor)(x)
    reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert learned.shape == reference.shape == (2, 3, 5 * factor, 7 * factor)
    border = factor // 2
    inside = (..., slice(border, -border), slice(border, -border))
    assert torch.allclose(learned[inside], reference[inside], atol=1e-5)
    # at the border the transposed convolution sees zeros where interpolation repeats the edge
    assert not torch.allclose(learned[..., 0, :], reference[..., 0, :], atol=1e-3)


def test_bilinear_kernel_keeps_channels_apart_and_preserves_a_constant():
    weight = bilinear_kernel(3, 4)
    assert weight.shape == (3, 3, 8, 8)
    assert torch.count_nonzero(weight[0, 1]) == 0 and torch.count_nonzero(weight[2, 0]) == 0
    with torch.no_grad():
        out = bilinear_upsampler(3, 4)(torch.ones(1, 3, 6, 6))
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.ones(1, 3, 20, 20))


def test_match_size_crops_and_pads():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert match_size(x, (2, 2)).shape == (1, 1, 2, 2)
    padded = match_size(x, (4, 6))
    assert padded.shape == (1, 1, 4, 6) and torch.equal(padded[..., 3, :4], x[..., 2, :])
    assert torch.equal(match_size(x, (3, 4)), x)


@pytest.mark.parametrize("variant", FCN_VARIANTS)
@pytest.mark.parametrize("size", [(32, 32), (64, 64), (100, 75), (47, 161), (128, 96)])
def test_every_variant_labels_every_pixel_of_odd_sizes(variant, size):
    model = VGG11SkipFCN(num_classes=8, width=4, variant=variant).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, *size)).shape == (1, 8, *size)


def test_strides_and_layers_per_variant():
    expected = {"32s": (32, set()), "16s": (16, {"score_pool4", "up_pool5"}),
                "8s": (8, {"score_pool4", "up_pool5", "score_pool3", "up_pool4"})}
    for variant, (stride, skips) in expected.items():
        model = VGG11SkipFCN(width=4, variant=variant)
        names = {name for name, _ in model.named_children()}
        assert model.stride == stride
        assert skips <= names and not ({"score_pool4", "score_pool3"} - skips) & names
        assert model.up_final.stride == (stride, stride)
        for name in skips:
            if name.startswith("score"):
                assert torch.count_nonzero(getattr(model, name).weight) == 0  # skips start silent


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    model = VGG11Classifier(num_classes=7, width=8)
    with torch.no_grad():
        model.fc_out.bias.uniform_(-1, 1)
    return model.eval()


@pytest.mark.parametrize("variant", FCN_VARIANTS)
def test_from_classifier_adds_background_and_keeps_the_classifier_exactly(classifier, variant):
    fcn = VGG11SkipFCN.from_classifier(classifier, variant).eval()
    assert fcn.num_classes == 8
    assert torch.count_nonzero(fcn.score_pool5.weight[0]) == 0 and fcn.score_pool5.bias[0] == 0
    assert torch.equal(fcn.score_pool5.weight[1:].flatten(1), classifier.fc_out.weight)
    assert torch.equal(fcn.score_pool5.bias[1:], classifier.fc_out.bias)
    x = torch.rand(3, 3, 96, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        coarse = fcn.score_pool5(fcn.pool5(fcn.backbone(x)))  # stride 32, as the classifier's pool5
        assert torch.allclose(coarse[:, 1:].mean(dim=(2, 3)), classifier(x), atol=1e-5)


def test_skip_scorers_learn(classifier):
    fcn = VGG11SkipFCN.from_classifier(classifier, "8s")
    x, target = torch.rand(2, 3, 64, 64), torch.randint(0, 8, (2, 64, 64))
    F.cross_entropy(fcn(x), target).backward()
    assert fcn.score_pool3.weight.grad.abs().sum() > 0 and fcn.score_pool4.weight.grad.abs().sum() > 0
    assert fcn.up_final.weight.grad.abs().sum() > 0  # the upsampling is learned too


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant must be one of"):
        VGG11SkipFCN(variant="4s")
    with pytest.raises(ValueError, match="needs a VGG11Classifier"):
        VGG11SkipFCN.from_classifier(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="at least 32x32"):
        VGG11SkipFCN(width=4)(torch.rand(1, 3, 16, 64))
