"""Checkpoints: save, load, and one clear CheckpointError for every way a file can be unusable."""

import pickle

import pytest
import torch
from torch.utils.data import TensorDataset

from course_utils.checkpoints import (
    CHECKPOINT_FIELDS,
    CheckpointError,
    load_checkpoint,
    load_or_train,
    save_checkpoint,
)
from course_utils.models import VGG11FCN, VGG11Classifier
from course_utils.train import fit
from tests.tiny_models import CONFIG, tiny_model, weights_equal


def tiny_classification_data(n=24):
    labels = torch.arange(n) % 3
    images = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return TensorDataset(images, labels)


def test_checkpoint_round_trip(tmp_path):
    model = tiny_model(seed=1)
    path = save_checkpoint(tmp_path / "model.pt", model, CONFIG, {"train_loss": [1.0, 0.5]})
    restored = tiny_model(seed=2)
    history = load_checkpoint(path, restored, CONFIG)
    assert weights_equal(model, restored)
    assert history == {"train_loss": [1.0, 0.5]}
    assert not restored.training


def test_missing_checkpoint_names_the_file_and_the_remedy(tmp_path):
    with pytest.raises(CheckpointError, match=r"nowhere\.pt: no such file\. Run the notebook"):
        load_checkpoint(tmp_path / "nowhere.pt", tiny_model())


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint at all", b"PK\x03\x04 truncated zip"],
    ids=["empty", "text", "truncated"],
)
def test_corrupt_checkpoint_is_one_clear_message(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"broken\.pt: not a readable PyTorch checkpoint.*Delete broken\.pt"):
        load_checkpoint(path, tiny_model())


def test_truncated_real_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "cut.pt", tiny_model(), CONFIG)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(path, tiny_model())


class NotAllowed:
    """Any pickled object that is not plain data; weights_only=True must refuse it."""


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoints_are_loaded_with_weights_only(tmp_path):
    path = tmp_path / "code.pt"
    torch.save({"format": 1, "payload": NotAllowed()}, path)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(path, tiny_model())
    path.write_bytes(pickle.dumps(NotAllowed()))
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(path, tiny_model())


def test_foreign_files_and_mismatches(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save(tiny_model().state_dict(), foreign)  # a bare state_dict, no configuration
    with pytest.raises(CheckpointError, match="not written by course_utils"):
        load_checkpoint(foreign, tiny_model())

    path = save_checkpoint(tmp_path / "c.pt", tiny_model(), CONFIG)
    with pytest.raises(CheckpointError, match=r"was made with .*'width': 4.*needs .*'width': 8"):
        load_checkpoint(path, VGG11Classifier(num_classes=3, width=8), {"num_classes": 3, "width": 8})
    with pytest.raises(CheckpointError, match="holds a VGG11Classifier, not a VGG11FCN"):
        load_checkpoint(path, VGG11FCN(num_classes=3, width=4))


def test_shape_mismatch_leaves_the_model_untouched(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", tiny_model(seed=1), CONFIG)
    other = VGG11Classifier(num_classes=3, width=8)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError, match="weights do not fit the model.*has shape"):
        load_checkpoint(path, other)  # no config given, so the shapes are what catch it
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_load_or_train_trains_once_then_loads(tmp_path, capsys):
    path = tmp_path / "ckpt" / "model.pt"
    calls = []

    def train(model):
        calls.append(1)
        return fit(model, tiny_classification_data(), epochs=1, batch_size=8, progress=False)

    first = tiny_model()
    history = load_or_train(path, first, CONFIG, train)
    assert calls == [1] and path.is_file()
    assert "Training a new model (none found)" in capsys.readouterr().out

    second = tiny_model(seed=5)
    assert load_or_train(path, second, CONFIG, train) == history
    assert calls == [1] and weights_equal(first, second)
    assert "Loaded the trained model" in capsys.readouterr().out


def test_load_or_train_retrains_over_a_corrupt_file_or_raises_when_asked(tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_or_train(path, tiny_model(), CONFIG, lambda m: {}, retrain=False)
    load_or_train(path, tiny_model(), CONFIG, lambda m: {"trained": [1.0]})
    assert "the saved one is unusable: not a readable PyTorch checkpoint" in capsys.readouterr().out
    assert load_checkpoint(path, tiny_model(), CONFIG) == {"trained": [1.0]}


# ----------------------------------------------------------------------------- a field missing


def save_without(tmp_path, *fields):
    """A course checkpoint of tiny_model() with `fields` removed, as an old or hand-edited file might be."""
    path = save_checkpoint(tmp_path / "partial.pt", tiny_model(seed=1), CONFIG, {"train_loss": [1.0]})
    payload = torch.load(path, weights_only=True)
    for field in fields:
        del payload[field]
    torch.save(payload, path)
    return path


def test_a_checkpoint_has_exactly_the_fields_save_checkpoint_writes(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", tiny_model(), CONFIG)
    assert tuple(torch.load(path, weights_only=True)) == CHECKPOINT_FIELDS


@pytest.mark.parametrize("field", CHECKPOINT_FIELDS)
def test_a_missing_field_is_a_checkpoint_error_naming_file_field_and_remedy(tmp_path, field):
    path = save_without(tmp_path, field)
    model = tiny_model(seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        CheckpointError,
        match=rf"partial\.pt: a course checkpoint without its field\(s\) '{field}'\. "
        r"Delete partial\.pt and run the notebook that trains it again",
    ):
        load_checkpoint(path, model, CONFIG)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # left untouched
    with pytest.raises(CheckpointError, match=rf"without its field\(s\) '{field}'"):
        load_or_train(path, tiny_model(), CONFIG, lambda m: {}, retrain=False)


@pytest.mark.parametrize("field", CHECKPOINT_FIELDS)
def test_load_or_train_retrains_over_a_checkpoint_missing_a_field(tmp_path, capsys, field):
    path = save_without(tmp_path, field)
    load_or_train(path, tiny_model(), CONFIG, lambda m: {"trained": [1.0]})
    assert f"the saved one is unusable: a course checkpoint without its field(s) '{field}'" in capsys.readouterr().out
    assert load_checkpoint(path, tiny_model(), CONFIG) == {"trained": [1.0]}  # and the new file is complete


def test_every_missing_field_is_named(tmp_path):
    path = save_without(tmp_path, "config", "history")
    with pytest.raises(CheckpointError, match=r"without its field\(s\) 'config', 'history'\."):
        load_checkpoint(path, tiny_model())


def test_another_checkpoint_format_says_so(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", tiny_model(), CONFIG)
    payload = torch.load(path, weights_only=True)
    payload["format"] = 2
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="written in checkpoint format 2, this course reads format 1"):
        load_checkpoint(path, tiny_model())
