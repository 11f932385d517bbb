"""A tiny Oxford-IIIT Pet, in the real dataset's on-disk layout, and random VGG11-BN weights where torch
looks for the real ones: what notebook 6 and tests/test_pets.py run on, since the real files
(about 800 MB and 507 MB) cannot be downloaded in CI.

The layout follows torchvision's own reader (torchvision/datasets/oxford_iiit_pet.py):

    <root>/oxford-iiit-pet/images/<Image>.jpg
    <root>/oxford-iiit-pet/annotations/trainval.txt, test.txt   one line per photo:
                                             "<Image> <CLASS-ID 1..37> <SPECIES 1 cat, 2 dog> <BREED-ID>"
    <root>/oxford-iiit-pet/annotations/trimaps/<Image>.png      1 pet, 2 background, 3 border
    <root>/oxford-iiit-pet/annotations/list.txt                 all photos, after 6 "#" header lines

torchvision splits every line of trainval.txt and test.txt into exactly four fields, so those two
files have no header (the real ones have none); only list.txt, which torchvision does not read,
carries the "#" lines. Cat breeds are capitalised, dog breeds are not, as in the real names.

The weights file is named as torch names its download, the last part of the URL
(vgg11_bn-6002323d.pth), under $TORCH_HOME/hub/checkpoints/. It holds the "features.*" tensors
of a randomly initialised vgg11_bn (torchvision's own `make_layers`, random BatchNorm statistics
too), and its fully connected "classifier.*" layers under their real names but cut down to a
few numbers each, which the course must skip: 37 MB instead of 507.

The pytest fixtures at the end (`pets_env`, `no_network`) put them where notebook 6 looks; test
modules import them by name.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.paths import CHECKPOINT_DIR_VARIABLE
from course_utils.pets import PETS_VARIABLE

#: (breed as in the file names, CLASS-ID, SPECIES, BREED-ID), as in the real annotations.
BREEDS = (
    ("Abyssinian", 1, 1, 1),
    ("american_bulldog", 2, 2, 1),
    ("Bengal", 6, 1, 2),
    ("beagle", 5, 2, 4),
)
LIST_HEADER = (
    "#Image CLASS-ID SPECIES BREED ID\n"
    "#ID: 1:37 Class ids\n"
    "#SPECIES: 1:Cat 2:Dog\n"
    "#BREED ID: 1-25:Cat 1:12:Dog\n"
    "#All images with 1st letter as captial are cat images\n"
    "#images with small first letter are dog images\n"
)
#: Photo sizes (width, height): odd and uneven, as real photos are.
SIZES = ((150, 113), (97, 131), (128, 128), (175, 101))


def pet_photo(rng: np.random.Generator, width: int, height: int, species: int) -> tuple[Image.Image, Image.Image]:
    """A noisy background with an ellipse (the "pet"), reddish for cats and bluish for dogs, and its
    trimap: 1 inside the ellipse, 3 on a band about 2 pixels wide along its edge, 2 elsewhere."""
    y, x = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.4, 0.6) * height, rng.uniform(0.4, 0.6) * width
    ry, rx = rng.uniform(0.25, 0.4) * height, rng.uniform(0.25, 0.4) * width
    r = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)
    photo = rng.uniform(0, 255, (height, width, 3))
    colour = (200, 80, 60) if species == 1 else (60, 90, 200)
    photo[r < 1] = 0.3 * photo[r < 1] + 0.7 * np.array(colour)
    band = 2.0 / min(rx, ry)
    trimap = np.where(r < 1 - band, 1, np.where(r < 1 + band, 3, 2)).astype(np.uint8)
    return Image.fromarray(photo.astype(np.uint8)), Image.fromarray(trimap, mode="L")


def build_pets(root: Path, trainval: int = 12, test: int = 6, seed: int = 0) -> Path:
    """Write the dataset under root/oxford-iiit-pet; return that folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "oxford-iiit-pet"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
    lines = {"trainval": [], "test": []}
    for index in range(trainval + test):
        breed, class_id, species, breed_id = BREEDS[index % len(BREEDS)]
        name = f"{breed}_{index + 1}"
        photo, trimap = pet_photo(rng, *SIZES[index % len(SIZES)], species)
        photo.save(folder / "images" / f"{name}.jpg", quality=90)
        trimap.save(folder / "annotations" / "trimaps" / f"{name}.png")
        lines["trainval" if index < trainval else "test"].append(f"{name} {class_id} {species} {breed_id}\n")
    for split, split_lines in lines.items():
        (folder / "annotations" / f"{split}.txt").write_text("".join(split_lines))
    (folder / "annotations" / "list.txt").write_text(LIST_HEADER + "".join(lines["trainval"] + lines["test"]))
    return folder


def build_weights(torch_home: Path, seed: int = 0) -> Path:
    """Write random vgg11_bn features where torch looks for the downloaded weights; return the file."""
    from torchvision.models import VGG11_BN_Weights
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(seed)
    features = make_layers(cfgs["A"], batch_norm=True)  # exactly vgg11_bn().features
    for module in features:
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = Path(torch_home) / "hub" / "checkpoints" / Path(VGG11_BN_Weights.IMAGENET1K_V1.url).name
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {f"features.{key}": value for key, value in features.state_dict().items()}
    # The real file also holds the fully connected layers, which the course does not use. Their
    # names are vgg11_bn's; their sizes are cut down (the real ones are 500 MB: 25088 -> 4096 -> 4096 -> 1000).
    for layer, (outputs, inputs) in {"0": (8, 32), "3": (8, 8), "6": (10, 8)}.items():
        state_dict[f"classifier.{layer}.weight"] = torch.randn(outputs, inputs)
        state_dict[f"classifier.{layer}.bias"] = torch.randn(outputs)
    torch.save(state_dict, path)
    return path


# ---------------------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory):
    """(dataset folder, weights file), written once per test module."""
    root = tmp_path_factory.mktemp("pets")
    return build_pets(root / "data"), build_weights(root / "torch")


@pytest.fixture
def pets_env(fixture_files, tmp_path, monkeypatch):
    """The fixture's dataset and weights where notebook 6 looks, and an empty checkpoint folder."""
    folder, weights = fixture_files
    monkeypatch.setenv(PETS_VARIABLE, str(folder))
    monkeypatch.setenv("TORCH_HOME", str(weights.parents[2]))
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(tmp_path / "checkpoints"))
    return folder, weights


@pytest.fixture
def no_network(monkeypatch):
    """Every connection fails, as on a machine without network; nothing else is replaced."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
