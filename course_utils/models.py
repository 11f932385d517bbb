"""VGG11 (BatchNorm) backbone, the classifier built on it, and its conversion into an FCN.

The three public classes follow the course:

    VGG11Backbone          image (N, 3, H, W)  ->  features (N, 8w, H/16, W/16)
    VGG11Classifier        backbone -> pool5 -> global average pooling -> fc_out -> (N, K)
    VGG11FCN               backbone -> conv_out (1x1) -> bilinear upsampling -> (N, K, H, W)

`VGG11FCN.from_classifier` turns a trained classifier into a segmenter: the fully connected
layer becomes a 1x1 convolution holding the same weight *and bias*. The 1x1 convolution is
affine (W v + b), not linear, but the global average's weights sum to 1, so the two commute
all the same: the mean over positions of W v_i + b is W (mean of v_i) + b, that is

    mean over (h, w) of conv_out(features)[:, k, h, w]  ==  fc_out(GAP(features))[:, k]

exactly (up to float rounding). Two things break the equality, and the course shows both:

* a dropped bias: every score map is then off by `fc_out.bias[k]`;
* pool5: the classifier max-pools the features *before* averaging them. Max pooling is not
  linear, so the stride-16 score map's mean equals `fc_out(GAP(backbone(x)))`, not the
  classifier's output `fc_out(GAP(pool5(backbone(x))))`. Build the FCN with `keep_pool5=True`
  (stride 32) and it reproduces the classifier exactly, at half the resolution.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import MIN_IMAGE_SIZE  # smallest image side: pool1..pool5 halve it five times
from .i18n import tr

#: Channels per conv layer at width 64 ("M" is a 2x2 max pool). Same as torchvision's VGG11
#: configuration "A" without the final pool, which the classifier adds as `pool5`.
VGG11_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)

BACKBONE_STRIDE = 16

#: pool3 and pool4 are the 15th and 22nd layers of VGG11Backbone (see forward_stages).
POOL3_END, POOL4_END = 15, 22


def _require_positive_int(name: str, value) -> int:
    """`value` as an int; a ValueError naming `name` unless it is an integer >= 1 (True is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        whole = (isinstance(value, float) and value.is_integer() and value >= 1) or (
            isinstance(value, str) and value.isdigit() and int(value) >= 1
        )
        if whole:
            raise ValueError(
                tr(
                    "{name} must be a positive integer, got {value!r} ({type}): pass {name}={whole}",
                    name=name,
                    value=value,
                    type=type(value).__name__,
                    whole=int(float(value)),
                )
            )
        raise ValueError(
            tr(
                "{name} must be a positive integer, got {value!r} ({type})",
                name=name,
                value=value,
                type=type(value).__name__,
            )
        )
    return int(value)


def require_images(x: torch.Tensor, min_size: int = MIN_IMAGE_SIZE, channels: int = 3) -> None:
    """Raise a clear ValueError unless x is a float batch of images (N, channels, H, W), H, W >= min_size."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(tr("expected a torch.Tensor of images, got {type}", type=type(x).__name__))
    if x.dim() == 3:
        raise ValueError(
            tr(
                "expected a batch of images shaped (N, {channels}, H, W), got shape {shape}"
                " (a single image? add a batch dimension with x.unsqueeze(0))",
                channels=channels,
                shape=tuple(x.shape),
            )
        )
    if x.dim() != 4:
        raise ValueError(
            tr(
                "expected a batch of images shaped (N, {channels}, H, W), got shape {shape}",
                channels=channels,
                shape=tuple(x.shape),
            )
        )
    if x.shape[1] != channels:
        raise ValueError(
            tr(
                "expected {channels} colour channels in dimension 1, got shape {shape}"
                " (channels-last images need x.permute(0, 3, 1, 2))",
                channels=channels,
                shape=tuple(x.shape),
            )
        )
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            tr(
                "images must be at least {min_size}x{min_size} pixels, got {size}",
                min_size=min_size,
                size=tuple(x.shape[-2:]),
            )
        )
    if not x.is_floating_point():
        raise ValueError(tr("expected float images (e.g. x.float() / 255), got dtype {dtype}", dtype=x.dtype))


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """One VGG layer: 3x3 convolution (padding 1, keeps H and W), BatchNorm, ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class VGG11Backbone(nn.Sequential):
    """The 8 convolutional layers of VGG11-BN with the first four max pools (output stride 16).

    Input (N, 3, H, W) -> output (N, 8 * width, H // 16, W // 16); 224 -> 14.

    The layers sit in one flat `nn.Sequential` in the same order as
    `torchvision.models.vgg11_bn().features`, so their state_dict keys ("0.weight",
    "1.running_mean", ...) are the same and torchvision's weights load directly. That model
    ends with a fifth max pool, which holds no parameters; here it lives in the classifier.

    width: channels of the first layer (64 in the paper); every layer scales with it, so
        width=16 gives a 16x cheaper network with the same layers for CPU training.
    """

    def __init__(self, width: int = 64):
        width = _require_positive_int("width", width)
        layers: list[nn.Module] = []
        in_channels = 3
        for item in VGG11_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out_channels = item * width // 64
                layers += conv_bn_relu(in_channels, out_channels)
                in_channels = out_channels
        super().__init__(*layers)
        self.width = width
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_images(x, min_size=BACKBONE_STRIDE)
        return super().forward(x)

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The outputs of pool3 (N, 4w, H/8, W/8), pool4 (N, 8w, H/16, W/16) and the last layer
        (N, 8w, H/16, W/16), for the skip connections of FCN-16s and FCN-8s."""
        require_images(x, min_size=BACKBONE_STRIDE)
        outputs = []
        for index, layer in enumerate(self, start=1):
            x = layer(x)
            if index in (POOL3_END, POOL4_END):
                outputs.append(x)
        return outputs[0], outputs[1], x


class VGG11Classifier(nn.Module):
    """Backbone, pool5, global average pooling and one fully connected layer.

    Input (N, 3, H, W) with H, W >= 32 -> class scores (N, num_classes).
    At width 64 with 7 classes it has 9,229,575 parameters (9,225,984 in the backbone).
    """

    def __init__(self, num_classes: int = 7, width: int = 64):
        super().__init__()
        self.num_classes = _require_positive_int("num_classes", num_classes)
        self.width = _require_positive_int("width", width)
        self.backbone = VGG11Backbone(self.width)
        self.pool5 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc_out = nn.Linear(self.backbone.out_channels, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_images(x)
        features = self.pool5(self.backbone(x))  # (N, C, H/32, W/32)
        pooled = torch.flatten(self.gap(features), 1)  # (N, C)
        return self.fc_out(pooled)  # (N, K)


def copy_fc_to_conv(fc: nn.Linear, conv: nn.Conv2d) -> None:
    """Copy a Linear layer's weight (K, C) and bias (K,) into a 1x1 Conv2d (K, C, 1, 1).

    Afterwards conv(x)[:, :, i, j] == fc(x[:, :, i, j]) at every position (i, j).
    `torch.no_grad()` is needed here, around the in-place copy into parameters that
    require grad; around module *creation* (as in the seed code) it does nothing.
    """
    expected = (fc.out_features, fc.in_features, 1, 1)
    if tuple(conv.weight.shape) != expected:
        raise ValueError(
            tr(
                "conv weight must have shape {expected} to hold fc weight {fc_shape}, got {got}",
                expected=expected,
                fc_shape=tuple(fc.weight.shape),
                got=tuple(conv.weight.shape),
            )
        )
    if (fc.bias is None) != (conv.bias is None):
        raise ValueError(tr("fc and conv must both have a bias or both have none"))
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(expected))
        if fc.bias is not None:
            conv.bias.copy_(fc.bias)


def _require_classifier(classifier) -> nn.Linear:
    """The classifier's fc_out, after checking that it is a VGG11Classifier-like model whose
    fc_out (K, C) fits its backbone's C output channels; a ValueError says what does not fit."""
    for name in ("backbone", "fc_out"):
        if not hasattr(classifier, name):
            raise ValueError(
                tr(
                    "from_classifier needs a VGG11Classifier (with .backbone and .fc_out), "
                    "got {type} without .{attribute}",
                    type=type(classifier).__name__,
                    attribute=name,
                )
            )
    backbone, fc = classifier.backbone, classifier.fc_out
    if not isinstance(backbone, VGG11Backbone) or not isinstance(fc, nn.Linear):
        raise ValueError(
            tr(
                "from_classifier needs a VGG11Classifier whose .backbone is a VGG11Backbone and .fc_out an "
                "nn.Linear, got {backbone_type} and {fc_type}",
                backbone_type=type(backbone).__name__,
                fc_type=type(fc).__name__,
            )
        )
    if fc.in_features != backbone.out_channels:
        raise ValueError(
            tr(
                "classifier.fc_out expects {in_features} input features but the backbone "
                "gives {channels} channels (width {width}): build fc_out as "
                "nn.Linear({channels}, num_classes)",
                in_features=fc.in_features,
                channels=backbone.out_channels,
                width=backbone.width,
            )
        )
    return fc


class VGG11FCN(nn.Module):
    """The classifier as a fully convolutional network: a class score for every pixel.

    Input (N, 3, H, W), any H, W >= 32 -> scores (N, num_classes, H, W).
    `score_map(x)` gives the coarse scores before upsampling, (N, K, H // s, W // s), with
    stride s = 16 (the default, as in the seed's conversion) or s = 32 with keep_pool5=True.
    """

    def __init__(self, num_classes: int = 7, width: int = 64, keep_pool5: bool = False):
        super().__init__()
        self.num_classes = _require_positive_int("num_classes", num_classes)
        self.width = _require_positive_int("width", width)
        self.keep_pool5 = keep_pool5
        self.backbone = VGG11Backbone(self.width)
        self.pool5 = nn.MaxPool2d(kernel_size=2, stride=2) if keep_pool5 else nn.Identity()
        self.conv_out = nn.Conv2d(self.backbone.out_channels, self.num_classes, kernel_size=1)

    @property
    def stride(self) -> int:
        return BACKBONE_STRIDE * (2 if self.keep_pool5 else 1)

    @classmethod
    def from_classifier(cls, classifier: VGG11Classifier, keep_pool5: bool = False) -> VGG11FCN:
        """Build an FCN holding copies of a classifier's weights (the classifier is not changed).

        The backbone (convolutions and BatchNorm statistics) is copied as is; fc_out's weight
        (K, C) and bias (K,) go into the 1x1 conv_out (K, C, 1, 1).

        Same contract as VGG11SkipFCN.from_classifier: every tensor is a copy (none shares
        storage with the classifier), the FCN sits on the classifier's device and starts in its
        train/eval mode, and a classifier whose fc_out does not fit its backbone raises ValueError.
        """
        fc = _require_classifier(classifier)
        fcn = cls(fc.out_features, classifier.backbone.width, keep_pool5)
        fcn.backbone.load_state_dict(classifier.backbone.state_dict())  # copies, buffers included
        copy_fc_to_conv(fc, fcn.conv_out)
        return fcn.to(fc.weight.device).train(classifier.training)

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse class scores (N, K, H // stride, W // stride), before upsampling."""
        require_images(x, min_size=self.stride)
        return self.conv_out(self.pool5(self.backbone(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class scores (N, K, H, W), the score map upsampled bilinearly to x's size."""
        require_images(x)
        scores = self.score_map(x)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ============================================================================ FCN-32s / 16s / 8s

#: Stride of the finest score map of each FCN variant (the final upsampling factor).
FCN_STRIDES = {"32s": 32, "16s": 16, "8s": 8}
FCN_VARIANTS = tuple(FCN_STRIDES)


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights (channels, channels, k, k) that make a ConvTranspose2d upsample bilinearly by f.

    k = 2f - f % 2 (2f for even f, 2f - 1 for odd f), as in the FCN paper's reference code. The
    ramp 1 - |i - c| / f peaks at the centre c = (k - 1) / 2: f - 0.5 for even f (between the
    two middle pixels), f - 1 for odd f (on the middle pixel). Each channel is upsampled on its
    own (zero weights between channels). Used with stride f and padding f // 2, as
    `bilinear_upsampler` does, the result equals F.interpolate(..., scale_factor=f,
    mode="bilinear", align_corners=False) everywhere except a border of about f // 2 pixels,
    where the transposed convolution sees zeros beyond the edge while interpolation repeats
    the edge pixel.
    """
    channels = _require_positive_int("channels", channels)
    factor = _require_positive_int("factor", factor)
    size = 2 * factor - factor % 2
    center = factor - 1 if factor % 2 else factor - 0.5  # == (size - 1) / 2
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor  # (k,)
    kernel = ramp[:, None] * ramp[None, :]
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = kernel
    return weight


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable x`factor` upsampling layer, initialised to bilinear interpolation.

    (N, channels, h, w) -> (N, channels, h * factor, w * factor), for every factor >= 1.
    A transposed convolution gives (h - 1) * stride - 2 * padding + kernel_size rows; with
    stride f and kernel 2f - f % 2 that is h * f when 2 * padding = f - f % 2, so padding f // 2.
    """
    channels = _require_positive_int("channels", channels)
    factor = _require_positive_int("factor", factor)
    weight = bilinear_kernel(channels, factor)
    layer = nn.ConvTranspose2d(
        channels, channels, kernel_size=weight.shape[-1], stride=factor, padding=factor // 2, bias=False
    )
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def match_size(x: torch.Tensor, size, max_difference: int | None = None) -> torch.Tensor:
    """Crop or (edge-)pad x (N, C, h, w) at its bottom/right to spatial `size` (H, W).

    Pooling rounds odd sizes down, so an upsampled map can be a few pixels short of the map it
    is added to (or of the input image); this makes the two line up without resampling.

    max_difference: the most rows or columns by which h, w may differ from H, W. Upsampling a
        stride-s map by f and comparing it with a stride-(s / f) map, rounding can cause at most
        f - 1. A larger difference means the two maps are misaligned (a wrong upsampling factor,
        say), and cropping it away would hide that: it raises ValueError. None: no limit.
    """
    height, width = size
    if max_difference is not None:
        difference = max(abs(x.shape[-2] - height), abs(x.shape[-1] - width))
        if difference > max_difference:
            raise ValueError(
                tr(
                    "match_size: a map of size {size} is {difference} pixels away from "
                    "size {target}, more than pooling's rounding can cause (max_difference="
                    "{max_difference}): check the upsampling factor that produced it",
                    size=tuple(x.shape[-2:]),
                    difference=difference,
                    target=(height, width),
                    max_difference=max_difference,
                )
            )
    x = x[..., :height, :width]
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x


class VGG11SkipFCN(nn.Module):
    """FCN-32s, FCN-16s or FCN-8s (Long et al., 2015) on the VGG11 backbone, with a background class.

    Input (N, 3, H, W), H, W >= 32 -> scores (N, num_classes, H, W), class 0 = background.

    All three keep the classifier's pool5, so their coarsest scores have stride 32:
      32s: scores from pool5, upsampled x32;
      16s: + scores from pool4 (stride 16), after upsampling the stride-32 scores x2;
      8s:  + scores from pool3 (stride 8), after another x2, then upsampled x8.
    Every upsampling is a ConvTranspose2d initialised to bilinear interpolation, and learned.
    Skip scorers start at zero, so at first 16s and 8s only upsample the stride-32 scores (in
    steps); training then teaches the skips to add the detail that pool5 lost.
    """

    def __init__(self, num_classes: int = 8, width: int = 64, variant: str = "8s"):
        super().__init__()
        if variant not in FCN_VARIANTS:
            raise ValueError(
                tr("variant must be one of {variants}, got {variant!r}", variants=FCN_VARIANTS, variant=variant)
            )
        num_classes = _require_positive_int("num_classes", num_classes)
        width = _require_positive_int("width", width)
        self.num_classes, self.width, self.variant = num_classes, width, variant
        self.backbone = VGG11Backbone(width)
        self.pool5 = nn.MaxPool2d(kernel_size=2, stride=2)
        c3, c5 = 4 * width, self.backbone.out_channels
        self.score_pool5 = nn.Conv2d(c5, num_classes, kernel_size=1)
        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(c5, num_classes, kernel_size=1)
            self.up_pool5 = bilinear_upsampler(num_classes, 2)
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(c3, num_classes, kernel_size=1)
            self.up_pool4 = bilinear_upsampler(num_classes, 2)
        for name in ("score_pool4", "score_pool3"):
            if hasattr(self, name):
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)
        self.up_final = bilinear_upsampler(num_classes, self.stride)

    @property
    def stride(self) -> int:
        """Stride of the finest score map, before the final upsampling."""
        return FCN_STRIDES[self.variant]

    @classmethod
    def from_classifier(cls, classifier: VGG11Classifier, variant: str = "8s") -> VGG11SkipFCN:
        """Start from a trained classifier: its backbone, and fc_out as the pool5 scorer.

        Class k of the classifier becomes class k + 1 here; class 0 (background) is new, with
        zero weight and bias, so it is learned from the masks. The backbone (convolutions and
        BatchNorm statistics) is copied as is; fc_out's weight (K, C) and bias (K,) go into rows
        1..K of the 1x1 score_pool5 (K + 1, C, 1, 1).

        Same contract as VGG11FCN.from_classifier: every tensor is a copy (none shares storage
        with the classifier), the FCN sits on the classifier's device and starts in its
        train/eval mode, and a classifier whose fc_out does not fit its backbone raises ValueError.
        """
        fc = _require_classifier(classifier)
        fcn = cls(fc.out_features + 1, classifier.backbone.width, variant)
        fcn.backbone.load_state_dict(classifier.backbone.state_dict())  # copies, buffers included
        with torch.no_grad():
            fcn.score_pool5.weight.zero_()
            fcn.score_pool5.bias.zero_()
            fcn.score_pool5.weight[1:].copy_(fc.weight.reshape(fc.out_features, fc.in_features, 1, 1))
            if fc.bias is not None:
                fcn.score_pool5.bias[1:].copy_(fc.bias)
        return fcn.to(fc.weight.device).train(classifier.training)

    @classmethod
    def from_coarser(cls, coarser: VGG11SkipFCN, variant: str) -> VGG11SkipFCN:
        """Start a finer FCN from a trained coarser one, as the paper trains them in stages:
        FCN-16s from FCN-32s, FCN-8s from FCN-16s (or from FCN-32s).

        Every layer the two share is copied: the backbone, score_pool5 and, from a 16s, its
        score_pool4 and up_pool5. The new skip scorers start at zero and the new upsamplers at
        bilinear, as in __init__; up_final is new too, since its factor (the stride) changes. So
        the finer FCN starts out scoring like the coarser one, its stride-32 scores now upsampled
        in steps, and training only has to teach it what the new skip adds.

        Same contract as from_classifier: copies (no storage shared), the coarser model's device
        and train/eval mode; a model that is not a coarser VGG11SkipFCN raises ValueError.
        """
        if not isinstance(coarser, VGG11SkipFCN):
            raise ValueError(tr("from_coarser needs a VGG11SkipFCN, got {type}", type=type(coarser).__name__))
        if variant not in FCN_VARIANTS:
            raise ValueError(
                tr("variant must be one of {variants}, got {variant!r}", variants=FCN_VARIANTS, variant=variant)
            )
        if FCN_STRIDES[variant] >= coarser.stride:
            raise ValueError(
                tr(
                    "FCN-{variant} is not finer than the FCN-{coarser} it would start from: "
                    "start 16s from 32s, 8s from 16s",
                    variant=variant,
                    coarser=coarser.variant,
                )
            )
        fcn = cls(coarser.num_classes, coarser.width, variant)
        shared = {name: tensor for name, tensor in coarser.state_dict().items() if not name.startswith("up_final.")}
        missing, unexpected = fcn.load_state_dict(shared, strict=False)  # load_state_dict copies
        assert not unexpected and all(name.startswith(("up_", "score_pool")) for name in missing), (missing, unexpected)
        device = next(coarser.parameters()).device
        return fcn.to(device).train(coarser.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel scores (N, num_classes, H, W). Each x2 upsampled map is at most one row and
        column short of the skip it is added to, the final map at most stride - 1 (pooling
        rounds down); match_size refuses anything larger."""
        require_images(x)
        pool3, pool4, conv5 = self.backbone.forward_stages(x)  # strides 8, 16, 16
        return self.scores_from_features(pool3, pool4, self.pool5(conv5), x.shape[-2:])

    def scores_from_features(self, pool3: torch.Tensor, pool4: torch.Tensor, pool5: torch.Tensor, size) -> torch.Tensor:
        """The head alone: per-pixel scores (N, num_classes, H, W) from the backbone's pool3
        (N, 4w, H/8, W/8), pool4 (N, 8w, H/16, W/16) and pool5 (N, 8w, H/32, W/32) outputs, for
        images of spatial `size` (H, W). forward(x) is exactly this on the backbone's features of
        x; notebook 6 trains the head alone, on features computed once and cached."""
        scores = self.score_pool5(pool5)  # (N, K, H/32, W/32)
        if self.variant in ("16s", "8s"):
            up = match_size(self.up_pool5(scores), pool4.shape[-2:], max_difference=1)
            scores = up + self.score_pool4(pool4)  # (N, K, H/16, W/16)
        if self.variant == "8s":
            up = match_size(self.up_pool4(scores), pool3.shape[-2:], max_difference=1)
            scores = up + self.score_pool3(pool3)  # (N, K, H/8, W/8)
        return match_size(self.up_final(scores), tuple(size), max_difference=self.stride - 1)


# ============================================================================ receptive field


def layer_geometry(layer: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) of a Conv2d, MaxPool2d or AvgPool2d, as plain ints; None for any other layer.

    These three numbers are all that a layer does to the geometry of a square map: its output
    side is (size + 2 * padding - kernel) // stride + 1 (rounded down), and each output position
    sees kernel neighbouring input positions, `stride` apart. BatchNorm, ReLU, Dropout, ... keep
    the geometry, so they give None (a container such as nn.Sequential is not a layer either:
    iterate over its layers).

    PyTorch stores each of the three as an int or an (height, width) pair; a pair must be square.
    A ValueError names what this recursion does not describe: a non-square kernel, stride or
    padding, a dilation other than 1, or a pool with ceil_mode=True (it rounds up).
    """
    if not isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return None
    name = type(layer).__name__

    def square(attribute: str, value) -> int:
        if isinstance(value, (tuple, list)):
            if len(set(value)) != 1:
                raise ValueError(
                    tr(
                        "{layer} has a non-square {attribute} {value}: layer_geometry assumes h == w",
                        layer=name,
                        attribute=attribute,
                        value=tuple(value),
                    )
                )
            value = value[0]
        return int(value)

    if getattr(layer, "ceil_mode", False):
        raise ValueError(
            tr("{layer} with ceil_mode=True rounds its output size up: layer_geometry assumes floor", layer=name)
        )
    dilation = getattr(layer, "dilation", 1)  # AvgPool2d has none
    if square("dilation", dilation) != 1:
        raise ValueError(
            tr("{layer} has dilation {dilation}: layer_geometry assumes dilation 1", layer=name, dilation=dilation)
        )
    kernel, stride, padding = square("kernel_size", layer.kernel_size), square("stride", layer.stride), layer.padding
    if padding == "valid":
        padding = 0
    elif padding == "same":  # only allowed with stride 1
        if kernel % 2 == 0:
            raise ValueError(
                tr(
                    "{layer} with padding='same' and an even kernel pads unevenly: give the padding as ints",
                    layer=name,
                )
            )
        padding = (kernel - 1) // 2
    return kernel, stride, square("padding", padding)
