"""Training loop, determinism, device choice and checkpoints (tiny models, so it runs in seconds)."""

import pickle

import pytest
import torch
from torch.utils.data import TensorDataset

from course_utils.models import VGG11Classifier, VGG11FCN
from course_utils.train import (
    CHECKPOINT_DIR_VARIABLE,
    DATA_DIR,
    WIDTH_VARIABLE,
    CheckpointError,
    checkpoint_dir,
    default_width,
    evaluate,
    fit,
    load_checkpoint,
    load_or_train,
    pick_device,
    predict,
    save_checkpoint,
)

CONFIG = {"num_classes": 3, "width": 4}


def tiny_classification_data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.rand(n, 3, 32, 32, generator=g) * 0.2
    for i, label in enumerate(labels):
        images[i, label] += 0.8  # class = the bright channel: learnable in a few steps
    return TensorDataset(images, labels)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return VGG11Classifier(**CONFIG)


def weights_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ----------------------------------------------------------------------------- training


def test_fit_is_deterministic_and_learns():
    data = tiny_classification_data()
    a, b = tiny_model(), tiny_model()
    history_a = fit(a, data, epochs=3, lr=1e-2, batch_size=8, progress=False, seed=0)
    history_b = fit(b, data, epochs=3, lr=1e-2, batch_size=8, progress=False, seed=0)
    assert weights_equal(a, b)
    seconds_a, seconds_b = history_a.pop("seconds"), history_b.pop("seconds")
    assert history_a == history_b  # all but the wall-clock time
    assert 0 < seconds_a < 60 and 0 < seconds_b < 60
    assert len(history_a["train_loss"]) == 3 and len(history_a["step_loss"]) == 9
    assert history_a["train_loss"][-1] < history_a["train_loss"][0]
    assert not a.training  # fit leaves the model ready for evaluation


def test_a_different_seed_gives_a_different_run():
    data = tiny_classification_data()
    a, b = tiny_model(), tiny_model()
    fit(a, data, epochs=1, batch_size=8, progress=False, seed=0)
    fit(b, data, epochs=1, batch_size=8, progress=False, seed=1)
    assert not weights_equal(a, b)


def test_fit_records_validation_and_evaluate_counts_right():
    data = tiny_classification_data()
    model = tiny_model()
    history = fit(model, data, epochs=2, lr=1e-2, batch_size=8, val_data=data, progress=False)
    assert len(history["val_accuracy"]) == 2
    result = evaluate(model, data)
    predicted = predict(model, data.tensors[0]).argmax(1)
    assert result["accuracy"] == pytest.approx((predicted == data.tensors[1]).float().mean().item())
    assert result["accuracy"] == history["val_accuracy"][-1]


def test_segmentation_targets_with_ignored_pixels():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    masks = torch.zeros(4, 32, 32, dtype=torch.long)
    masks[:, 8:24, 8:24] = 2
    masks[:, 0, :] = 255  # ignored row
    model = VGG11FCN(num_classes=3, width=4)
    history = fit(model, TensorDataset(images, masks), epochs=1, batch_size=2, progress=False)
    assert len(history["train_loss"]) == 1
    result = evaluate(model, TensorDataset(images, masks))
    assert 0.0 <= result["accuracy"] <= 1.0


def test_empty_dataset_is_a_clear_error():
    empty = TensorDataset(torch.zeros(0, 3, 32, 32), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty dataset"):
        fit(tiny_model(), empty, epochs=1, progress=False)
    with pytest.raises(ValueError, match="empty dataset"):
        evaluate(tiny_model(), empty)


def test_device_choice_here_is_the_cpu(monkeypatch):
    monkeypatch.delenv(WIDTH_VARIABLE, raising=False)
    assert pick_device().type in {"cpu", "cuda", "mps"}
    assert default_width("cpu") == 16 and default_width("cuda") == 64
    if not torch.cuda.is_available():
        assert pick_device().type in {"cpu", "mps"}


def test_the_width_variable_chooses_the_width_on_every_device(monkeypatch):
    monkeypatch.setenv(WIDTH_VARIABLE, "16")
    assert default_width("cuda") == 16 and default_width("cpu") == 16
    monkeypatch.setenv(WIDTH_VARIABLE, "8")
    assert default_width("cpu") == 8
    for wrong in ("0", "-4", "sixteen", "1.5"):
        monkeypatch.setenv(WIDTH_VARIABLE, wrong)
        with pytest.raises(ValueError, match=f"FCN_COURSE_WIDTH must be a positive whole number.*{wrong!r}"):
            default_width("cpu")


# ----------------------------------------------------------------------------- checkpoints


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


def test_checkpoints_go_to_data_unless_the_variable_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv(CHECKPOINT_DIR_VARIABLE, raising=False)
    assert checkpoint_dir() == DATA_DIR / "checkpoints"
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(tmp_path))
    assert checkpoint_dir() == tmp_path
    from course_utils.recipes import classifier_checkpoint

    assert classifier_checkpoint(16) == tmp_path / "classifier_w16.pt"  # read at call time
