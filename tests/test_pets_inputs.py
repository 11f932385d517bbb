"""Bad inputs to notebook 6: its weights file, its dataset folder and its feature caches.

Each is made on disk as a learner could have it (a cut-off download, a wrong folder, a damaged
file), in the small fixture of tests/pets_fixture.py or as a tiny weights file in tmp_path, and
read through the real torchvision and torch code. Every one must give one clear error naming the
file and what to do, or, for a cache, a one-line warning and a fresh computation: never a deep
traceback from torch or PIL, and never wrong data used silently.
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Subset

from course_utils import pretrained
from course_utils.paths import CHECKPOINT_DIR_VARIABLE
from course_utils.pets import PETS_VARIABLE, image_ids, pets_dataset, trimap_to_mask
from course_utils.pets_train import PetsSize, pets_splits
from tests import pets_fixture
from tests.damage import flip_a_byte_inside_the_largest_tensor, rewrite
from tests.pets_fixture import build_pets

# The fixtures pets_env (the fixture's dataset and weights where notebook 6 looks) and no_network.
fixture_files, pets_env, no_network = pets_fixture.fixture_files, pets_fixture.pets_env, pets_fixture.no_network

# ---------------------------------------------------------------------------- the weights file


@pytest.fixture
def weights_path(tmp_path, monkeypatch):
    """Where torch (and so the course) looks for the weights, in an empty TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = pretrained.weights_file()
    path.parent.mkdir(parents=True)
    return path


def saved(payload, legacy: bool = False) -> bytes:
    """torch.save(payload) as bytes: the zip format, or the legacy one the real 2017 file is in."""
    buffer = io.BytesIO()
    torch.save(payload, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def assert_says_what_to_do(message: str, path):
    assert str(path) in message and "507 MB" in message
    assert "weights_only" not in message  # torch's advice to load pickled code: never repeated


def test_missing_weights_offline_is_one_file_not_found_error_saying_where_to_put_them(weights_path, no_network):
    with pytest.raises(FileNotFoundError) as raised:
        pretrained.pretrained_backbone()
    message = str(raised.value)
    assert_says_what_to_do(message, weights_path)
    assert "network disabled by the test" in message and pretrained.WEIGHTS.url in message
    assert "by hand" in message and not weights_path.exists()


SMALL = {"features.0.weight": torch.randn(64, 3, 3, 3), "features.0.bias": torch.randn(64)}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"<html>502 Bad Gateway</html>" * 10,
        saved(SMALL)[: len(saved(SMALL)) // 2],
        saved(SMALL, legacy=True)[:-100],
    ],
    ids=["empty", "garbage", "cut-off zip", "cut-off legacy format"],
)
def test_an_unreadable_weights_file_is_named_with_its_size_and_remedy(weights_path, content):
    weights_path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable PyTorch file") as raised:
        pretrained.pretrained_backbone()
    assert_says_what_to_do(str(raised.value), weights_path)
    assert "Delete it" in str(raised.value) and f"{len(content):,} bytes" in str(raised.value)


@pytest.mark.parametrize(
    "payload, found",
    [
        ([torch.zeros(3)], "a list"),
        (torch.zeros(3), "a tensor"),
        ({"features.0.weight": [0.5, 1.5]}, "'features.0.weight' is a list"),
    ],
)
def test_a_weights_file_that_is_not_a_state_dict_of_tensors_is_named(weights_path, payload, found):
    weights_path.write_bytes(saved(payload))
    with pytest.raises(ValueError, match="not a state dict of tensors") as raised:
        pretrained.pretrained_backbone()
    assert_says_what_to_do(str(raised.value), weights_path)
    assert found in str(raised.value)


def test_a_weights_file_without_the_backbone_names_the_missing_keys(weights_path, fixture_files):
    classifier_only = {"classifier.0.weight": torch.zeros(4, 8), "classifier.0.bias": torch.zeros(4)}
    weights_path.write_bytes(saved(classifier_only))
    with pytest.raises(ValueError, match=r"missing 48 of its 48 backbone keys \('features\.0\.weight', ") as raised:
        pretrained.pretrained_backbone()
    assert_says_what_to_do(str(raised.value), weights_path)
    complete = torch.load(fixture_files[1], weights_only=True)
    with pytest.raises(ValueError, match=r"'features\.0\.weight' has shape \(3,\), vgg11_bn's is \(64, 3, 3, 3\)"):
        pretrained.pretrained_backbone({**complete, "features.0.weight": torch.zeros(3)})


def test_weights_saved_before_batchnorm_counted_its_batches_still_load(weights_path, fixture_files):
    # The real file dates from 2017: its BatchNorm layers have no num_batches_tracked entries.
    complete = torch.load(fixture_files[1], weights_only=True)
    old = {key: value for key, value in complete.items() if not key.endswith("num_batches_tracked")}
    weights_path.write_bytes(saved(old, legacy=True))
    backbone = pretrained.pretrained_backbone()
    assert torch.equal(backbone.state_dict()["0.weight"], complete["features.0.weight"])


# ---------------------------------------------------------------------------- the dataset folder


@pytest.fixture
def pets(tmp_path, monkeypatch):
    """A fresh small fixture (8 trainval and 4 test photos) where notebook 6 looks, to damage."""
    folder = build_pets(tmp_path / "data", trainval=8, test=4)
    monkeypatch.setenv(PETS_VARIABLE, str(folder))
    return folder


LAYOUT = ("images/", "annotations/trimaps/", "annotations/trainval.txt", "annotations/test.txt")


@pytest.mark.parametrize("where", ["missing", "empty", "wrong"])
def test_no_dataset_in_the_folder_names_the_folder_its_layout_and_how_to_get_it(tmp_path, monkeypatch, where):
    folder = tmp_path / "oxford-iiit-pet"
    if where != "missing":
        folder.mkdir()
    if where == "wrong":  # e.g. the archives downloaded but not extracted
        (folder / "images.tar.gz").write_bytes(b"\x1f\x8b")
        (folder / "annotations").mkdir()
    monkeypatch.setenv(PETS_VARIABLE, str(folder))
    for read in (lambda: pets_dataset("trainval", 64), lambda: pets_splits(PetsSize(64, 2, 1, 1))):
        with pytest.raises(FileNotFoundError) as raised:
            read()
        message = str(raised.value)
        assert str(folder) in message and all(part in message for part in LAYOUT)
        assert "download_or_explain" in message and "download=True" not in message


def test_a_listed_photo_missing_from_images_is_named_before_any_is_read(pets):
    (pets / "images" / "Bengal_3.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of the 8 photos listed in .*trainval\.txt.*Bengal_3\.jpg"):
        pets_dataset("trainval", 64)


def cut_in_half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("file", ["images/Bengal_3.jpg", "annotations/trimaps/Bengal_3.png"])
def test_a_cut_off_photo_or_trimap_is_named(pets, file):
    cut_in_half(pets / file)
    data = pets_dataset("trainval", 64)
    data[0]  # the other photos are fine
    with pytest.raises(ValueError, match="cannot be read as an image") as raised:
        data[2]
    assert str(pets / file) in str(raised.value)


def test_trimap_values_other_than_1_2_3_name_the_file_and_the_values(pets):
    path = pets / "annotations" / "trimaps" / "Bengal_3.png"
    trimap = np.asarray(Image.open(path))
    Image.fromarray((trimap * 100).astype(np.uint8)).save(path)  # a mask saved for viewing: 100, 200, 44
    with pytest.raises(ValueError, match=r"holds the values \[44, 100, 200\]") as raised:
        pets_dataset("trainval", 64)[2]
    assert str(path) in str(raised.value) and "1 (pet), 2 (background), 3 (border)" in str(raised.value)


def test_a_trimap_of_another_size_than_its_photo_names_both_sizes(pets):
    path = pets / "annotations" / "trimaps" / "Bengal_3.png"
    Image.open(path).resize((64, 64), Image.NEAREST).save(path)  # its photo is 128x128
    with pytest.raises(ValueError, match=r"is 64x64 pixels, but its photo Bengal_3\.jpg is 128x128") as raised:
        pets_dataset("trainval", 64)[2]
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    "cut, problem",
    [
        (lambda text: "", r"lists no photos"),
        (lambda text: text[: text.rindex(" ")], r"line 8 is 'beagle_8 5 2', not '<photo> <class id"),
        (
            lambda text: "".join(text.splitlines(keepends=True)[:5]),
            r"lists 5 photos and .*test\.txt lists 4, but .*list\.txt names 12 photos: 3 are in neither",
        ),
    ],
    ids=["empty", "cut mid-line", "cut after a line"],
)
def test_an_empty_or_cut_off_split_list_is_named_with_the_count_found(pets, cut, problem):
    path = pets / "annotations" / "trainval.txt"
    path.write_text(cut(path.read_text()))
    with pytest.raises(ValueError, match=problem) as raised:
        pets_splits(PetsSize(64, 4, 1, 2))
    assert str(path) in str(raised.value)


def test_a_split_too_small_to_train_on_is_named_with_its_count(pets):
    path = pets / "annotations" / "trainval.txt"
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    (pets / "annotations" / "list.txt").unlink()  # a deliberately small copy: nothing says it is cut off
    with pytest.raises(ValueError, match=r"trainval\.txt lists 1 photo: notebook 6 needs at least 2"):
        pets_splits(PetsSize(64, 4, 1, 2))
    with pytest.raises(ValueError, match="PetsSize.train must be a number of photos, at least one"):
        pets_splits(PetsSize(64, train=0, val=1, test=2))


def test_no_photos_never_reach_torch_cat(pets_env):
    backbone = pretrained.pretrained_backbone()
    with pytest.raises(ValueError, match="no photos"):
        pretrained.load_or_extract("train", backbone, Subset(pets_dataset("test", 64), []), [], 64)


@pytest.mark.parametrize("label", [-1, 2, 0.5, True, "1", None])
def test_trimap_to_mask_refuses_a_label_that_is_not_a_species_index(label):
    trimap = torch.tensor([[1, 2], [3, 1]], dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"label must be 0 \(cat\) or 1 \(dog\)"):
        trimap_to_mask(trimap, label)
    assert trimap_to_mask(trimap, np.int64(1)).tolist() == [[2, 0], [255, 2]]  # a numpy integer is an integer


# ---------------------------------------------------------------------------- the feature cache


@pytest.fixture
def cached(pets, tmp_path, monkeypatch, fixture_files):
    """(features, compute) for 2 test photos at 64x64, cached once; compute() counts backbone runs."""
    monkeypatch.setenv("TORCH_HOME", str(fixture_files[1].parents[2]))
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(tmp_path / "checkpoints"))
    backbone, test = pretrained.pretrained_backbone(), pets_dataset("test", 64)
    data, ids, runs = Subset(test, [0, 1]), image_ids(test)[:2], []
    backbone[0].register_forward_hook(lambda *args: runs.append(1))

    def compute():
        return pretrained.load_or_extract("test", backbone, data, ids, 64)

    features = {key: value.clone() for key, value in compute().items()}
    path = pretrained.feature_cache_path("test", pretrained.feature_cache_key(ids, 64, backbone))
    assert path.is_file() and len(runs) == 1
    return features, compute, path, runs


@pytest.mark.parametrize(
    "damage, problem",
    [
        (flip_a_byte_inside_the_largest_tensor, "does not match its digest"),
        (lambda path: rewrite(path, lambda p: p["features"]["pool3"].mul_(2)), "does not match its digest"),
        (lambda path: rewrite(path, lambda p: p["features"].pop("pool4")), "lacks 'pool4'"),
        (lambda path: rewrite(path, lambda p: p["features"].update(masks=p["features"]["masks"][:1])), "1 photo"),
        (lambda path: path.write_bytes(path.read_bytes()[:1000]), "not a readable PyTorch file"),
    ],
    ids=["flipped byte", "wrong values", "missing item", "missing photo", "cut off"],
)
def test_a_damaged_feature_cache_is_named_in_one_line_and_computed_again(cached, damage, problem):
    features, compute, path, runs = cached
    damage(path)
    with pytest.warns(UserWarning, match=problem) as warned:
        again = compute()
    (warning,) = warned
    message = str(warning.message)
    assert str(path) in message and "computing it again" in message and "\n" not in message
    assert len(runs) == 2 and all(torch.equal(again[key], value) for key, value in features.items())
    compute()
    assert len(runs) == 2  # the file written again is whole: used as it is
