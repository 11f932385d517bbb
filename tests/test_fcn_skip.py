"""FCN-32s/16s/8s: bilinear-initialised upsampling, output sizes, starting from the classifier."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.models import (
    FCN_STRIDES,
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
    expected = {
        "32s": (32, set()),
        "16s": (16, {"score_pool4", "up_pool5"}),
        "8s": (8, {"score_pool4", "up_pool5", "score_pool3", "up_pool4"}),
    }
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


def trained_like(fcn):
    """`fcn` with every parameter moved off its start (as training would), in eval mode."""
    with torch.no_grad():
        for parameter in fcn.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return fcn.eval()


@pytest.mark.parametrize("coarse, fine", [("32s", "16s"), ("16s", "8s"), ("32s", "8s")])
def test_from_coarser_copies_every_shared_layer_and_starts_the_new_ones_fresh(classifier, coarse, fine):
    torch.manual_seed(2)
    coarser = trained_like(VGG11SkipFCN.from_classifier(classifier, coarse))
    finer = VGG11SkipFCN.from_coarser(coarser, fine)
    assert finer.variant == fine and finer.num_classes == coarser.num_classes and finer.width == coarser.width
    old, new = coarser.state_dict(), finer.state_dict()
    shared = [name for name in old if name in new and not name.startswith("up_final.")]
    assert any(name.startswith("backbone.") for name in shared) and "score_pool5.weight" in shared
    for name in shared:
        assert torch.equal(new[name], old[name]), name
        assert new[name].data_ptr() != old[name].data_ptr(), f"{name} shares storage"
    fresh = VGG11SkipFCN(coarser.num_classes, coarser.width, fine).state_dict()
    for name in new:
        if name not in shared:  # new skip scorers at zero, new upsamplers bilinear, up_final for the new stride
            assert torch.equal(new[name], fresh[name]), name
    assert not finer.training  # the coarser model's mode


def test_a_16s_from_a_32s_starts_out_scoring_like_it(classifier):
    """The new pool4 scorer is zero, so FCN-16s only upsamples the stride-32 scores, in two steps
    (x2, then x16) instead of one (x32): about the same map, not bit for bit."""
    torch.manual_seed(3)
    fcn32 = trained_like(VGG11SkipFCN.from_classifier(classifier, "32s"))
    with torch.no_grad():
        fcn32.up_final.weight.copy_(bilinear_kernel(fcn32.num_classes, 32))  # as initialised
    fcn16 = VGG11SkipFCN.from_coarser(fcn32, "16s")
    x = torch.rand(2, 3, 128, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a, b = fcn32(x), fcn16(x)
    assert a.shape == b.shape
    inside = (..., slice(32, -32), slice(32, -32))
    assert (a[inside] - b[inside]).abs().max() < 0.1 * a.abs().max()
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.9


def test_from_coarser_refuses_what_is_not_coarser(classifier):
    fcn16 = VGG11SkipFCN.from_classifier(classifier, "16s")
    for variant in ("32s", "16s"):
        with pytest.raises(ValueError, match="not finer than the FCN-16s"):
            VGG11SkipFCN.from_coarser(fcn16, variant)
    with pytest.raises(ValueError, match="needs a VGG11SkipFCN"):
        VGG11SkipFCN.from_coarser(classifier, "8s")
    with pytest.raises(ValueError, match="variant must be one of"):
        VGG11SkipFCN.from_coarser(fcn16, "4s")


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant must be one of"):
        VGG11SkipFCN(variant="4s")
    with pytest.raises(ValueError, match="needs a VGG11Classifier"):
        VGG11SkipFCN.from_classifier(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="at least 32x32"):
        VGG11SkipFCN(width=4)(torch.rand(1, 3, 16, 64))


# ----------------------------------------------------------------------------- every factor, odd ones too


def todays_even_kernel(channels, factor):
    """bilinear_kernel as it was before odd factors were fixed; trained checkpoints start from it."""
    size, center = 2 * factor, factor - 0.5
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = ramp[:, None] * ramp[None, :]
    return weight


@pytest.mark.parametrize("factor", [2, 4, 6, 8, 16, 32])
def test_even_factor_kernels_are_bit_identical_to_before(factor):
    assert torch.equal(bilinear_kernel(3, factor), todays_even_kernel(3, factor))
    layer = bilinear_upsampler(3, factor)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((2 * factor,) * 2, (factor,) * 2, (factor // 2,) * 2)


def test_factor_two_kernel_by_hand():
    ramp = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.equal(bilinear_kernel(1, 2)[0, 0], ramp[:, None] * ramp[None, :])


@pytest.mark.parametrize(
    "factor, ramp", [(1, [1.0]), (3, [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3]), (5, [0.2, 0.4, 0.6, 0.8, 1, 0.8, 0.6, 0.4, 0.2])]
)
def test_odd_factor_kernel_has_size_2f_minus_1_centred_on_its_middle_pixel(factor, ramp):
    ramp = torch.tensor(ramp)
    kernel = bilinear_kernel(2, factor)
    assert kernel.shape == (2, 2, 2 * factor - 1, 2 * factor - 1)
    assert torch.allclose(kernel[1, 1], ramp[:, None] * ramp[None, :])
    assert torch.count_nonzero(kernel[0, 1]) == 0
    assert kernel[0, 0].sum().item() == pytest.approx(factor**2)  # a constant stays constant


@pytest.mark.parametrize("factor", range(1, 9))
@pytest.mark.parametrize("size", [(5, 7), (6, 4), (1, 1), (2, 9)])
def test_upsampler_output_is_exactly_n_times_the_factor(factor, size):
    with torch.no_grad():
        out = bilinear_upsampler(2, factor)(torch.rand(1, 2, *size))
    assert out.shape == (1, 2, size[0] * factor, size[1] * factor)


@pytest.mark.parametrize("factor", range(1, 9))
@pytest.mark.parametrize("size", [(5, 7), (6, 4)])
def test_upsampler_equals_interpolation_away_from_the_border_for_every_factor(factor, size):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(factor))
    with torch.no_grad():
        learned = bilinear_upsampler(3, factor)(x)
    reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    b = factor // 2  # border where the transposed convolution sees zeros beyond the edge
    inside = (..., slice(b, learned.shape[-2] - b), slice(b, learned.shape[-1] - b))
    assert torch.allclose(learned[inside], reference[inside], atol=1e-5)
    if factor == 1:
        assert torch.equal(learned, x)


@pytest.mark.parametrize("function", [bilinear_kernel, bilinear_upsampler])
@pytest.mark.parametrize("factor", [0, -2, 2.0, 1.5, "2", True, None])
def test_bad_factor_is_a_value_error_naming_it(function, factor):
    with pytest.raises(ValueError, match=f"factor must be a positive integer, got {factor!r}"):
        function(3, factor)


@pytest.mark.parametrize("function", [bilinear_kernel, bilinear_upsampler])
@pytest.mark.parametrize("channels", [0, -1, 3.0, "3"])
def test_bad_channels_is_a_value_error_naming_it(function, channels):
    with pytest.raises(ValueError, match=f"channels must be a positive integer, got {channels!r}"):
        function(channels, 2)


# ----------------------------------------------------------------------------- fusion sizes


def test_match_size_refuses_more_than_rounding_can_explain():
    x = torch.zeros(1, 1, 8, 8)
    assert match_size(x, (7, 9), max_difference=1).shape == (1, 1, 7, 9)
    assert match_size(x, (1, 1)).shape == (1, 1, 1, 1)  # no limit unless asked
    with pytest.raises(ValueError, match=r"4 pixels away from size \(4, 8\).*max_difference=1.*upsampling factor"):
        match_size(x, (4, 8), max_difference=1)


def randomize_skip_fcn(model: VGG11SkipFCN, seed: int = 0) -> VGG11SkipFCN:
    """Non-zero skip scorers and a bias, so that every path changes the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("score_pool5", "score_pool4", "score_pool3"):
            if hasattr(model, name):
                conv = getattr(model, name)
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.2)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator))
    return model.eval()


def fit(x, size):
    """Crop, or pad by repeating the edge, at the bottom/right: written out, not match_size."""
    x = x[..., : size[0], : size[1]]
    rows, cols = size[0] - x.shape[-2], size[1] - x.shape[-1]
    assert 0 <= rows < 8 and 0 <= cols < 8  # rounding down can cost at most stride - 1 rows
    return F.pad(x, (0, cols, 0, rows), mode="replicate")


@pytest.mark.parametrize("size", [(64, 64), (100, 75), (47, 161)])
def test_fcn8s_forward_by_hand_from_its_own_layers(size):
    """Stride-32 scores x2 + pool4 scores, x2 + pool3 scores, x8: each upsampling has stride 2, 2, 8
    and its output is written out with F.conv_transpose2d, independently of the module's forward."""
    torch.manual_seed(0)
    model = randomize_skip_fcn(VGG11SkipFCN(num_classes=5, width=4, variant="8s"))
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))

    def up(layer, scores, factor):
        return F.conv_transpose2d(scores, layer.weight, stride=factor, padding=factor // 2)

    with torch.no_grad():
        features = x
        stages = {}
        for index, layer in enumerate(model.backbone, start=1):
            features = layer(features)
            stages[index] = features
        pool3, pool4 = stages[15], stages[22]  # after the 3rd and 4th max pools
        assert pool3.shape[-2:] == (size[0] // 8, size[1] // 8)
        assert pool4.shape[-2:] == (size[0] // 16, size[1] // 16)
        pool5 = F.max_pool2d(features, 2)
        scores = model.score_pool5(pool5)  # stride 32
        up5 = up(model.up_pool5, scores, 2)
        assert up5.shape[-2:] == (2 * (size[0] // 32), 2 * (size[1] // 32))
        scores = fit(up5, pool4.shape[-2:]) + model.score_pool4(pool4)  # stride 16
        up4 = up(model.up_pool4, scores, 2)
        assert up4.shape[-2:] == (2 * (size[0] // 16), 2 * (size[1] // 16))
        scores = fit(up4, pool3.shape[-2:]) + model.score_pool3(pool3)  # stride 8
        expected = fit(up(model.up_final, scores, 8), size)
        assert torch.allclose(model(x), expected, atol=1e-5)


@pytest.mark.parametrize("variant", FCN_VARIANTS)
@pytest.mark.parametrize("size", [(32, 32), (100, 75), (47, 161)])
def test_each_upsampling_comes_within_rounding_of_the_map_it_meets(variant, size):
    """Every upsampled map is its input times its factor, at most factor - 1 short of its partner."""
    model = VGG11SkipFCN(num_classes=3, width=4, variant=variant).eval()
    seen = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: seen.update({name: (inputs[0].shape, output.shape)})
        )
        for name in ("up_pool5", "up_pool4", "up_final")
        if hasattr(model, name)
    ]
    with torch.no_grad():
        model(torch.rand(1, 3, *size))
    for hook in hooks:
        hook.remove()
    factors = {"up_pool5": 2, "up_pool4": 2, "up_final": FCN_STRIDES[variant]}
    partners = {"up_pool5": 16, "up_pool4": 8, "up_final": 1}  # stride of the map each one meets
    assert (
        set(seen)
        == {"32s": {"up_final"}, "16s": {"up_pool5", "up_final"}, "8s": {"up_pool5", "up_pool4", "up_final"}}[variant]
    )
    for name, (before, after) in seen.items():
        f = factors[name]
        assert after[-2:] == (before[-2] * f, before[-1] * f), name
        partner = (size[0] // partners[name], size[1] // partners[name])
        assert all(0 <= p - a < f for p, a in zip(partner, after[-2:])), (name, after, partner)
