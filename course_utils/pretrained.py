"""ImageNet-pretrained VGG11-BN in the course's own VGG11Backbone, its preprocessing, and cached features.

torchvision's `vgg11_bn().features` lists the same layers in the same order as VGG11Backbone
(plus a last max pool with no weights), so its state_dict keys "features.0.weight", ... are
VGG11Backbone's "0.weight", ...: the weights load key for key, nothing renamed by hand.

The backbone stays frozen in notebook 6, so its outputs for a photo never change. They are
computed once per photo and kept on disk (`load_or_extract`): pool3 (N, 256, S/8, S/8), pool4
(N, 512, S/16, S/16) and pool5 (N, 512, S/32, S/32) in float16, with the labels and masks. A
cache file is used only if it was made from the same photos, image size, weights and code, and
only if its photo count and its digest (SHA-256 of every tensor) still match what was saved.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision.models import VGG11_BN_Weights

from .checkpoints import save_atomically, tensors_digest
from .i18n import tr
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


#: The real weights file's size, as notebook 6 and the README give it.
WEIGHTS_SIZE = "507 MB"


class WeightsFileError(ValueError):
    """The weights file is there but unusable: cut off, not a PyTorch file, not a state dict of
    tensors, or without vgg11_bn's backbone. The message names the file, the problem, the real
    file's size and what to do."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        self.problem = problem
        if self.path.is_file():
            size = tr("this one has {size:,} bytes", size=self.path.stat().st_size)
        else:
            size = tr("this one is gone")
        super().__init__(
            tr(
                "{path} {problem}; the real file is {real_size}, {size}. Delete it and run notebook 6's first "
                "cell again to download it, or put a copy downloaded by hand from {url} at that path.",
                path=self.path,
                problem=problem,
                real_size=WEIGHTS_SIZE,
                size=size,
                url=WEIGHTS.url,
            )
        )


def weights_file() -> Path:
    """Where torch keeps the weights once downloaded: $TORCH_HOME/hub/checkpoints/vgg11_bn-6002323d.pth,
    the file name being the last part of the weights' URL (torch.hub.load_state_dict_from_url)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(WEIGHTS.url).path)


def download_weights() -> Path:
    """Download the weights to weights_file() (507 MB, through a temporary file), their SHA-256
    checked against the prefix in the file's name as torch.hub checks it. Raises what the download
    raises: an OSError (URLError) without network, a RuntimeError for a wrong hash."""
    path = weights_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = torch.hub.HASH_REGEX.search(path.name).group(1)
    torch.hub.download_url_to_file(WEIGHTS.url, str(path), hash_prefix=hash_prefix, progress=True)
    return path


def load_imagenet_state_dict(download: bool = True) -> dict:
    """torchvision's state dict of vgg11_bn {name: tensor}, read from weights_file(), downloaded
    there first if missing (download=True). weights_only=True: tensors only, no pickled code.

    Raises FileNotFoundError when the file is missing and could not be downloaded, and
    WeightsFileError when it cannot be read or holds something else than a state dict of tensors.
    """
    path = weights_file()
    if not path.is_file():
        reason = "download=False"
        if download:
            try:
                download_weights()
            except (OSError, RuntimeError) as error:  # URLError is an OSError; a wrong hash a RuntimeError
                reason = f"{type(error).__name__}: {error}"
        if not path.is_file():
            raise FileNotFoundError(
                tr(
                    "{path}: no such file, and downloading it failed ({reason}). It is the ImageNet weights of "
                    "VGG11-BN, {size} ({url}): run notebook 6's first cell on a machine with network, or put a "
                    "copy downloaded by hand at that path (torch's download cache, $TORCH_HOME/hub/checkpoints/).",
                    path=path,
                    reason=reason,
                    size=WEIGHTS_SIZE,
                    url=WEIGHTS.url,
                )
            )
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # empty, cut off, random bytes, an HTML error page; torch's message would advise unsafe loading
        raise WeightsFileError(
            path, tr("is not a readable PyTorch file (empty, cut off, or another kind of file)")
        ) from None
    problem = _not_a_state_dict(state_dict)
    if problem:
        raise WeightsFileError(path, tr("is not a state dict of tensors: it holds {problem}", problem=problem))
    return state_dict


def _not_a_state_dict(value) -> str:
    """'' for a dict {str: tensor}, else what `value` is instead ("a list", "a dict whose 'x' is a list")."""
    if not isinstance(value, dict):
        return tr("a {kind}", kind="tensor" if isinstance(value, torch.Tensor) else type(value).__name__)
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, torch.Tensor):
            return tr("a dict whose {key!r} is a {kind}", key=key, kind=type(item).__name__)
    return ""


def _backbone_mismatch(features: dict, backbone: VGG11Backbone) -> str:
    """'' if `features` ("0.weight", ...) holds every tensor of `backbone` at its shape, else the
    difference in vgg11_bn's names ("features.0.weight"). BatchNorm's num_batches_tracked may be
    absent: files saved before PyTorch 0.4.1, such as the real one, have none."""
    expected = {key: tensor.shape for key, tensor in backbone.state_dict().items()}
    needed = [key for key in expected if not key.endswith("num_batches_tracked")]
    missing = [f"'features.{key}'" for key in needed if key not in features]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        return tr(
            "missing {missing} of its {needed} backbone keys ({shown})",
            missing=len(missing),
            needed=len(needed),
            shown=shown,
        )
    for key, tensor in features.items():
        if key in expected and tuple(tensor.shape) != tuple(expected[key]):
            return tr(
                "'features.{key}' has shape {shape}, vgg11_bn's is {expected}",
                key=key,
                shape=tuple(tensor.shape),
                expected=tuple(expected[key]),
            )
    return ""


def pretrained_backbone(state_dict: dict | None = None) -> VGG11Backbone:
    """VGG11Backbone (width 64) holding the ImageNet weights, frozen and in eval mode.

    state_dict: torchvision's vgg11_bn state dict (default: load_imagenet_state_dict()); its
    "features.*" entries are the backbone's, the fully connected "classifier.*" ones are not used.
    One that is not vgg11_bn's is a WeightsFileError naming weights_file() when it was read from
    there, and a ValueError about the state dict given otherwise (the file may be fine).
    """
    given = state_dict is not None
    state_dict = state_dict if given else load_imagenet_state_dict()  # checked there: a dict of tensors
    problem = _not_a_state_dict(state_dict) if given else ""
    if problem:
        raise ValueError(
            tr(
                "pretrained_backbone: the state dict given is not a dict of tensors: it holds {problem}",
                problem=problem,
            )
        )
    features = {
        key.removeprefix("features."): value for key, value in state_dict.items() if key.startswith("features.")
    }
    backbone = VGG11Backbone(width=64)
    problem = _backbone_mismatch(features, backbone)
    if not problem:
        try:
            backbone.load_state_dict(features)
        except RuntimeError as error:  # e.g. a key the backbone does not have
            problem = str(error).splitlines()[0]
    if problem and given:
        raise ValueError(
            tr("pretrained_backbone: the state dict given does not hold vgg11_bn's weights: {problem}", problem=problem)
        )
    if problem:
        raise WeightsFileError(weights_file(), tr("does not hold vgg11_bn's weights: {problem}", problem=problem))
    return backbone.requires_grad_(False).eval()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """12 hex digits that change whenever any weight or BatchNorm statistic of `module` does."""
    return tensors_digest(module.state_dict())[:12]


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


#: What extract_features returns, and so what a feature cache file must hold.
FEATURE_NAMES = ("pool3", "pool4", "pool5", "labels", "breeds", "masks")


@torch.no_grad()
def extract_features(backbone: VGG11Backbone, data: Dataset, batch_size: int = 16, progress: bool = True) -> dict:
    """Run the frozen backbone once over `data` (samples (image (3, S, S), (label, breed, mask (S, S))),
    as pets.PetSample makes them). Returns {"pool3": (N, 256, S/8, S/8), "pool4": (N, 512, S/16, S/16),
    "pool5": (N, 512, S/32, S/32)} in float16, and "labels" (N,), "breeds" (N,), "masks" (N, S, S) uint8.
    No photos (N = 0) is a ValueError.
    """
    if len(data) == 0:
        raise ValueError(tr("no photos to compute features of: the split is empty (see pets_train.pets_splits)"))
    device = next(backbone.parameters()).device
    parts = {key: [] for key in FEATURE_NAMES}
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    with progress_bar(len(loader), tr("features"), "batch", disable=not progress) as bar:
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


def read_feature_cache(path: Path, key: dict) -> tuple[dict | None, str]:
    """(features, "") from the cache file at `path` if it is whole and made for `key`; else (None,
    what is wrong), "" when there is no file. The file is {"key", "count" (photos), "digest"
    (checkpoints.tensors_digest), "features"}, read with mmap: checking the digest reads it once."""
    if not path.is_file():
        return None, ""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # cut off, random bytes: torch's own message says nothing more useful
        return None, tr("is not a readable PyTorch file")
    if not isinstance(stored, dict) or not {"key", "count", "digest", "features"} <= set(stored):
        return None, tr("was not written by load_or_extract")
    if stored["key"] != key:
        return None, tr("was made for other photos, sizes, weights or code")
    features, count = stored["features"], len(key["ids"])
    missing = [name for name in FEATURE_NAMES if not isinstance(features, dict) or name not in features]
    if missing:
        return None, tr("lacks {names}", names=", ".join(map(repr, missing)))
    for name in FEATURE_NAMES:
        if not isinstance(features[name], torch.Tensor):
            return None, tr("holds {name!r} of no photos, not {count}", name=name, count=count)
        found = len(features[name])
        if found == 1 != count:
            return None, tr("holds {name!r} of {found} photo, not {count}", name=name, found=found, count=count)
        if found != count:
            return None, tr("holds {name!r} of {found} photos, not {count}", name=name, found=found, count=count)
    if stored["count"] != count or stored["digest"] != tensors_digest(features):
        return None, tr("does not match its digest: damaged on disk")
    return features, ""


def load_or_extract(name: str, backbone: VGG11Backbone, data: Dataset, ids: list[str], image_size: int) -> dict:
    """extract_features(backbone, data), loaded from its cache file when one exists for exactly these
    photos (`ids`, in order), image size, weights and code; otherwise computed and saved there.

    name: a label for the file ("train", "test", ...). Loaded with mmap, so the features are read
    from disk as they are used. A missing file is computed; an unreadable, foreign or damaged one
    (its photo count or digest wrong) is named in a one-line warning and computed again.
    """
    if len(ids) != len(data):
        raise ValueError(
            tr(
                "{names} photo names for {photos} photos: pass the names of exactly these photos",
                names=len(ids),
                photos=len(data),
            )
        )
    if len(data) == 0:
        raise ValueError(tr("no photos in the {name!r} split: there are no features to compute", name=name))
    key = feature_cache_key(ids, image_size, backbone)
    path = feature_cache_path(name, key)
    features, problem = read_feature_cache(path, key)
    if features is not None:
        return features
    if problem:
        warnings.warn(
            tr("The feature cache {path} {problem}: computing it again.", path=path, problem=problem), stacklevel=2
        )
    print(
        tr(
            "Computing the backbone's features of {photos} photos once ({name}); they are kept in {folder}.",
            photos=len(data),
            name=name,
            folder=path.parent,
        )
    )
    features = extract_features(backbone, data)
    payload = {"key": key, "count": len(data), "digest": tensors_digest(features), "features": features}
    save_atomically(payload, path)
    return features
