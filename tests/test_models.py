"""The backbone, the classifier and its conversion into an FCN, checked numerically."""

import ast
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import course_utils
from course_utils.models import (
    FCN_VARIANTS,
    VGG11FCN,
    VGG11Backbone,
    VGG11Classifier,
    VGG11SkipFCN,
    copy_fc_to_conv,
    count_parameters,
    require_images,
)

TOL = dict(rtol=1e-5, atol=1e-5)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = 0.5 + torch.rand(n, generator=generator)
            module.bias.data = 0.2 * torch.randn(n, generator=generator)
            module.running_mean = 0.3 * torch.randn(n, generator=generator)
            module.running_var = 0.5 + torch.rand(n, generator=generator)
    return model


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    model = randomize_batchnorm(VGG11Classifier(num_classes=7, width=8))
    with torch.no_grad():
        model.fc_out.bias.uniform_(-2, 2)  # a bias that matters
    return model.eval()


def images(n=2, h=64, w=64, seed=1):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- sizes and counts


def test_parameter_counts_at_full_width():
    assert count_parameters(VGG11Backbone()) == 9_225_984
    assert count_parameters(VGG11Classifier(num_classes=7)) == 9_229_575
    assert count_parameters(VGG11FCN(num_classes=7)) == 9_229_575  # a 1x1 conv has the FC's parameters


def test_width_scales_every_layer():
    backbone = VGG11Backbone(width=16)
    convs = [m for m in backbone if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64, 128, 128, 128, 128]
    assert backbone.out_channels == 128
    assert VGG11Classifier(width=16).fc_out.in_features == 128


@pytest.mark.parametrize("size, expected", [((224, 224), (14, 14)), ((64, 64), (4, 4)), ((100, 75), (6, 4))])
def test_backbone_has_output_stride_16(size, expected):
    out = VGG11Backbone(width=4)(torch.rand(1, 3, *size))
    assert out.shape == (1, 32, *expected)


def test_torchvision_vgg11_bn_weights_load_and_give_the_same_features():
    reference = torchvision.models.vgg11_bn(weights=None).features.eval()
    randomize_batchnorm(reference)
    ours = VGG11Backbone(width=64)
    ours.load_state_dict(reference.state_dict())  # strict: every key and shape lines up
    ours.eval()
    x = images(1, 64, 64)
    with torch.no_grad():
        # torchvision's features end with pool5, which the course keeps in the classifier
        assert torch.allclose(ours(x), reference[:-1](x), **TOL)
        assert torch.allclose(F.max_pool2d(ours(x), 2), reference(x), **TOL)


def test_classifier_output_shape_and_any_input_size():
    model = VGG11Classifier(num_classes=5, width=4).eval()
    for h, w in [(32, 32), (64, 64), (96, 130)]:
        assert model(torch.rand(3, 3, h, w)).shape == (3, 5)


# ----------------------------------------------------------------------------- FC -> 1x1 conv


def test_from_classifier_copies_weight_and_bias(classifier):
    fcn = VGG11FCN.from_classifier(classifier)
    assert torch.equal(fcn.conv_out.weight.flatten(1), classifier.fc_out.weight)
    assert torch.equal(fcn.conv_out.bias, classifier.fc_out.bias)
    for name, tensor in classifier.backbone.state_dict().items():
        assert torch.equal(fcn.backbone.state_dict()[name], tensor), name


def test_conversion_copies_rather_than_shares(classifier):
    fcn = VGG11FCN.from_classifier(classifier)
    before = classifier.fc_out.bias.clone()
    with torch.no_grad():
        fcn.conv_out.bias.add_(1.0)
    assert torch.equal(classifier.fc_out.bias, before)


def test_from_classifier_keeps_train_or_eval_mode(classifier):
    assert not VGG11FCN.from_classifier(classifier.eval()).training
    assert VGG11FCN.from_classifier(classifier.train()).training


def test_score_map_mean_equals_fc_of_gap_exactly(classifier):
    """The equivalence: mean over space of the stride-16 score map == fc_out(GAP(backbone(x)))."""
    fcn = VGG11FCN.from_classifier(classifier)
    x = images(3, 96, 64)
    with torch.no_grad():
        score_map = fcn.score_map(x)
        assert score_map.shape == (3, 7, 6, 4)
        expected = classifier.fc_out(classifier.backbone(x).mean(dim=(2, 3)))
        assert torch.allclose(score_map.mean(dim=(2, 3)), expected, **TOL)


def test_pool5_breaks_the_equality_unless_the_fcn_keeps_it(classifier):
    x = images(3, 96, 64)
    with torch.no_grad():
        logits = classifier(x)  # fc_out(GAP(pool5(backbone(x))))
        stride16 = VGG11FCN.from_classifier(classifier).score_map(x).mean(dim=(2, 3))
        fcn32 = VGG11FCN.from_classifier(classifier, keep_pool5=True)
        stride32 = fcn32.score_map(x)
    assert fcn32.stride == 32 and stride32.shape == (3, 7, 3, 2)
    assert (stride16 - logits).abs().max() > 1e-2  # max pooling is not linear
    assert torch.allclose(stride32.mean(dim=(2, 3)), logits, **TOL)


def test_a_dropped_bias_shifts_every_score_by_that_bias(classifier):
    """What the seed's copy_last_layer did: weight copied, bias left at its random init."""
    fcn = VGG11FCN.from_classifier(classifier, keep_pool5=True)
    with torch.no_grad():
        fcn.conv_out.bias.zero_()
        means = fcn.score_map(images()).mean(dim=(2, 3))
        logits = classifier(images())
    assert not torch.allclose(means, logits, **TOL)
    assert torch.allclose(logits - means, classifier.fc_out.bias.expand_as(logits), **TOL)


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (100, 75), (224, 224), (47, 161)])
def test_fcn_labels_every_pixel_of_any_size(classifier, size):
    fcn = VGG11FCN.from_classifier(classifier)
    with torch.no_grad():
        out = fcn(torch.rand(2, 3, *size))
    assert out.shape == (2, 7, *size)


def test_fcn_output_is_the_bilinearly_upsampled_score_map(classifier):
    fcn = VGG11FCN.from_classifier(classifier)
    x = images(1, 80, 48)
    with torch.no_grad():
        expected = F.interpolate(fcn.score_map(x), size=(80, 48), mode="bilinear", align_corners=False)
        assert torch.allclose(fcn(x), expected)


def test_copy_fc_to_conv_is_exact_at_every_position():
    torch.manual_seed(0)
    fc, conv = nn.Linear(6, 4), nn.Conv2d(6, 4, kernel_size=1)
    copy_fc_to_conv(fc, conv)
    features = torch.randn(2, 6, 5, 3)
    with torch.no_grad():
        per_position = fc(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        assert torch.allclose(conv(features), per_position, **TOL)


# ----------------------------------------------------------------------------- clear errors


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.rand(3, 64, 64), "add a batch dimension"),
        (torch.rand(2, 1, 64, 64), "3 colour channels"),
        (torch.rand(2, 64, 64, 3), "3 colour channels"),
        (torch.rand(2, 3, 16, 64), "at least 32x32"),
        (torch.randint(0, 255, (2, 3, 64, 64)), "float images"),
        ("not a tensor", "torch.Tensor"),
    ],
)
def test_wrong_inputs_get_a_clear_message(classifier, x, message):
    fcn = VGG11FCN.from_classifier(classifier)
    for model in (classifier, fcn):
        with pytest.raises(ValueError, match=message):
            model(x)


def test_from_classifier_rejects_other_models():
    with pytest.raises(ValueError, match="needs a VGG11Classifier"):
        VGG11FCN.from_classifier(nn.Linear(3, 3))


def test_from_classifier_rejects_a_head_of_the_wrong_width(classifier):
    classifier.fc_out = nn.Linear(100, 7)
    with pytest.raises(ValueError, match="expects 100 input features"):
        VGG11FCN.from_classifier(classifier)


def test_copy_fc_to_conv_rejects_mismatched_layers():
    with pytest.raises(ValueError, match=r"shape \(4, 6, 1, 1\)"):
        copy_fc_to_conv(nn.Linear(6, 4), nn.Conv2d(6, 4, kernel_size=3))
    with pytest.raises(ValueError, match="bias"):
        copy_fc_to_conv(nn.Linear(6, 4), nn.Conv2d(6, 4, kernel_size=1, bias=False))


@pytest.mark.parametrize("width", [0, -8, 2.5])
def test_bad_width_is_a_value_error(width):
    with pytest.raises(ValueError, match="width"):
        VGG11Backbone(width=width)


@pytest.mark.parametrize("model", [VGG11Classifier, VGG11FCN, VGG11SkipFCN])
@pytest.mark.parametrize("num_classes", [0, -3, 7.0, "7", True, None])
def test_bad_num_classes_is_a_value_error_naming_it(model, num_classes):
    with pytest.raises(ValueError, match=f"num_classes must be a positive integer, got {num_classes!r}"):
        model(num_classes=num_classes, width=4)


@pytest.mark.parametrize("model", [VGG11Backbone, VGG11Classifier, VGG11FCN, VGG11SkipFCN])
@pytest.mark.parametrize("width", [0, -8, 2.5, 8.0, "8", True])
def test_bad_width_is_a_value_error_in_every_model(model, width):
    with pytest.raises(ValueError, match=f"width must be a positive integer, got {width!r}"):
        model(width=width)


def test_require_images_accepts_a_float_batch_and_a_smaller_minimum():
    require_images(torch.rand(2, 3, 32, 40))
    require_images(torch.rand(1, 3, 16, 16), min_size=16)
    with pytest.raises(ValueError, match="at least 32x32"):
        require_images(torch.rand(1, 3, 16, 16))


# ----------------------------------------------------------------------------- one contract for both FCNs
#
# VGG11FCN.from_classifier and VGG11SkipFCN.from_classifier promise the same: copies of every
# tensor (never shared storage), the classifier's device and train/eval mode, and a ValueError
# for a classifier whose fc_out does not fit its backbone.

FCN_CLASSES = [VGG11FCN, VGG11SkipFCN]


def head_of(fcn: nn.Module) -> nn.Conv2d:
    """The 1x1 conv that received fc_out: conv_out, or the skip FCN's score_pool5."""
    return fcn.conv_out if isinstance(fcn, VGG11FCN) else fcn.score_pool5


def storages(module: nn.Module) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()] if t.numel()}


@pytest.mark.parametrize("fcn_class", FCN_CLASSES)
def test_from_classifier_copies_the_fc_weight_into_the_1x1_conv(classifier, fcn_class):
    fcn = fcn_class.from_classifier(classifier)
    rows = slice(None) if fcn_class is VGG11FCN else slice(1, None)  # the skip FCN adds background first
    conv = head_of(fcn)
    assert conv.weight.shape[-2:] == (1, 1)
    assert torch.equal(conv.weight[rows].flatten(1), classifier.fc_out.weight)
    assert torch.equal(conv.bias[rows], classifier.fc_out.bias)
    # a copy: changing the FCN's 1x1 weight leaves the classifier's fc_out as it was
    before = classifier.fc_out.weight.clone()
    with torch.no_grad():
        conv.weight.mul_(-2.0).add_(1.0)
    assert torch.equal(classifier.fc_out.weight, before)


@pytest.mark.parametrize("fcn_class", FCN_CLASSES)
def test_from_classifier_shares_no_storage_with_the_classifier(classifier, fcn_class):
    fcn = fcn_class.from_classifier(classifier)
    assert not storages(fcn) & storages(classifier)
    before = {name: t.clone() for name, t in classifier.state_dict().items()}
    with torch.no_grad():
        for tensor in [*fcn.parameters(), *fcn.buffers()]:
            tensor.add_(1)
    for name, tensor in classifier.state_dict().items():
        assert torch.equal(tensor, before[name]), f"changing the FCN changed the classifier's {name}"


@pytest.mark.parametrize("fcn_class", FCN_CLASSES)
def test_from_classifier_copies_the_batchnorm_running_statistics(classifier, fcn_class):
    """The fixture's BatchNorm statistics are random, so a fresh (mean 0, var 1) FCN differs."""
    fcn = fcn_class.from_classifier(classifier)
    ours = fcn.backbone.state_dict()
    for name, tensor in classifier.backbone.state_dict().items():  # running_mean/var included
        assert torch.equal(ours[name], tensor), name
    x = images(2, 64, 64)
    with torch.no_grad():  # eval mode uses the running statistics: features agree exactly
        assert torch.equal(fcn.backbone(x), classifier.backbone(x))


@pytest.mark.parametrize("fcn_class", FCN_CLASSES)
def test_from_classifier_keeps_train_or_eval_mode_in_every_module(classifier, fcn_class):
    for training in (False, True):
        fcn = fcn_class.from_classifier(classifier.train(training))
        assert {m.training for m in fcn.modules()} == {training}


@pytest.mark.parametrize("fcn_class", FCN_CLASSES)
def test_from_classifier_keeps_the_cpu_device_and_float32(classifier, fcn_class):
    fcn = fcn_class.from_classifier(classifier)
    assert {(t.device.type, t.dtype) for t in fcn.parameters()} == {("cpu", torch.float32)}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fcn_class", FCN_CLASSES)
def test_from_classifier_keeps_the_cuda_device(classifier, fcn_class):
    fcn = fcn_class.from_classifier(classifier.cuda())
    assert {t.device.type for t in [*fcn.parameters(), *fcn.buffers()]} == {"cuda"}
    assert not storages(fcn) & storages(classifier)


@pytest.mark.parametrize("fcn_class", FCN_CLASSES)
def test_from_classifier_rejects_other_models_and_a_head_of_the_wrong_width(classifier, fcn_class):
    with pytest.raises(ValueError, match="needs a VGG11Classifier"):
        fcn_class.from_classifier(nn.Linear(3, 3))
    classifier.fc_out = nn.Linear(100, 7)
    with pytest.raises(ValueError, match=r"fc_out expects 100 input features .* gives 64 channels"):
        fcn_class.from_classifier(classifier)
    classifier.fc_out = nn.Conv2d(64, 7, 1)
    with pytest.raises(ValueError, match="nn.Linear, got VGG11Backbone and Conv2d"):
        fcn_class.from_classifier(classifier)


# ----------------------------------------------------------------------------- one source for each constant

PACKAGE = Path(course_utils.__file__).parent
IGNORE_LABEL = 255  # the value of course_utils.data.IGNORE_INDEX; the only other place it is typed


def package_trees() -> dict[str, ast.Module]:
    """{path relative to the package: parsed source} for every module of course_utils."""
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_constant_scan_sees_the_whole_package():
    assert {"data.py", "models.py", "metrics.py", "segment.py"} <= set(package_trees())
    assert course_utils.data.IGNORE_INDEX == IGNORE_LABEL


@pytest.mark.parametrize(
    "name, home",
    [
        ("MIN_IMAGE_SIZE", "data.py"),
        ("IGNORE_INDEX", "data.py"),
        ("FCN_STRIDES", "models.py"),
        ("FCN_VARIANTS", "models.py"),
    ],
)
def test_each_constant_is_defined_in_one_module_only(name, home):
    """Other modules import it (`from .data import MIN_IMAGE_SIZE`) instead of retyping it."""
    defined_in = [
        path
        for path, tree in package_trees().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id == name
    ]
    assert defined_in == [home]


def test_the_ignore_label_is_not_retyped_as_255():
    """No `ignore_index=255` default, keyword or `== 255` comparison outside data.py: use IGNORE_INDEX.

    (255 as a colour or as the uint8 maximum, e.g. `image * 255`, is not the ignore label.)
    """

    def is_label(node):
        return isinstance(node, ast.Constant) and type(node.value) is int and node.value == IGNORE_LABEL

    found = []
    for path, tree in package_trees().items():
        if path == "data.py":
            continue
        for node in ast.walk(tree):
            candidates = []
            if isinstance(node, ast.arguments):
                candidates = [*node.defaults, *node.kw_defaults]
            elif isinstance(node, ast.keyword):
                candidates = [node.value]
            elif isinstance(node, ast.Compare):
                candidates = [node.left, *node.comparators]
            found += [f"{path}:{c.lineno}" for c in candidates if c is not None and is_label(c)]
            # the scoring modules never need the number itself
            if path in ("models.py", "metrics.py", "segment.py") and is_label(node):
                found.append(f"{path}:{node.lineno}")
    assert not found, f"255 retyped where IGNORE_INDEX from course_utils.data belongs: {sorted(set(found))}"


def test_fcn_variants_and_strides_are_not_retyped():
    """One {variant: stride} mapping, FCN_STRIDES in models.py; FCN_VARIANTS is derived from it."""
    assert FCN_VARIANTS == tuple(course_utils.models.FCN_STRIDES) == ("32s", "16s", "8s")
    variants = set(FCN_VARIANTS)
    maps, tuples = [], []
    for path, tree in package_trees().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Dict)
                and node.keys
                and {k.value for k in node.keys if isinstance(k, ast.Constant)} == variants
            ):
                maps.append(f"{path}:{node.lineno}")
            if (
                isinstance(node, (ast.Tuple, ast.List, ast.Set))
                and node.elts
                and all(isinstance(e, ast.Constant) and e.value in variants for e in node.elts)
                and len(node.elts) == len(variants)
            ):
                tuples.append(f"{path}:{node.lineno}")
    assert len(maps) == 1 and maps[0].startswith("models.py:"), f"variant -> stride mappings: {maps}"
    assert not tuples, f"variant tuples retyped instead of importing FCN_VARIANTS: {tuples}"
