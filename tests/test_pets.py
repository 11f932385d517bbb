"""Notebook 6 and its modules (pets, pretrained, pets_train, photo) on a fixture in the real dataset's layout.

The real files (about 800 MB of photos, 507 MB of weights) cannot be downloaded in CI, so
tests/pets_fixture.py writes a few photos, trimaps and annotation files as the dataset has them,
and random weights where torch looks for the real ones. Everything then goes through the real
torchvision code (OxfordIIITPet, VGG11_BN_Weights.get_state_dict); only the network is cut off.
"""

import io
import shutil
from datetime import datetime, timezone

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from PIL import Image
from torch.utils.data import Subset
from torchvision.datasets import OxfordIIITPet
from torchvision.models.vgg import cfgs, make_layers
from torchvision.transforms.functional import pil_to_tensor

from course_utils import pretrained
from course_utils.checks import SelfCheckError, check_trimap_to_mask
from course_utils.models import VGG11SkipFCN
from course_utils.paths import NOTEBOOK_DIR
from course_utils.pets import (
    PETS_VARIABLE,
    SPECIES,
    MissingDownloadError,
    download_or_explain,
    is_full_dataset,
    pets_dataset,
    trimap_to_mask,
)
from course_utils.pets_train import pets_size, pets_splits, pretrained_classifier
from course_utils.photo import PhotoUpload, segment_photo, show_photo
from tests import pets_fixture
from tests.pets_fixture import build_pets

# The fixtures pets_env (the fixture's dataset and weights where notebook 6 looks) and no_network.
fixture_files, pets_env, no_network = pets_fixture.fixture_files, pets_fixture.pets_env, pets_fixture.no_network

NOTEBOOK = NOTEBOOK_DIR / "06_real_photos.ipynb"
#: The same notebook in the Korean edition, built from the English one (publish/translations.py).
NOTEBOOK_KO = NOTEBOOK_DIR / "ko" / "06_real_photos.ipynb"


# ---------------------------------------------------------------------------- trimaps and the fixture


def test_trimap_becomes_a_course_mask_hand_worked():
    trimap = torch.tensor([[2, 2, 3], [2, 1, 3], [3, 1, 1]], dtype=torch.uint8)
    assert trimap_to_mask(trimap, 0).tolist() == [[0, 0, 255], [0, 1, 255], [255, 1, 1]]  # a cat: 1
    assert trimap_to_mask(trimap, 1).tolist() == [[0, 0, 255], [0, 2, 255], [255, 2, 2]]  # a dog: 2
    assert trimap_to_mask(trimap, 1).dtype == torch.int64
    with pytest.raises(ValueError, match=r"1 \(pet\), 2 \(background\) or 3 \(border\), also found \[0, 255\]"):
        trimap_to_mask(torch.tensor([[0, 1], [2, 255]]), 0)
    with pytest.raises(ValueError, match="one trimap shaped"):
        trimap_to_mask(torch.ones(1, 3, 3), 0)


def test_the_trimap_self_check_accepts_the_answer_and_names_the_usual_mistakes(capsys):
    check_trimap_to_mask(trimap_to_mask)
    assert capsys.readouterr().out.startswith("✓ trimap_to_mask")

    def border_as_background(trimap, label):
        mask = trimap_to_mask(trimap, label)
        mask[mask == 255] = 0
        return mask

    with pytest.raises(SelfCheckError, match="the border \\(3\\) became background"):
        check_trimap_to_mask(border_as_background)

    def label_not_shifted(trimap, label):
        mask = trimap_to_mask(trimap, label)
        mask[trimap == 1] = label
        return mask

    with pytest.raises(SelfCheckError, match="mask value k \\+ 1 is class k"):
        check_trimap_to_mask(label_not_shifted)


def test_the_fixture_is_read_by_torchvision_as_the_real_dataset_is(pets_env):
    folder, _ = pets_env
    lines = (folder / "annotations" / "trainval.txt").read_text().splitlines()
    assert all(len(line.split()) == 4 for line in lines)  # Image CLASS-ID SPECIES BREED-ID, no header
    assert (folder / "annotations" / "list.txt").read_text().startswith("#Image CLASS-ID SPECIES BREED ID")
    raw = OxfordIIITPet(folder.parent, "test", target_types=("category", "binary-category", "segmentation"))
    photo, (breed, species, trimap) = raw[0]
    assert len(raw) == 6 and photo.mode == "RGB" and trimap.size == photo.size
    assert set(pil_to_tensor(trimap).unique().tolist()) == {1, 2, 3}
    image, (label, _, mask) = pets_dataset("test", 64)[0]
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and label == species
    assert set(mask.unique().tolist()) <= {0, label + 1, 255}
    assert not is_full_dataset(folder)


def test_splits_are_disjoint_and_sized_for_the_device(pets_env):
    assert pets_size("cpu").image_size == 160 and pets_size("cuda").train is None
    splits = pets_splits(pets_size("cpu"))
    assert {name: len(data) for name, (data, _) in splits.items()} == {"train": 9, "val": 3, "test": 6}
    assert not set(splits["train"][1]) & set(splits["val"][1])


# ---------------------------------------------------------------------------- weights and features


def test_imagenet_weights_load_key_for_key_from_torchs_cache_file(pets_env):
    _, weights = pets_env
    assert pretrained.weights_file() == weights  # named as torch.hub names the download
    backbone = pretrained.pretrained_backbone()
    stored = torch.load(weights, weights_only=True)
    assert {key.split(".")[0] for key in stored} == {"features", "classifier"}  # as in the real file
    reference = make_layers(cfgs["A"], batch_norm=True)  # torchvision's vgg11_bn().features
    reference.load_state_dict({k.removeprefix("features."): v for k, v in stored.items() if k.startswith("features.")})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(backbone(x), reference.eval()[:-1](x), atol=1e-5)  # all but its last pool
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training


def test_a_foreign_state_dict_given_is_a_clear_error_that_blames_no_file(pets_env):
    with pytest.raises(ValueError, match="the state dict given does not hold vgg11_bn's weights") as raised:
        pretrained.pretrained_backbone({"features.0.weight": torch.zeros(1)})
    assert "Delete" not in str(raised.value)  # the weights file was not read: it may be fine
    with pytest.raises(ValueError, match="the state dict given is not a dict of tensors: it holds a list"):
        pretrained.pretrained_backbone([torch.zeros(1)])


def test_feature_cache_is_reused_and_invalidated_when_its_inputs_change(pets_env, monkeypatch):
    backbone = pretrained.pretrained_backbone()
    calls = []
    backbone[0].register_forward_hook(lambda *args: calls.append(1))
    data, ids = pets_splits(pets_size("cpu"))["val"]

    data64 = Subset(pets_dataset("trainval", 64), data.indices)  # the same photos at 64x64

    def features(size=160, names=ids):
        return pretrained.load_or_extract("val", backbone, data if size == 160 else data64, names, size)

    first = features()
    assert len(calls) == 1 and first["pool3"].dtype == torch.float16 and first["pool5"].shape == (3, 512, 5, 5)
    assert torch.equal(features()["pool4"], first["pool4"]) and len(calls) == 1  # a hit: the backbone did not run
    features(size=64)
    assert len(calls) == 2  # another image size
    features(names=list(reversed(ids)))
    assert len(calls) == 3  # other photos (same count, other order)
    with torch.no_grad():
        backbone[0].weight[0, 0, 0, 0] += 1
    features()
    assert len(calls) == 4  # other weights
    monkeypatch.setattr(pretrained, "CODE_FINGERPRINT", "changed code")
    features()
    assert len(calls) == 5  # other code
    monkeypatch.setattr(pretrained.torchvision, "__version__", "0.0.1")
    features()
    assert len(calls) == 6  # another torchvision (its resize and crop prepare the photos)
    with pytest.raises(ValueError, match="3 photos"):
        features(names=ids[:2])


def test_fcn_head_on_cached_features_equals_the_whole_network():
    torch.manual_seed(0)
    fcn = VGG11SkipFCN(num_classes=3, width=4, variant="8s").eval()
    x = torch.randn(2, 3, 70, 90)
    with torch.no_grad():
        pool3, pool4, conv5 = fcn.backbone.forward_stages(x)
        head = fcn.scores_from_features(pool3, pool4, fcn.pool5(conv5), x.shape[-2:])
        assert torch.equal(head, fcn(x)) and head.shape == (2, 3, 70, 90)


# ---------------------------------------------------------------------------- offline


def test_offline_without_files_one_message_says_what_how_big_and_where(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv(PETS_VARIABLE, str(tmp_path / "pets" / "oxford-iiit-pet"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingDownloadError) as raised:
        download_or_explain()
    message = str(raised.value)
    assert "downloading them failed" in message and "network disabled by the test" in message
    assert "about 800 MB" in message and str(tmp_path / "pets" / "oxford-iiit-pet") in message
    assert "507 MB" in message and str(tmp_path / "torch" / "hub" / "checkpoints" / "vgg11_bn-6002323d.pth") in message
    assert raised.value._render_traceback_() == [f"MissingDownloadError: {message}"]  # what Jupyter shows: no traceback


def test_a_half_extracted_dataset_is_named_as_incomplete_not_as_a_failed_download(pets_env, tmp_path, monkeypatch):
    folder = build_pets(tmp_path / "data")
    shutil.rmtree(folder / "annotations" / "trimaps")  # images/ and annotations/ exist: torchvision will not download
    monkeypatch.setenv(PETS_VARIABLE, str(folder))
    with pytest.raises(MissingDownloadError) as raised:
        download_or_explain()
    message = str(raised.value)
    assert "the folder is incomplete" in message and "Missing: annotations/trimaps in" in message
    assert "507 MB" not in message  # the weights are there


def test_offline_with_the_files_nothing_is_downloaded(pets_env, no_network):
    assert download_or_explain() == pets_env[0]


# ---------------------------------------------------------------------------- your own photo


def test_own_photo_of_an_odd_size_gets_a_mask_of_its_size(pets_env, tmp_path):
    fcn = VGG11SkipFCN.from_classifier(pretrained_classifier(pretrained.pretrained_backbone()))
    odd = tmp_path / "odd.png"
    Image.new("RGB", (97, 61), (200, 120, 40)).save(odd)
    image, mask = segment_photo(fcn, odd)
    assert image.shape == (3, 61, 97) and mask.shape == (61, 97) and mask.dtype == torch.int64
    large = io.BytesIO()
    Image.new("RGB", (900, 301)).save(large, format="JPEG")
    image, mask = segment_photo(fcn, large.getvalue(), max_side=300)  # scaled down, shape kept
    assert image.shape == (3, 100, 300) and mask.shape == (100, 300)
    (tmp_path / "notes.txt").write_text("not a photo")
    with pytest.raises(ValueError, match="is not an image Pillow can read"):
        segment_photo(fcn, tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="no photo at"):
        segment_photo(fcn, tmp_path / "missing.jpg")
    Image.new("RGB", (20, 50)).save(tmp_path / "tiny.png")
    with pytest.raises(ValueError, match="at least 32x32"):
        segment_photo(fcn, tmp_path / "tiny.png")
    uploader = PhotoUpload(fcn)
    file = {"name": "odd.png", "type": "image/png", "size": 1, "last_modified": datetime.now(timezone.utc)}
    uploader.upload.value = ({**file, "content": memoryview(odd.read_bytes())},)  # as a browser sets it
    assert uploader.result[0].shape == (3, 61, 97) and uploader.result[1].shape == (61, 97)
    uploader.upload.value = ({**file, "content": memoryview(b"not a photo")},)
    assert "is not an image" in uploader.result


def test_own_photo_is_scaled_to_the_training_scale_when_asked():
    from course_utils.photo import photo_tensor
    from course_utils.pretrained import resize_size

    assert resize_size(160) == 183 and resize_size(224) == 256  # the CPU's and the weights' own scales
    assert photo_tensor(Image.new("RGB", (400, 300))).shape == (3, 300, 400)  # by default neither up nor down
    assert photo_tensor(Image.new("RGB", (500, 375)), shorter_side=183).shape == (3, 183, 244)  # down
    assert photo_tensor(Image.new("RGB", (120, 90)), shorter_side=183).shape == (3, 183, 244)  # and up
    # a photo too long to fit max_side at 32 pixels high is refused, never stretched (see test_photo_inputs.py)
    with pytest.raises(ValueError, match="2000x100 pixels.*max_side=640 or more"):
        photo_tensor(Image.new("RGB", (2000, 100)), shorter_side=183)
    for wrong in (0, -5, 2.5, 20, True):
        with pytest.raises(ValueError, match="shorter_side must be a whole number of pixels"):
            photo_tensor(Image.new("RGB", (100, 100)), shorter_side=wrong)


def test_the_photo_overlay_has_a_legend_of_the_classes_it_shows():
    import matplotlib.pyplot as plt

    mask = torch.zeros(40, 60, dtype=torch.int64)
    mask[10:30, 20:50] = 1 + SPECIES.index("dog")
    figure = show_photo(torch.rand(3, 40, 60), mask, title="mine.jpg (60x40)")
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["dog"]
    assert figure.axes[0].get_title() == "mine.jpg (60x40)"
    plt.close(figure)


# ---------------------------------------------------------------------------- the notebook


def run_notebook(path, timeout=600):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        return notebook, error
    return notebook, None


@pytest.mark.parametrize("path", [NOTEBOOK, NOTEBOOK_KO], ids=["en", "ko"])
def test_notebook_6_runs_top_to_bottom_on_the_fixture(pets_env, path):
    notebook, error = run_notebook(path)
    assert error is None, str(error)[-3000:]
    text = "\n".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "NOT the full dataset" in text and "✓ trimap_to_mask" in text
    assert "mean of the score map == the classifier's scores: True" in text
    assert "FCN-8s" in text and "converted classifier" in text


def test_notebook_6_offline_stops_at_its_first_cell_with_the_message_alone(tmp_path, monkeypatch):
    monkeypatch.setenv(PETS_VARIABLE, str(tmp_path / "pets"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):  # the kernel's downloads: refused
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    notebook, error = run_notebook(NOTEBOOK, timeout=120)
    assert error is not None
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    (output,) = [o for o in first.outputs if o.output_type == "error"]
    assert output.ename == "MissingDownloadError"
    shown = "\n".join(output.traceback)
    assert shown.startswith("MissingDownloadError: Notebook 6 needs files") and "File " not in shown
    assert "800 MB" in shown and "507 MB" in shown and "Then run this cell again" in shown
    later = [cell for cell in notebook.cells if cell.cell_type == "code"][1:]
    assert all(not cell.get("outputs") for cell in later)  # nothing after it ran
