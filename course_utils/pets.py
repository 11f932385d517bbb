"""Real photos for notebook 6: the Oxford-IIIT Pet dataset, found on disk or downloaded, as the course's masks.

The dataset (Parkhi et al., 2012) holds 7,349 photos of 37 cat and dog breeds, each with a
*trimap*: a PNG the size of the photo whose pixels are 1 (pet), 2 (background) or 3 (the border
between them, where annotators could not say). torchvision reads it (`OxfordIIITPet`); this
module decides where it lives, what to say when it is missing, and turns each photo and trimap
into the course's conventions:

    photo  -> float (3, S, S), the weights' own preprocessing (pretrained.image_transform)
    trimap -> mask (S, S) int64: 0 background, k + 1 for the pet's class k, 255 border (ignored)

Classes are the two species (cat, dog), not the 37 breeds: the question of which pixels are
pet is the same, a few hundred photos give every class enough examples on a CPU, and two
classes keep the score table and the colour legend readable. The breed comes along for titles.

Where the files are: $FCN_COURSE_PETS (the `oxford-iiit-pet` folder itself, or the folder
holding it), else data/oxford-iiit-pet. The weights live where torch keeps every downloaded
checkpoint, $TORCH_HOME/hub/checkpoints/ (pretrained.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .data import IGNORE_INDEX
from .paths import DATA_DIR

#: Set this environment variable to the `oxford-iiit-pet` folder (or the folder holding it).
PETS_VARIABLE = "FCN_COURSE_PETS"
#: torchvision's name for the dataset's folder; it looks for root/oxford-iiit-pet.
PETS_FOLDER = "oxford-iiit-pet"
#: Mask value k + 1 is SPECIES[k]; torchvision's "binary-category" target is k (0 cat, 1 dog).
SPECIES = ("cat", "dog")
#: Trimap values, as the dataset's README defines them.
TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3
#: Photos in the full splits: how the notebook tells the real dataset from a small copy.
FULL_SPLIT_SIZES = {"trainval": 3680, "test": 3669}
DATASET_DOWNLOAD = (
    "about 800 MB (images.tar.gz and annotations.tar.gz, from https://www.robots.ox.ac.uk/~vgg/data/pets/)"
)


class MissingDownloadError(RuntimeError):
    """Files notebook 6 needs are missing and could not be downloaded. In Jupyter it shows its
    message alone, without a traceback: the message already says what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's own display
        return [f"{type(self).__name__}: {self}"]


def pets_root() -> Path:
    """The folder torchvision gets as `root`: the one that holds `oxford-iiit-pet/`.

    $FCN_COURSE_PETS may name the `oxford-iiit-pet` folder itself or its parent; unset, the
    dataset is expected in data/oxford-iiit-pet.
    """
    value = os.environ.get(PETS_VARIABLE, "").strip()
    if not value:
        return DATA_DIR
    path = Path(value).expanduser()
    return path.parent if path.name == PETS_FOLDER else path


def dataset_folder() -> Path:
    """Where the dataset's images/ and annotations/ are expected."""
    return pets_root() / PETS_FOLDER


def missing_dataset_files(folder: Path | None = None) -> list[str]:
    """The parts of the dataset that are not in `folder` (default: dataset_folder()); [] when complete."""
    folder = dataset_folder() if folder is None else folder
    needed = ["images", "annotations/trimaps", "annotations/trainval.txt", "annotations/test.txt"]
    return [name for name in needed if not (folder / name).exists()]


def is_full_dataset(folder: Path | None = None) -> bool:
    """True for the real dataset (3,680 trainval and 3,669 test photos), False for a smaller copy
    such as the tests' fixture. The notebook's sanity assertions run only on the real one."""
    folder = dataset_folder() if folder is None else folder
    for split, size in FULL_SPLIT_SIZES.items():
        path = folder / "annotations" / f"{split}.txt"
        if not path.is_file() or sum(1 for line in path.open() if line.strip()) != size:
            return False
    return True


def missing_message(dataset_missing: list[str], weights_missing: bool, weights_path: Path, reason: str) -> str:
    """The one message the notebook shows when files are missing: what, how big, where it goes."""
    lines = [f"Notebook 6 needs files that are not on this machine, and downloading them failed ({reason})."]
    if dataset_missing:
        lines += [
            f"- The Oxford-IIIT Pet dataset, {DATASET_DOWNLOAD}.",
            f"  Missing: {', '.join(dataset_missing)} in {dataset_folder()}",
            "  Extract both archives there (giving images/ and annotations/), or set",
            f"  {PETS_VARIABLE}=/path/to/{PETS_FOLDER} where you keep them.",
        ]
    if weights_missing:
        lines += [
            "- The ImageNet weights of VGG11-BN, 507 MB (https://download.pytorch.org/models/vgg11_bn-6002323d.pth).",
            f"  Put the file at {weights_path}",
            "  (torch's download cache, $TORCH_HOME/hub/checkpoints/; set TORCH_HOME to use another folder).",
        ]
    lines.append("Then run this cell again. The other notebooks need none of this.")
    return "\n".join(lines)


def download_or_explain(download: bool = True) -> Path:
    """Make sure the dataset and the weights are on disk; return the dataset's folder.

    What is missing is downloaded (after a line saying how big it is), by torchvision itself.
    If it is still missing (no network, download=False, a failed transfer), raise
    MissingDownloadError with `missing_message`.
    """
    from torchvision.datasets import OxfordIIITPet

    from .pretrained import WEIGHTS, load_imagenet_state_dict, weights_file

    reason = "download=False"
    if download and missing_dataset_files():
        print(f"Downloading the Oxford-IIIT Pet dataset, {DATASET_DOWNLOAD}, to {dataset_folder()} ...")
        try:
            OxfordIIITPet(pets_root(), download=True)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            reason = f"{type(error).__name__}: {error}"
        else:  # torchvision downloads only when images/ or annotations/ is missing
            reason = "the folder is incomplete, and torchvision downloads only when images/ or annotations/ is missing"
    if download and not weights_file().is_file():
        print(f"Downloading the ImageNet weights of VGG11-BN, 507 MB ({WEIGHTS.url}) ...")
        try:
            load_imagenet_state_dict()
        except (OSError, RuntimeError) as error:
            reason = f"{type(error).__name__}: {error}"
    dataset_missing, weights_missing = missing_dataset_files(), not weights_file().is_file()
    if dataset_missing or weights_missing:
        raise MissingDownloadError(missing_message(dataset_missing, weights_missing, weights_file(), reason))
    return dataset_folder()


# ---------------------------------------------------------------------------- trimaps and samples


def trimap_to_mask(trimap: torch.Tensor, label: int) -> torch.Tensor:
    """Trimap (H, W) with values 1 (pet), 2 (background), 3 (border) -> mask (H, W) int64 with
    label + 1 for the pet, 0 for the background and IGNORE_INDEX (255) for the border.

    label: the pet's class, 0 (cat) or 1 (dog) for SPECIES. Any other trimap value is a
    ValueError (a trimap read as RGB, or a mask that was converted already).
    """
    if trimap.dim() != 2:
        raise ValueError(f"expected one trimap shaped (H, W), got shape {tuple(trimap.shape)}")
    values = set(trimap.unique().tolist())
    unexpected = sorted(values - {TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER})
    if unexpected:
        raise ValueError(f"trimap values must be 1 (pet), 2 (background) or 3 (border), also found {unexpected}")
    mask = torch.zeros(trimap.shape, dtype=torch.int64)
    mask[trimap == TRIMAP_PET] = label + 1
    mask[trimap == TRIMAP_BORDER] = IGNORE_INDEX
    return mask


class PetSample:
    """torchvision `transforms` for OxfordIIITPet with target_types ("category", "binary-category",
    "segmentation"): (photo, (breed, species, trimap)) -> (image (3, S, S), (species, breed, mask (S, S))).

    The photo gets the pretrained weights' preprocessing at crop size S (pretrained.image_transform);
    the trimap the same resize and centre crop, with nearest-neighbour resampling so that it keeps
    its three values, and then trimap_to_mask.
    """

    def __init__(self, image_size: int):
        from .pretrained import image_transform

        self.image_size = image_size
        self.image_transform = image_transform(image_size)

    def __call__(self, photo, target):
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        breed, species, trimap = target
        image = self.image_transform(photo)
        trimap = F.pil_to_tensor(trimap)  # (1, H, W) uint8
        trimap = F.resize(trimap, self.image_transform.resize_size, interpolation=InterpolationMode.NEAREST)
        trimap = F.center_crop(trimap, self.image_transform.crop_size)[0]
        return image, (species, breed, trimap_to_mask(trimap, species))


def pets_dataset(split: str, image_size: int, root: Path | None = None):
    """torchvision's OxfordIIITPet `split` ("trainval" or "test") whose samples are PetSample's
    (image (3, S, S), (species, breed, mask (S, S))). Nothing is downloaded here (download_or_explain)."""
    from torchvision.datasets import OxfordIIITPet

    return OxfordIIITPet(
        pets_root() if root is None else root,
        split=split,
        target_types=("category", "binary-category", "segmentation"),
        transforms=PetSample(image_size),
    )


def image_ids(dataset) -> list[str]:
    """The photos' names ("Abyssinian_1", ...) in the dataset's order (torchvision keeps their paths)."""
    return [path.stem for path in dataset._images]


def breed_name(image_id: str) -> str:
    """ "Abyssinian_12" -> "Abyssinian", "great_pyrenees_3" -> "Great Pyrenees": the breed, named as
    torchvision names its classes (from the photo's name, so it holds in any subset)."""
    return " ".join(part.title() for part in image_id.rsplit("_", 1)[0].split("_"))
