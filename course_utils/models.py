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
