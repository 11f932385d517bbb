"""Training loop, evaluation, determinism and device choice (tiny models, so it runs in seconds)."""

import re

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from course_utils.data import IGNORE_INDEX
from course_utils.models import VGG11FCN, VGG11Classifier
from course_utils.train import (
    MAX_WIDTH,
    WIDTH_VARIABLE,
    check_image_sizes,
    count_correct,
    default_width,
    evaluate,
    fit,
    inference_batch_size,
    inference_copy,
    make_loader,
    make_optimizer,
    pick_device,
    predict,
    resize_images,
    train_one_epoch,
)
from tests.tiny_models import tiny_model, weights_equal


def tiny_classification_data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.rand(n, 3, 32, 32, generator=g) * 0.2
    for i, label in enumerate(labels):
        images[i, label] += 0.8  # class = the bright channel: learnable in a few steps
    return TensorDataset(images, labels)


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


def test_progressive_resizing_trains_each_epoch_at_its_size_and_validates_at_full_size():
    """fit(image_sizes=[48, None]): the first epoch's steps see 48x48 images, the second's the
    data's own 64x64; validation (eval mode) always sees 64x64."""
    data = tiny_classification_data(n=16)
    data = TensorDataset(nn.functional.interpolate(data.tensors[0], size=64), data.tensors[1])
    model = tiny_model()
    seen = []  # (training?, height, width) of every batch the model is given
    model.register_forward_pre_hook(lambda module, args: seen.append((module.training, *args[0].shape[-2:])))
    fit(model, data, epochs=2, batch_size=8, val_data=data, image_sizes=[48, None], progress=False)
    training = [size for training, *size in seen if training]
    validation = {tuple(size) for training, *size in seen if not training}
    assert training == [[48, 48]] * 2 + [[64, 64]] * 2, training
    assert validation == {(64, 64)}, validation


def test_progressive_resizing_changes_the_run_and_none_is_the_plain_run():
    data = TensorDataset(
        nn.functional.interpolate(tiny_classification_data().tensors[0], size=48), tiny_classification_data().tensors[1]
    )
    plain, all_none, resized = tiny_model(), tiny_model(), tiny_model()
    fit(plain, data, epochs=2, batch_size=8, progress=False)
    fit(all_none, data, epochs=2, batch_size=8, progress=False, image_sizes=[None, None])
    fit(resized, data, epochs=2, batch_size=8, progress=False, image_sizes=[32, None])
    assert weights_equal(plain, all_none) and not weights_equal(plain, resized)


def test_resize_images_shrinks_smoothly():
    images = torch.rand(2, 3, 64, 64)
    assert resize_images(images, 48).shape == (2, 3, 48, 48)
    constant = torch.full((1, 3, 64, 64), 0.25)
    assert torch.allclose(resize_images(constant, 48), torch.full((1, 3, 48, 48), 0.25))
    lines = (torch.arange(64) % 4 == 0).float().expand(1, 3, 64, 64)  # a bright column in every 4
    shrunk = resize_images(lines, 16)  # 4 columns per pixel: antialiasing averages them (plain bilinear: 0)
    inner = shrunk[..., 1:-1]  # (the border columns average fewer columns)
    assert torch.allclose(inner, torch.full_like(inner, 0.25), atol=0.01), inner.aminmax()


@pytest.mark.parametrize(
    "image_sizes, message",
    [
        ([48], "one entry per epoch"),
        ([48, 48, 48], "one entry per epoch"),
        ([0, None], "positive whole number"),
        ([47.5, None], "positive whole number"),
    ],
)
def test_image_sizes_that_do_not_fit_are_clear_errors(image_sizes, message):
    with pytest.raises(ValueError, match=message):
        fit(tiny_model(), tiny_classification_data(), epochs=2, image_sizes=image_sizes, progress=False)


def test_progressive_resizing_refuses_masks():
    masks = TensorDataset(torch.rand(4, 3, 32, 32), torch.zeros(4, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match=r"for labels .*shape \(32, 32\)"):
        fit(VGG11FCN(num_classes=3, width=4), masks, epochs=1, image_sizes=[16], progress=False)


class NoPeeking(torch.utils.data.Dataset):
    """A dataset that fails when an item is read: for checks that must not draw a sample."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        raise AssertionError(f"item {index} was read")


def test_image_sizes_without_a_size_draw_no_sample_to_check():
    assert check_image_sizes([None, None], 2, NoPeeking()) == [None, None]
    assert check_image_sizes(None, 3, NoPeeking()) == [None, None, None]
    with pytest.raises(AssertionError, match="item 0 was read"):  # a size: the target is looked at
        check_image_sizes([16, None], 2, NoPeeking())


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
    monkeypatch.setenv(WIDTH_VARIABLE, str(MAX_WIDTH))
    assert default_width("cpu") == MAX_WIDTH
    for wrong in ("0", "-4", "sixteen", "1.5", "\u00b2", "\u0661\u0666", "+16", "0x10"):  # ², Arabic-Indic 16
        monkeypatch.setenv(WIDTH_VARIABLE, wrong)
        with pytest.raises(
            ValueError, match=f"FCN_COURSE_WIDTH must be a whole number from 1 to {MAX_WIDTH}.*{re.escape(repr(wrong))}"
        ):
            default_width("cpu")


@pytest.mark.parametrize("huge", ["257", "2000", "100000", "9" * 40])
def test_a_width_that_would_exhaust_memory_is_refused(monkeypatch, huge):
    monkeypatch.setenv(WIDTH_VARIABLE, huge)
    with pytest.raises(ValueError, match=f"FCN_COURSE_WIDTH must be a whole number from 1 to {MAX_WIDTH}.*{huge!r}"):
        default_width("cpu")


# ----------------------------------------------------------------------------- the optimizer


def test_make_optimizer_is_adamw_with_a_one_cycle_schedule():
    model = tiny_model()
    optimizer, scheduler = make_optimizer(model, lr=1e-2, total_steps=10)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["weight_decay"] == 1e-4
    assert isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR) and scheduler.total_steps == 10
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == sum(
        p.numel() for p in model.parameters()
    )
    lrs = []
    for _ in range(10):
        optimizer.step()
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    assert max(lrs) == pytest.approx(1e-2, rel=0.05) and lrs[0] < 1e-2 / 5 and lrs[-1] < 1e-2 / 100


# ----------------------------------------------------------------------------- eval mode


class ModeSensitive(nn.Module):
    """Scores (N, 3) that depend on the mode: BatchNorm uses batch statistics in train mode
    (so a sample's score depends on its batch) and running statistics in eval mode."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4, 3)
        with torch.no_grad():  # running statistics far from any batch's
            self.features[1].running_mean.fill_(3.0)
            self.features[1].running_var.fill_(9.0)

    def forward(self, x):
        return self.head(self.features(x))


def test_predict_runs_in_eval_mode_and_restores_every_modules_mode():
    model = ModeSensitive()
    images = torch.rand(8, 3, 16, 16)
    with torch.no_grad():
        expected = model.eval()(images)
    model.train()
    model.head.eval()  # a mixed mode, to be restored module by module
    modes = [m.training for m in model.modules()]
    running_mean = model.features[1].running_mean.clone()
    scores = predict(model, images, batch_size=3)  # batches of 3, 3 and 2: batch statistics would differ
    assert torch.allclose(scores, expected, atol=1e-6)
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(model.features[1].running_mean, running_mean)  # eval mode leaves statistics alone
    with torch.no_grad():
        assert not torch.allclose(model(images), expected, atol=1e-3)  # the model really is mode-sensitive


def test_inference_copy_folds_each_batchnorm_and_gives_the_same_scores():
    torch.manual_seed(0)
    model = VGG11Classifier(num_classes=7, width=4)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # statistics and affine terms far from 0 and 1
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    model.train()
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    images = torch.rand(5, 3, 32, 32)
    folded = inference_copy(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) and not folded.training
    assert model.training and all(torch.equal(model.state_dict()[k], v) for k, v in state.items())  # untouched
    with torch.no_grad():
        assert torch.allclose(folded(images), model.eval()(images), atol=1e-4)
        assert not torch.allclose(model.train()(images), model.eval()(images), atol=1e-2)  # BatchNorm matters here


def test_inference_batches_hold_about_the_same_number_of_pixels():
    assert inference_batch_size(64, 64) == 64 and inference_batch_size(128, 128) == 16
    assert inference_batch_size(96, 160) == 17 and inference_batch_size(4096, 4096) == 1  # never 0


def test_predict_and_evaluate_by_default_split_into_inference_batches(monkeypatch):
    seen = []
    model = ModeSensitive()
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x: seen.append(len(x)) or forward(x))
    monkeypatch.setattr("course_utils.train.PIXELS_PER_BATCH", 3 * 16 * 16)
    images = torch.rand(8, 3, 16, 16)
    predict(model, images)
    evaluate(model, TensorDataset(images, torch.arange(8) % 3))
    assert seen == [3, 3, 2] * 2


def test_predict_fills_one_standard_layout_tensor_and_refuses_an_empty_stack():
    model = nn.Conv2d(3, 5, 3, padding=1)
    images = torch.rand(7, 3, 12, 10)
    scores = predict(model, images, batch_size=3)  # batches of 3, 3 and 1
    assert scores.shape == (7, 5, 12, 10) and scores.is_contiguous()
    with torch.no_grad():
        assert torch.allclose(scores, model(images), atol=1e-5)
    for wrong in (torch.rand(0, 3, 12, 10), torch.rand(3, 12, 10)):
        with pytest.raises(ValueError, match=r"at least one image \(N, 3, H, W\), got shape"):
            predict(model, wrong)


def test_pixel_counts_take_the_first_best_class_as_argmax_does():
    scores = torch.tensor([[[[1.0, 2.0]], [[1.0, 0.0]], [[0.5, 2.0]]]])  # (1, 3, 1, 2); ties at both pixels
    assert scores.argmax(dim=1).tolist() == [[[0, 0]]]
    assert count_correct(scores, torch.tensor([[[0, 0]]])) == (2, 2)
    assert count_correct(scores, torch.tensor([[[1, 2]]])) == (0, 2)


def test_evaluate_runs_in_eval_mode_and_restores_the_mode():
    model = ModeSensitive()
    data = TensorDataset(torch.rand(8, 3, 16, 16), torch.arange(8) % 3)
    in_eval = evaluate(model.eval(), data, batch_size=3)
    model.train()
    assert evaluate(model, data, batch_size=3) == in_eval
    assert all(m.training for m in model.modules())


# ----------------------------------------------------------------------------- ignored pixels


def test_count_correct_leaves_ignored_targets_out():
    scores = torch.zeros(1, 3, 2, 2)
    scores[:, 1] = 1.0  # class 1 everywhere
    masks = torch.tensor([[[1, 1], [0, IGNORE_INDEX]]])
    assert count_correct(scores, masks) == (2, 3)  # not (2, 4)
    assert count_correct(scores, torch.full((1, 2, 2), IGNORE_INDEX)) == (0, 0)
    labels = torch.tensor([1, IGNORE_INDEX, 0])
    assert count_correct(torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]), labels) == (1, 2)


class AlwaysClass(nn.Module):
    """Scores (N, 3, H, W) that always pick `label`, whatever the weights learn (one tiny parameter
    for the optimizer)."""

    def __init__(self, label):
        super().__init__()
        self.label = label
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        scores = torch.zeros(x.shape[0], 3, *x.shape[2:]) + 0 * self.weight
        scores[:, self.label] = 10.0
        return scores


def masks_with_ignored_pixels():
    """4 masks (4, 4): per mask 8 pixels of class 0, 4 of class 1 and 4 ignored (255)."""
    masks = torch.zeros(4, 4, 4, dtype=torch.long)
    masks[:, 2] = 1
    masks[:, 3] = IGNORE_INDEX
    return TensorDataset(torch.rand(4, 3, 4, 4), masks)


def test_training_and_evaluation_accuracy_count_only_labelled_pixels():
    data = masks_with_ignored_pixels()
    model = AlwaysClass(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    result = train_one_epoch(model, make_loader(data, 2, shuffle=False), optimizer)
    assert result["accuracy"] == pytest.approx(8 / 12)  # with the ignored pixels: 8 / 16
    assert evaluate(model, data)["accuracy"] == pytest.approx(8 / 12)
    assert evaluate(AlwaysClass(1), data)["accuracy"] == pytest.approx(4 / 12)
    history = fit(AlwaysClass(0), data, epochs=1, batch_size=2, val_data=data, progress=False, channels_last=False)
    assert history["train_accuracy"] == [pytest.approx(8 / 12)] and history["val_accuracy"] == [pytest.approx(8 / 12)]
