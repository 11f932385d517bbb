"""ImageNet-pretrained VGG11-BN in the course's own VGG11Backbone, its preprocessing, and cached features.

torchvision's `vgg11_bn().features` lists the same layers in the same order as VGG11Backbone
(plus a last max pool with no weights), so its state_dict keys "features.0.weight", ... are
VGG11Backbone's "0.weight", ...: the weights load key for key, nothing renamed by hand.

The backbone stays frozen in notebook 6, so its outputs for a photo never change. They are
computed once per photo and kept on disk (`load_or_extract`): pool3 (N, 256, S/8, S/8), pool4
(N, 512, S/16, S/16) and pool5 (N, 512, S/32, S/32) in float16, with the labels and masks. A
cache file is used only if it was made from the same photos, image size, weights and code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision.models import VGG11_BN_Weights

from .checkpoints import save_atomically
from .models import VGG11Backbone
from .paths import checkpoint_dir
from .progress import progress_bar

#: torchvision's ImageNet weights of VGG11-BN (top-1 accuracy 70.4 %, a 507 MB file).
WEIGHTS = VGG11_BN_Weights.IMAGENET1K_V1
#: The crop the weights were trained and evaluated at, and the resize before it (256 for 224).
IMAGENET_CROP, IMAGENET_RESIZE = 224, 256
#: Source files whose change invalidates every feature cache (the preprocessing lives in them).
CODE_FINGERPRINT = hashlib.sha256(
    b"".join(Path(__file__).with_name(name).read_bytes() for name in ("pretrained.py", "pets.py"))
).hexdigest()[:12]


def weights_file() -> Path:
    """Where torch keeps the weights once downloaded: $TORCH_HOME/hub/checkpoints/vgg11_bn-6002323d.pth,
    the file name being the last part of the weights' URL (torch.hub.load_state_dict_from_url)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(WEIGHTS.url).path)


def load_imagenet_state_dict() -> dict:
    """torchvision's state dict of vgg11_bn, read from weights_file(), downloaded there first if
    missing (with its hash checked). weights_only=True: tensors only, no pickled code."""
    return WEIGHTS.get_state_dict(progress=True, check_hash=True, weights_only=True)


def pretrained_backbone(state_dict: dict | None = None) -> VGG11Backbone:
    """VGG11Backbone (width 64) holding the ImageNet weights, frozen and in eval mode.

    state_dict: torchvision's vgg11_bn state dict (default: load_imagenet_state_dict()); its
    "features.*" entries are the backbone's, the fully connected "classifier.*" ones are not used.
    """
    state_dict = load_imagenet_state_dict() if state_dict is None else state_dict
    features = {
        key.removeprefix("features."): value for key, value in state_dict.items() if key.startswith("features.")
    }
    backbone = VGG11Backbone(width=64)
    try:
        backbone.load_state_dict(features)
    except RuntimeError as error:
        raise ValueError(
            f"{weights_file()} does not hold vgg11_bn's weights ({str(error).splitlines()[0]}): delete it and "
            "run the notebook's first cell again to download it"
        ) from None
    return backbone.requires_grad_(False).eval()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """12 hex digits that change whenever any weight or BatchNorm statistic of `module` does."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def resize_size(image_size: int = IMAGENET_CROP) -> int:
    """The shorter side a photo is resized to before the centre crop of image_size: image_size * 256 / 224.

    This is the scale the heads are trained at (183 px for the CPU's 160 crop, 256 for 224), so it
    is also the scale at which a new photo shows its pet as large as the training photos did.
    """
    return round(image_size * IMAGENET_RESIZE / IMAGENET_CROP)


def image_transform(image_size: int = IMAGENET_CROP):
    """The weights' own preprocessing (WEIGHTS.transforms()), scaled to `image_size`: resize the
    shorter side to resize_size(image_size), crop the centre image_size x image_size, scale to
    [0, 1], subtract the ImageNet mean and divide by its std. PIL photo -> float (3, S, S)."""
    return WEIGHTS.transforms(crop_size=image_size, resize_size=resize_size(image_size))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Images (..., 3, H, W) in [0, 1] -> what the pretrained backbone expects (ImageNet mean 0, std 1)."""
    transform = image_transform()
    mean, std = torch.tensor(transform.mean).view(3, 1, 1), torch.tensor(transform.std).view(3, 1, 1)
    return (images - mean) / std


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """The inverse of normalize, clamped to [0, 1]: to show a preprocessed photo."""
    transform = image_transform()
    mean, std = torch.tensor(transform.mean).view(3, 1, 1), torch.tensor(transform.std).view(3, 1, 1)
    return (images * std + mean).clamp(0, 1)


# ---------------------------------------------------------------------------- features


@torch.no_grad()
def extract_features(backbone: VGG11Backbone, data: Dataset, batch_size: int = 16, progress: bool = True) -> dict:
    """Run the frozen backbone once over `data` (samples (image (3, S, S), (label, breed, mask (S, S))),
    as pets.PetSample makes them). Returns {"pool3": (N, 256, S/8, S/8), "pool4": (N, 512, S/16, S/16),
    "pool5": (N, 512, S/32, S/32)} in float16, and "labels" (N,), "breeds" (N,), "masks" (N, S, S) uint8.
    """
    device = next(backbone.parameters()).device
    parts = {key: [] for key in ("pool3", "pool4", "pool5", "labels", "breeds", "masks")}
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    with progress_bar(len(loader), "features", "batch", disable=not progress) as bar:
        for images, (labels, breeds, masks) in loader:
            pool3, pool4, conv5 = backbone.forward_stages(images.to(device, memory_format=torch.channels_last))
            for key, value in (("pool3", pool3), ("pool4", pool4), ("pool5", F.max_pool2d(conv5, 2))):
                parts[key].append(value.half().cpu().contiguous())
            parts["labels"].append(labels)
            parts["breeds"].append(breeds)
            parts["masks"].append(masks.to(torch.uint8))  # values 0, 1, 2 and 255
            bar.update(1)
    return {key: torch.cat(values) for key, values in parts.items()}


def feature_cache_key(ids: list[str], image_size: int, backbone: VGG11Backbone) -> dict:
    """Everything the cached features depend on: which photos, their size, the weights, the code
    (the course's, and torchvision's, which decodes, resizes and crops the photos)."""
    return {
        "ids": list(ids),
        "image_size": image_size,
        "weights": weights_fingerprint(backbone),
        "code": CODE_FINGERPRINT,
        "torchvision": torchvision.__version__,
    }


def feature_cache_path(name: str, key: dict) -> Path:
    """pets/features-<name>-<16 hex digits of the key>.pt under the checkpoint folder."""
    digest = hashlib.sha256(repr(sorted(key.items())).encode()).hexdigest()[:16]
    return checkpoint_dir() / "pets" / f"features-{name}-{digest}.pt"


def load_or_extract(name: str, backbone: VGG11Backbone, data: Dataset, ids: list[str], image_size: int) -> dict:
    """extract_features(backbone, data), loaded from its cache file when one exists for exactly these
    photos (`ids`, in order), image size, weights and code; otherwise computed and saved there.

    name: a label for the file ("train", "test", ...). Loaded with mmap, so the features are read
    from disk as they are used. A missing, unreadable or foreign file is simply computed again.
    """
    if len(ids) != len(data):
        raise ValueError(f"{len(ids)} photo names for {len(data)} photos: pass the names of exactly these photos")
    key = feature_cache_key(ids, image_size, backbone)
    path = feature_cache_path(name, key)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if stored["key"] == key:
            return stored["features"]
    except Exception:  # no file yet, truncated, not ours: compute it again
        pass
    print(f"Computing the backbone's features of {len(data)} photos once ({name}); they are kept in {path.parent}.")
    features = extract_features(backbone, data)
    save_atomically({"key": key, "features": features}, path)
    return features
