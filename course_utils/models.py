"""VGG11 (BatchNorm) backbone, the classifier built on it, and its conversion into an FCN.

The three public classes follow the course:

    VGG11Backbone          image (N, 3, H, W)  ->  features (N, 8w, H/16, W/16)
    VGG11Classifier        backbone -> pool5 -> global average pooling -> fc_out -> (N, K)
    VGG11FCN               backbone -> conv_out (1x1) -> bilinear upsampling -> (N, K, H, W)

`VGG11FCN.from_classifier` turns a trained classifier into a segmenter: the fully connected
layer becomes a 1x1 convolution holding the same weight *and bias*. Because the 1x1
convolution and the global average are both linear, they commute:

    mean over (h, w) of conv_out(features)[:, k, h, w]  ==  fc_out(GAP(features))[:, k]

exactly (up to float rounding). Two things break the equality, and the course shows both:

* a dropped bias: every score map is then off by `fc_out.bias[k]`;
* pool5: the classifier max-pools the features *before* averaging them. Max pooling is not
  linear, so the stride-16 score map's mean equals `fc_out(GAP(backbone(x)))`, not the
  classifier's output `fc_out(GAP(pool5(backbone(x))))`. Build the FCN with `keep_pool5=True`
  (stride 32) and it reproduces the classifier exactly, at half the resolution.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Channels per conv layer at width 64 ("M" is a 2x2 max pool). Same as torchvision's VGG11
#: configuration "A" without the final pool, which the classifier adds as `pool5`.
VGG11_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)

#: Smallest image side the networks accept: pool1..pool4 and pool5 halve it five times.
MIN_IMAGE_SIZE = 32

BACKBONE_STRIDE = 16

#: pool3 and pool4 are the 15th and 22nd layers of VGG11Backbone (see forward_stages).
POOL3_END, POOL4_END = 15, 22


def check_images(x: torch.Tensor, min_size: int = MIN_IMAGE_SIZE, channels: int = 3) -> None:
    """Raise a clear ValueError unless x is a float batch of images (N, channels, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor of images, got {type(x).__name__}")
    if x.dim() != 4:
        hint = " (a single image? add a batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(
            f"expected a batch of images shaped (N, {channels}, H, W), got shape {tuple(x.shape)}{hint}"
        )
    if x.shape[1] != channels:
        raise ValueError(
            f"expected {channels} colour channels in dimension 1, got shape {tuple(x.shape)}"
            " (channels-last images need x.permute(0, 3, 1, 2))"
        )
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"images must be at least {min_size}x{min_size} pixels, got {tuple(x.shape[-2:])}"
        )
    if not x.is_floating_point():
        raise ValueError(f"expected float images (e.g. x.float() / 255), got dtype {x.dtype}")


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
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
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
        check_images(x, min_size=BACKBONE_STRIDE)
        return super().forward(x)

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The outputs of pool3 (N, 4w, H/8, W/8), pool4 (N, 8w, H/16, W/16) and the last layer
        (N, 8w, H/16, W/16), for the skip connections of FCN-16s and FCN-8s."""
        check_images(x, min_size=BACKBONE_STRIDE)
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
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.width = width
        self.backbone = VGG11Backbone(width)
        self.pool5 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc_out = nn.Linear(self.backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
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
            f"conv weight must have shape {expected} to hold fc weight {tuple(fc.weight.shape)}, "
            f"got {tuple(conv.weight.shape)}"
        )
    if (fc.bias is None) != (conv.bias is None):
        raise ValueError("fc and conv must both have a bias or both have none")
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(expected))
        if fc.bias is not None:
            conv.bias.copy_(fc.bias)


class VGG11FCN(nn.Module):
    """The classifier as a fully convolutional network: a class score for every pixel.

    Input (N, 3, H, W), any H, W >= 32 -> scores (N, num_classes, H, W).
    `score_map(x)` gives the coarse scores before upsampling, (N, K, H // s, W // s), with
    stride s = 16 (the default, as in the seed's conversion) or s = 32 with keep_pool5=True.
    """

    def __init__(self, num_classes: int = 7, width: int = 64, keep_pool5: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.width = width
        self.keep_pool5 = keep_pool5
        self.backbone = VGG11Backbone(width)
        self.pool5 = nn.MaxPool2d(kernel_size=2, stride=2) if keep_pool5 else nn.Identity()
        self.conv_out = nn.Conv2d(self.backbone.out_channels, num_classes, kernel_size=1)

    @property
    def stride(self) -> int:
        return BACKBONE_STRIDE * (2 if self.keep_pool5 else 1)

    @classmethod
    def from_classifier(cls, classifier: VGG11Classifier, keep_pool5: bool = False) -> "VGG11FCN":
        """Build an FCN holding copies of a classifier's weights (the classifier is not changed).

        The backbone (convolutions and BatchNorm statistics) is copied as is; fc_out's weight
        and bias go into the 1x1 conv_out. The FCN starts in the classifier's train/eval mode.
        """
        for name in ("backbone", "fc_out"):
            if not hasattr(classifier, name):
                raise ValueError(
                    f"from_classifier needs a VGG11Classifier (with .backbone and .fc_out), "
                    f"got {type(classifier).__name__} without .{name}"
                )
        fcn = cls(classifier.fc_out.out_features, classifier.backbone.width, keep_pool5)
        if classifier.fc_out.in_features != fcn.backbone.out_channels:
            raise ValueError(
                f"fc_out expects {classifier.fc_out.in_features} input features but the backbone "
                f"gives {fcn.backbone.out_channels} channels"
            )
        fcn.backbone.load_state_dict(classifier.backbone.state_dict())
        copy_fc_to_conv(classifier.fc_out, fcn.conv_out)
        fcn.to(classifier.fc_out.weight.device)
        return fcn.train(classifier.training)

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse class scores (N, K, H // stride, W // stride), before upsampling."""
        check_images(x, min_size=self.stride)
        return self.conv_out(self.pool5(self.backbone(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class scores (N, K, H, W), the score map upsampled bilinearly to x's size."""
        check_images(x)
        scores = self.score_map(x)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ============================================================================ FCN-32s / 16s / 8s


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights (channels, channels, 2f, 2f) that make a ConvTranspose2d upsample bilinearly by f.

    Each channel is upsampled on its own (zero weights between channels). With stride f and
    padding f // 2 the result equals F.interpolate(..., scale_factor=f, mode="bilinear",
    align_corners=False) everywhere except a border of about f // 2 pixels, where the transposed
    convolution sees zeros beyond the edge while interpolation repeats the edge pixel.
    """
    size = 2 * factor
    center = factor - 0.5
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor  # (2f,)
    kernel = ramp[:, None] * ramp[None, :]
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = kernel
    return weight


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable x`factor` upsampling layer, initialised to bilinear interpolation.

    (N, channels, h, w) -> (N, channels, h * factor, w * factor).
    """
    layer = nn.ConvTranspose2d(channels, channels, kernel_size=2 * factor, stride=factor,
                               padding=factor // 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, factor))
    return layer


def match_size(x: torch.Tensor, size) -> torch.Tensor:
    """Crop or (edge-)pad x (N, C, h, w) at its bottom/right to spatial `size` (H, W).

    Pooling rounds odd sizes down, so an upsampled map can be a few pixels short of the map it
    is added to (or of the input image); this makes the two line up without resampling.
    """
    height, width = size
    x = x[..., :height, :width]
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x


FCN_VARIANTS = ("32s", "16s", "8s")


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
            raise ValueError(f"variant must be one of {FCN_VARIANTS}, got {variant!r}")
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
        self.up_final = bilinear_upsampler(num_classes, {"32s": 32, "16s": 16, "8s": 8}[variant])

    @property
    def stride(self) -> int:
        """Stride of the finest score map, before the final upsampling."""
        return {"32s": 32, "16s": 16, "8s": 8}[self.variant]

    @classmethod
    def from_classifier(cls, classifier: VGG11Classifier, variant: str = "8s") -> "VGG11SkipFCN":
        """Start from a trained classifier: its backbone, and fc_out as the pool5 scorer.

        Class k of the classifier becomes class k + 1 here; class 0 (background) is new, with
        zero weight and bias, so it is learned from the masks.
        """
        if not hasattr(classifier, "backbone") or not hasattr(classifier, "fc_out"):
            raise ValueError(f"from_classifier needs a VGG11Classifier, got {type(classifier).__name__}")
        fcn = cls(classifier.fc_out.out_features + 1, classifier.backbone.width, variant)
        fcn.backbone.load_state_dict(classifier.backbone.state_dict())
        with torch.no_grad():
            fcn.score_pool5.weight.zero_()
            fcn.score_pool5.bias.zero_()
            object_classes = nn.Conv2d(classifier.fc_out.in_features, classifier.fc_out.out_features, 1)
            copy_fc_to_conv(classifier.fc_out, object_classes)
            fcn.score_pool5.weight[1:] = object_classes.weight
            fcn.score_pool5.bias[1:] = object_classes.bias
        return fcn.to(classifier.fc_out.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        pool3, pool4, conv5 = self.backbone.forward_stages(x)  # strides 8, 16, 16
        pool5 = self.pool5(conv5)  # (N, 8w, H/32, W/32)
        scores = self.score_pool5(pool5)
        if self.variant in ("16s", "8s"):
            scores = match_size(self.up_pool5(scores), pool4.shape[-2:]) + self.score_pool4(pool4)
        if self.variant == "8s":
            scores = match_size(self.up_pool4(scores), pool3.shape[-2:]) + self.score_pool3(pool3)
        return match_size(self.up_final(scores), x.shape[-2:])
