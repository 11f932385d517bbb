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

Every file is checked as it is read, so that a damaged copy stops with the file's name rather
than a deep traceback or, worse, misaligned masks: a missing or wrong folder is a
FileNotFoundError naming it and the layout it needs; an empty or cut-off split list, a photo or
trimap that does not decode, a trimap of another size than its photo or with values other than
1, 2, 3 is a PetsDataError naming the file.

Where the files are: $FCN_COURSE_PETS (the `oxford-iiit-pet` folder itself, or the folder
holding it), else data/oxford-iiit-pet. The weights live where torch keeps every downloaded
checkpoint, $TORCH_HOME/hub/checkpoints/ (pretrained.py).
"""

from __future__ import annotations

import functools
import numbers
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .data import IGNORE_INDEX
from .i18n import tr
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
DATASET_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
#: The ImageNet weights of VGG11-BN as the missing-files message names them (pretrained.WEIGHTS).
WEIGHTS_DOWNLOAD_SIZE, WEIGHTS_DOWNLOAD_URL = "507 MB", "https://download.pytorch.org/models/vgg11_bn-6002323d.pth"


def dataset_download() -> str:
    """What the dataset's download is, how big, from where (in the course's language)."""
    return tr("about 800 MB (images.tar.gz and annotations.tar.gz, from {url})", url=DATASET_URL)


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
    lines = [
        tr(
            "Notebook 6 needs files that are not on this machine, and downloading them failed ({reason}).",
            reason=reason,
        )
    ]
    if dataset_missing:
        lines += [
            "- " + tr("The Oxford-IIIT Pet dataset, {download}.", download=dataset_download()),
            "  " + tr("Missing: {missing} in {folder}", missing=", ".join(dataset_missing), folder=dataset_folder()),
            "  "
            + tr(
                "Extract both archives there (giving images/ and annotations/), or set\n"
                "  {variable}=/path/to/{folder} where you keep them.",
                variable=PETS_VARIABLE,
                folder=PETS_FOLDER,
            ),
        ]
    if weights_missing:
        lines += [
            "- "
            + tr(
                "The ImageNet weights of VGG11-BN, {size} ({url}).",
                size=WEIGHTS_DOWNLOAD_SIZE,
                url=WEIGHTS_DOWNLOAD_URL,
            ),
            "  " + tr("Put the file at {path}", path=weights_path),
            "  " + tr("(torch's download cache, $TORCH_HOME/hub/checkpoints/; set TORCH_HOME to use another folder)."),
        ]
    lines.append(tr("Then run this cell again. The other notebooks need none of this."))
    return "\n".join(lines)


class PetsDataError(ValueError):
    """A file of the dataset is there but unusable: a photo or trimap that cannot be decoded, a
    trimap of another size than its photo or with values other than 1, 2, 3, a split list that is
    empty or cut off. The message names the file, what is wrong and what to do."""

    def __init__(self, path, problem: str, folder: Path | None = None):
        self.path = Path(path)
        self.problem = problem
        folder = dataset_folder() if folder is None else folder
        super().__init__(
            tr(
                "{path} {problem}. Replace it with the file from the dataset's archives, or delete {folder} "
                "and run notebook 6's first cell (course_utils.pets.download_or_explain()) to download it again.",
                path=self.path,
                problem=problem,
                folder=folder,
            )
        )


def check_dataset_folder(folder: Path) -> None:
    """FileNotFoundError naming `folder`, the layout it must have and how to get it, if any of
    images/, annotations/trimaps/, annotations/trainval.txt and annotations/test.txt is missing."""
    missing = missing_dataset_files(folder)
    if missing:
        raise FileNotFoundError(
            tr(
                "No Oxford-IIIT Pet dataset in {folder} ({missing} missing). It must hold images/ "
                "(<photo>.jpg), annotations/trimaps/ (<photo>.png), annotations/trainval.txt and "
                "annotations/test.txt, as the dataset's two archives extract. Run notebook 6's first cell "
                "(course_utils.pets.download_or_explain()) to download it, {download}, or set {variable} "
                "to the {pets_folder} folder where you keep it.",
                folder=folder,
                missing=", ".join(missing),
                download=dataset_download(),
                variable=PETS_VARIABLE,
                pets_folder=PETS_FOLDER,
            )
        )


def download_or_explain(download: bool = True) -> Path:
    """Make sure the dataset and the weights are on disk; return the dataset's folder.

    What is missing is downloaded (after a line saying how big it is), by torchvision itself.
    If it is still missing (no network, download=False, a failed transfer), raise
    MissingDownloadError with `missing_message`.
    """
    from torchvision.datasets import OxfordIIITPet

    from .pretrained import WEIGHTS, WEIGHTS_SIZE, download_weights, weights_file

    reason = "download=False"
    if download and missing_dataset_files():
        print(
            tr(
                "Downloading the Oxford-IIIT Pet dataset, {download}, to {folder} ...",
                download=dataset_download(),
                folder=dataset_folder(),
            )
        )
        try:
            OxfordIIITPet(pets_root(), download=True)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            reason = f"{type(error).__name__}: {error}"
        else:  # torchvision downloads only when images/ or annotations/ is missing
            reason = tr(
                "the folder is incomplete, and torchvision downloads only when images/ or annotations/ is missing"
            )
    if download and not weights_file().is_file():
        print(
            tr("Downloading the ImageNet weights of VGG11-BN, {size} ({url}) ...", size=WEIGHTS_SIZE, url=WEIGHTS.url)
        )
        try:
            download_weights()
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

    label: the pet's class, an int, 0 (cat) or 1 (dog) for SPECIES; anything else (-1, 2, 0.5,
    True) is a ValueError. So is any other trimap value (a trimap read as RGB, or a mask that was
    converted already).
    """
    if isinstance(label, bool) or not isinstance(label, numbers.Integral) or not 0 <= label < len(SPECIES):
        choices = functools.reduce(
            lambda left, right: tr("{left} or {right}", left=left, right=right),
            (f"{index} ({name})" for index, name in enumerate(SPECIES)),
        )
        raise ValueError(
            tr("label must be {choices}, the pet's index in SPECIES, got {label!r}", choices=choices, label=label)
        )
    if trimap.dim() != 2:
        raise ValueError(tr("expected one trimap shaped (H, W), got shape {shape}", shape=tuple(trimap.shape)))
    values = set(trimap.unique().tolist())
    unexpected = sorted(values - {TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER})
    if unexpected:
        raise ValueError(
            tr(
                "trimap values must be 1 (pet), 2 (background) or 3 (border), also found {unexpected}",
                unexpected=unexpected,
            )
        )
    mask = torch.zeros(trimap.shape, dtype=torch.int64)
    mask[trimap == TRIMAP_PET] = int(label) + 1
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


#: A line of trainval.txt or test.txt: "<photo> <CLASS-ID 1..37> <SPECIES 1 cat, 2 dog> <BREED-ID>".
SPLIT_LINE = "'<photo> <class id 1-37> <species 1 or 2> <breed id>'"
NUM_BREEDS = 37


def read_split_list(folder: Path, split: str) -> list[str]:
    """The photo names in annotations/<split>.txt, every line checked as torchvision will read it
    (four fields, class id 1-37, species 1 or 2). An empty file or a malformed line (a cut-off
    one) is a PetsDataError naming the file, and the line."""
    path = folder / "annotations" / f"{split}.txt"
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise PetsDataError(path, tr("is not a text file"), folder) from None
    names = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        valid = len(fields) == 4 and all(field.isascii() and field.isdigit() for field in fields[1:])
        if not valid or not 1 <= int(fields[1]) <= NUM_BREEDS or fields[2] not in ("1", "2"):
            raise PetsDataError(
                path,
                tr(
                    "line {number} is {line!r}, not {expected} (cut off?)",
                    number=number,
                    line=line,
                    expected=SPLIT_LINE,
                ),
                folder,
            )
        names.append(fields[0])
    if not names:
        raise PetsDataError(path, tr("lists no photos (it is empty)"), folder)
    return names


def check_split_lists(folder: Path) -> dict[str, list[str]]:
    """{"trainval": names, "test": names} (read_split_list), checked against annotations/list.txt
    when it is there: a photo it names that neither split lists means a split list was cut off
    (after a whole line), a PetsDataError naming it and the counts."""
    names = {split: read_split_list(folder, split) for split in ("trainval", "test")}
    listing = folder / "annotations" / "list.txt"
    if listing.is_file():
        lines = listing.read_text(errors="replace").splitlines()
        listed = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
        in_splits = set(names["trainval"]) | set(names["test"])
        lost = [name for name in listed if name not in in_splits]
        if lost:
            paths = [folder / "annotations" / f"{split}.txt" for split in ("trainval", "test")]
            raise PetsDataError(
                paths[0],
                tr(
                    "lists {trainval} photos and {test_list} lists {test}, but {listing} names {listed} photos: "
                    "{lost} are in neither (first: {first}), so one of the two split lists is cut off",
                    trainval=len(names["trainval"]),
                    test_list=paths[1],
                    test=len(names["test"]),
                    listing=listing,
                    listed=len(listed),
                    lost=len(lost),
                    first=lost[0],
                ),
                folder,
            )
    return names


def check_files_listed(folder: Path, split: str, names: list[str]) -> None:
    """FileNotFoundError naming the first photo or trimap of the split that is not on disk."""
    for subfolder, suffix in (("images", ".jpg"), ("annotations/trimaps", ".png")):
        present = {entry.name for entry in os.scandir(folder / subfolder)}
        absent = [name + suffix for name in names if name + suffix not in present]
        if absent:
            raise FileNotFoundError(
                tr(
                    "{absent} of the {listed} photos listed in {split_list} have no file in {subfolder} "
                    "(first: {first}). Extract the dataset's archives there again, or delete {folder} and run "
                    "notebook 6's first cell (course_utils.pets.download_or_explain()).",
                    absent=len(absent),
                    listed=len(names),
                    split_list=folder / "annotations" / f"{split}.txt",
                    subfolder=folder / subfolder,
                    first=absent[0],
                    folder=folder,
                )
            )


def read_image(path: Path, folder: Path):
    """The PIL image at `path`, decoded now: a file that cannot be (cut off, empty, not an image)
    is a PetsDataError naming it, not PIL's message alone."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError:
        raise FileNotFoundError(
            tr("{path}: no such file (it was there when the dataset was opened)", path=path)
        ) from None
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        raise PetsDataError(
            path, tr("cannot be read as an image (cut off, or not one: {error})", error=error), folder
        ) from None


def check_trimap(trimap, path: Path, photo_size: tuple[int, int], photo_name: str, folder: Path) -> None:
    """PetsDataError naming the trimap at `path` if it is not one channel of the photo's size with
    values 1, 2, 3 only (the values found are named)."""
    if trimap.size != photo_size:
        (w, h), (pw, ph) = trimap.size, photo_size
        raise PetsDataError(
            path,
            tr(
                "is {width}x{height} pixels, but its photo {photo} is {photo_width}x{photo_height}",
                width=w,
                height=h,
                photo=photo_name,
                photo_width=pw,
                photo_height=ph,
            ),
            folder,
        )
    values = np.asarray(trimap)
    if values.ndim != 2:
        raise PetsDataError(
            path,
            tr("has {channels} channels (mode {mode}): a trimap has one", channels=values.shape[2], mode=trimap.mode),
            folder,
        )
    if values.dtype == np.uint8:  # the usual case, and much faster than np.unique
        found = np.flatnonzero(np.bincount(values.ravel(), minlength=256)).tolist()
    else:
        found = np.unique(values).tolist()
    if not set(found) <= {TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER}:
        raise PetsDataError(
            path,
            tr("holds the values {found}: a trimap holds only 1 (pet), 2 (background), 3 (border)", found=found),
            folder,
        )


TARGET_TYPES = ("category", "binary-category", "segmentation")


class PetsDataset(Dataset):
    """One split of the dataset as torchvision's OxfordIIITPet reads it (its list parsing and file
    paths, target_types TARGET_TYPES), with every photo and trimap checked as it is read:
    (photo, (breed, species, trimap)) goes to `transforms` only if both decode, have the same size
    and the trimap holds 1, 2, 3 only; else a PetsDataError naming the file.
    Build it with pets_dataset, which checks the folder and the split lists first."""

    def __init__(self, root: Path, split: str, transforms=None):
        from torchvision.datasets import OxfordIIITPet  # imported here: torchvision takes seconds to import

        self.pets = OxfordIIITPet(root, split=split, target_types=TARGET_TYPES)
        self.folder, self.transforms = self.pets._base_folder, transforms
        self.split_file = self.folder / "annotations" / f"{split}.txt"
        self._images = self.pets._images  # the photos' paths, as in OxfordIIITPet (image_ids reads them)

    def __len__(self) -> int:
        return len(self.pets)

    def __getitem__(self, idx: int):
        photo_path, trimap_path = self.pets._images[idx], self.pets._segs[idx]
        photo = read_image(photo_path, self.folder).convert("RGB")
        trimap = read_image(trimap_path, self.folder)
        check_trimap(trimap, trimap_path, photo.size, photo_path.name, self.folder)
        target = (self.pets._labels[idx], self.pets._bin_labels[idx], trimap)
        return self.transforms(photo, target) if self.transforms else (photo, target)


def pets_dataset(split: str, image_size: int, root: Path | None = None) -> PetsDataset:
    """The Oxford-IIIT Pet `split` ("trainval" or "test") whose samples are PetSample's (image
    (3, S, S), (species, breed, mask (S, S))). Nothing is downloaded here (download_or_explain).

    root: the folder holding oxford-iiit-pet/ (or that folder itself); default pets_root().
    Checked before anything is read: the folder's layout (FileNotFoundError naming it), both
    split lists (PetsDataError: empty, cut off) and that every listed photo and trimap is there.
    """
    if split not in FULL_SPLIT_SIZES:
        raise ValueError(tr("split must be 'trainval' or 'test', got {split!r}", split=split))
    root = pets_root() if root is None else Path(root)
    root = root.parent if root.name == PETS_FOLDER else root
    folder = root / PETS_FOLDER
    check_dataset_folder(folder)
    names = check_split_lists(folder)[split]
    check_files_listed(folder, split, names)
    return PetsDataset(root, split, transforms=PetSample(image_size))


def image_ids(dataset) -> list[str]:
    """The photos' names ("Abyssinian_1", ...) in the dataset's order (torchvision keeps their paths)."""
    return [path.stem for path in dataset._images]


def breed_name(image_id: str) -> str:
    """ "Abyssinian_12" -> "Abyssinian", "great_pyrenees_3" -> "Great Pyrenees": the breed, named as
    torchvision names its classes (from the photo's name, so it holds in any subset)."""
    return " ".join(part.title() for part in image_id.rsplit("_", 1)[0].split("_"))
