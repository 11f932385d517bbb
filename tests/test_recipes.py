"""trained_classifier: train once, then load; a changed recipe retrains (with the recipe shrunk)."""

import ast
import copy
import dataclasses
import inspect
import json

import pytest
import torch

import course_utils.recipes as recipes
from course_utils.checkpoints import CheckpointError
from course_utils.data import NUM_CLASSES
from course_utils.models import VGG11Classifier
from course_utils.paths import CHECKPOINT_DIR_VARIABLE, course_notebooks
from course_utils.recipes import CLASSIFIER_RECIPE, classifier_checkpoint, trained_classifier

WIDTH = 4
SMALL_RECIPE = dataclasses.replace(  # its first epoch at 32x32, its second at 40x40, as the course's at 48 and 64
    CLASSIFIER_RECIPE,
    image_size=40,
    train_samples=28,
    val_samples=14,
    epochs=2,
    small_epochs=1,
    small_image_size=32,
    batch_size=14,
)


@pytest.fixture
def fit_calls(monkeypatch, tmp_path):
    """Keep checkpoints in tmp_path, and count the training runs."""
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(tmp_path))
    calls = []
    real_fit = recipes.fit

    def counting_fit(model, train_data, **kwargs):
        calls.append({"train_samples": len(train_data), "train_data": train_data, **kwargs})
        return real_fit(model, train_data, **kwargs)

    monkeypatch.setattr(recipes, "fit", counting_fit)
    return calls


def small_classifier(recipe=SMALL_RECIPE, **kwargs):
    return trained_classifier(width=WIDTH, device="cpu", recipe=recipe, **kwargs)


def weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_first_call_trains_with_the_recipe_and_writes_the_checkpoint(fit_calls, tmp_path, capsys):
    model, history = small_classifier()
    assert (tmp_path / "classifier_w4.pt").is_file()
    assert classifier_checkpoint(WIDTH) == tmp_path / "classifier_w4.pt"
    assert "Training a new model (none found)" in capsys.readouterr().out
    assert len(fit_calls) == 1
    call = fit_calls[0]
    assert call["train_samples"] == 28 and len(call["val_data"]) == 14
    assert (call["epochs"], call["batch_size"], call["lr"], call["seed"]) == (2, 14, 3e-3, 0)
    assert call["image_sizes"] == [32, None]
    assert len(history["train_loss"]) == 2 and len(history["val_accuracy"]) == 2
    assert len(history["step_loss"]) == 4  # 28 samples in batches of 14, twice
    stored = torch.load(tmp_path / "classifier_w4.pt", weights_only=True)
    assert stored["config"] == {"num_classes": NUM_CLASSES, "width": WIDTH, **dataclasses.asdict(SMALL_RECIPE)}
    assert stored["history"] == history


def test_second_call_loads_the_same_weights_and_history(fit_calls, capsys):
    trained, trained_history = small_classifier()
    capsys.readouterr()
    loaded, loaded_history = small_classifier()
    assert len(fit_calls) == 1  # no second training run
    assert "Loaded the trained model" in capsys.readouterr().out
    assert weights_equal(trained, loaded)
    assert loaded_history == trained_history
    assert loaded is not trained


def test_retraining_from_scratch_gives_the_very_same_model(fit_calls, tmp_path):
    """Notebook 4 run on its own retrains; it must get notebook 3's model, not a new one."""
    first, first_history = small_classifier()
    (tmp_path / "classifier_w4.pt").unlink()
    second, second_history = small_classifier()
    assert len(fit_calls) == 2
    assert weights_equal(first, second)
    first_history.pop("seconds"), second_history.pop("seconds")  # wall-clock time differs
    assert second_history == first_history


def test_a_changed_recipe_makes_the_old_checkpoint_unusable(fit_calls, tmp_path, capsys):
    old, old_history = small_classifier()
    capsys.readouterr()
    new, new_history = small_classifier(dataclasses.replace(SMALL_RECIPE, lr=1e-2))
    out = capsys.readouterr().out
    assert len(fit_calls) == 2 and fit_calls[1]["lr"] == 1e-2
    assert "the saved one is unusable" in out and "Loaded" not in out
    assert not weights_equal(old, new)
    assert new_history != old_history
    stored = torch.load(tmp_path / "classifier_w4.pt", weights_only=True)
    assert stored["config"]["lr"] == 1e-2  # the checkpoint now holds the new recipe's model
    # and from now on the new checkpoint is loaded
    again, _ = small_classifier(dataclasses.replace(SMALL_RECIPE, lr=1e-2))
    assert len(fit_calls) == 2 and weights_equal(again, new)


def test_retrain_false_with_a_missing_checkpoint_raises(fit_calls, tmp_path):
    with pytest.raises(CheckpointError, match="no such file") as error:
        small_classifier(retrain=False)
    assert error.value.path == tmp_path / "classifier_w4.pt"
    assert fit_calls == []
    assert not (tmp_path / "classifier_w4.pt").exists()


def test_the_width_is_part_of_the_checkpoint(fit_calls, tmp_path):
    small_classifier()
    with pytest.raises(CheckpointError):  # a width-8 model does not pick up the width-4 file
        trained_classifier(width=8, device="cpu", retrain=False, recipe=SMALL_RECIPE)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["classifier_w4.pt"]


def test_the_model_is_ready_for_evaluation(fit_calls):
    for _ in range(2):  # trained, then loaded
        model, _ = small_classifier()
        assert isinstance(model, VGG11Classifier)
        assert not any(module.training for module in model.modules())
        assert model.num_classes == NUM_CLASSES == 7 and model.width == WIDTH
        assert next(model.parameters()).device.type == "cpu"
        with torch.no_grad():
            assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    assert len(fit_calls) == 1


# ----------------------------------------------------------------------------- FCN-32s / 16s / 8s

SMALL_SEGMENTER = dataclasses.replace(
    recipes.SEGMENTER_RECIPES["32s"], image_size=128, train_samples=6, epochs=1, batch_size=3
)
SMALL_SEGMENTERS = {variant: SMALL_SEGMENTER for variant in recipes.SEGMENTER_RECIPES}


def small_segmenter(variant, classifier_recipe=SMALL_RECIPE, segmenter_recipes=SMALL_SEGMENTERS):
    return recipes.trained_segmenter(
        variant, width=WIDTH, device="cpu", recipes=segmenter_recipes, classifier_recipe=classifier_recipe
    )


def test_segmenters_train_in_stages_then_load(fit_calls, tmp_path, capsys):
    from course_utils.models import VGG11SkipFCN

    model, history = small_segmenter("8s")
    assert isinstance(model, VGG11SkipFCN) and model.variant == "8s" and model.num_classes == NUM_CLASSES + 1
    for name in ("classifier_w4.pt", "fcn32s_w4.pt", "fcn16s_w4.pt", "fcn8s_w4.pt"):
        assert (tmp_path / name).is_file(), name
    assert len(fit_calls) == 4  # the classifier, then FCN-32s, 16s, 8s
    assert fit_calls[3]["train_samples"] == 6 and len(history["train_loss"]) == 1
    capsys.readouterr()

    again, again_history = small_segmenter("8s")
    assert len(fit_calls) == 4 and again_history == history and weights_equal(model, again)
    out = capsys.readouterr().out
    assert out.count("Loaded the trained model") == 1 and "fcn16s" not in out  # the stages before are not needed

    small_segmenter("32s")  # trained on the way: loaded
    assert len(fit_calls) == 4


def test_the_stages_share_one_drawing_of_their_scenes_and_the_last_releases_it(fit_calls):
    recipes.fcn_training_scenes.cache_clear()
    held_out = recipes.scenes_split(2, seed=9, image_size=96)
    small_segmenter("16s")  # the classifier, FCN-32s and FCN-16s train
    scenes = [call["train_data"] for call in fit_calls[1:]]
    assert scenes[0] is scenes[1]  # drawn once for both stages
    assert recipes.fcn_training_scenes.cache_info().currsize == 1  # kept: FCN-8s may train on them next
    small_segmenter("8s")
    assert fit_calls[3]["train_data"] is scenes[0]
    assert recipes.fcn_training_scenes.cache_info().currsize == 0  # the last stage is done: released
    assert recipes.scenes_split(2, seed=9, image_size=96) is held_out  # held-out scenes stay in memory


def test_each_stage_starts_from_the_trained_one_before(fit_calls, monkeypatch):
    """FCN-32s from the classifier (from_classifier), 16s from the trained 32s, 8s from the trained
    16s (from_coarser): what each fit receives is the model the rule builds from the one before."""
    from course_utils.models import VGG11SkipFCN

    started = []
    real_fit = recipes.fit

    def recording_fit(model, train_data, **kwargs):
        started.append(copy.deepcopy(model).eval())
        return real_fit(model, train_data, **kwargs)

    monkeypatch.setattr(recipes, "fit", recording_fit)
    small_segmenter("8s")
    classifier, fcn32, fcn16, fcn8 = (small_classifier()[0], *(small_segmenter(v)[0] for v in ("32s", "16s", "8s")))
    assert [type(m).__name__ for m in started] == ["VGG11Classifier", "VGG11SkipFCN", "VGG11SkipFCN", "VGG11SkipFCN"]
    assert weights_equal(started[1], VGG11SkipFCN.from_classifier(classifier, "32s"))
    assert weights_equal(started[2], VGG11SkipFCN.from_coarser(fcn32, "16s"))
    assert weights_equal(started[3], VGG11SkipFCN.from_coarser(fcn16, "8s"))
    assert not weights_equal(started[3], fcn8)  # and each stage then trained


def test_each_stage_trains_with_its_own_recipe(fit_calls):
    stages = {
        "32s": SMALL_SEGMENTER,
        "16s": dataclasses.replace(SMALL_SEGMENTER, lr=1e-3),
        "8s": dataclasses.replace(SMALL_SEGMENTER, lr=2e-3, seed=1),
    }
    small_segmenter("8s", segmenter_recipes=stages)
    assert [(call["lr"], call["seed"]) for call in fit_calls[1:]] == [(SMALL_SEGMENTER.lr, 0), (1e-3, 0), (2e-3, 1)]


def test_training_stages_follow_starts_from():
    assert recipes.training_stages("32s") == ("32s",)
    assert recipes.training_stages("16s") == ("32s", "16s")
    assert recipes.training_stages("8s") == ("32s", "16s", "8s")
    with pytest.raises(ValueError, match="variant must be one of"):
        recipes.training_stages("4s")
    with pytest.raises(ValueError, match="variant must be one of"):
        small_segmenter("4s")


def test_a_changed_recipe_upstream_retrains_every_stage_after_it(fit_calls, capsys):
    small_segmenter("16s")
    capsys.readouterr()
    small_segmenter("16s", classifier_recipe=dataclasses.replace(SMALL_RECIPE, lr=1e-3))
    assert capsys.readouterr().out.count("the saved one is unusable") == 3  # classifier, 32s, 16s
    assert len(fit_calls) == 6
    changed_32s = {**SMALL_SEGMENTERS, "32s": dataclasses.replace(SMALL_SEGMENTER, lr=5e-3)}
    small_segmenter("16s", classifier_recipe=dataclasses.replace(SMALL_RECIPE, lr=1e-3), segmenter_recipes=changed_32s)
    assert capsys.readouterr().out.count("the saved one is unusable") == 2  # 32s and 16s, not the classifier
    assert len(fit_calls) == 8


# ----------------------------------------------------------------------------- the recipes themselves


def test_recipes_are_frozen_and_their_checkpoint_configs_are_unchanged():
    """The configurations stored in data/checkpoints/: any change here retrains every checkpoint."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        CLASSIFIER_RECIPE.lr = 1.0
    classifier = {
        "image_size": 64,
        "train_samples": 4000,
        "val_samples": 500,
        "epochs": 4,
        "small_epochs": 2,
        "small_image_size": 48,
        "lr": 3e-3,
        "batch_size": 32,
        "seed": 0,
    }
    assert recipes.classifier_config(16) == {"num_classes": 7, "width": 16, **classifier}
    stage = {"image_size": 96, "train_samples": 1500, "epochs": 2, "lr": 1e-2, "batch_size": 4, "seed": 0}
    first_stage = {**stage, "epochs": 1}
    fcn32 = {
        "variant": "32s",
        "num_classes": 8,
        "width": 16,
        "starts_from": recipes.classifier_config(16),
        **first_stage,
    }
    fcn16 = {"variant": "16s", "num_classes": 8, "width": 16, "starts_from": fcn32, **stage}
    fcn8 = {"variant": "8s", "num_classes": 8, "width": 16, "starts_from": fcn16, **stage}
    assert recipes.segmenter_config("32s", 16) == fcn32
    assert recipes.segmenter_config("16s", 16) == fcn16
    assert recipes.segmenter_config("8s", 16) == fcn8
    assert dataclasses.replace(CLASSIFIER_RECIPE, lr=1.0).lr == 1.0 and CLASSIFIER_RECIPE.lr == 3e-3


def test_the_recipe_seed_seeds_training_not_the_data(fit_calls):
    """recipe.seed: initial weights and shuffling; the images come from TRAIN_DATA_SEED whatever it is."""
    first, _ = small_classifier()
    other_seed, _ = small_classifier(dataclasses.replace(SMALL_RECIPE, seed=1))
    assert [call["seed"] for call in fit_calls] == [0, 1]
    first_images, other_images = (call["train_data"].tensors[0] for call in fit_calls)
    assert torch.equal(first_images, other_images)
    assert not weights_equal(first, other_seed)


def test_fit_classifier_trains_the_given_model_in_place_and_saves_nothing(fit_calls, tmp_path):
    torch.manual_seed(0)
    model = VGG11Classifier(NUM_CLASSES, WIDTH)
    untrained = copy.deepcopy(model)
    history = recipes.fit_classifier(model, SMALL_RECIPE, progress=False)
    assert len(fit_calls) == 1 and len(history["train_loss"]) == 2 and len(history["val_accuracy"]) == 2
    assert not weights_equal(model, untrained) and not model.training
    assert list(tmp_path.glob("*.pt")) == []  # checkpoints are trained_classifier's business (datasets/ caches data)
    images, labels = fit_calls[0]["train_data"].tensors  # no masks: a classifier never uses them
    assert images.shape == (28, 3, 40, 40) and labels.shape == (28,)
    assert fit_calls[0]["image_sizes"] == [32, None]  # progressive resizing: the first epoch at 32x32


def test_progressive_resizing_in_the_recipe():
    """The first small_epochs epochs at small_image_size, the rest at full size; a GPU's wide recipe
    keeps full size throughout; a recipe with more small epochs than epochs is refused."""
    assert CLASSIFIER_RECIPE.epoch_image_sizes() == [48, 48, None, None]
    assert recipes.WIDE_CLASSIFIER_RECIPE.epoch_image_sizes() == [None] * 6
    assert dataclasses.replace(CLASSIFIER_RECIPE, small_epochs=0).epoch_image_sizes() == [None] * 4
    for small_epochs in (5, -1):
        with pytest.raises(ValueError, match="small_epochs must be between 0 and epochs"):
            dataclasses.replace(CLASSIFIER_RECIPE, small_epochs=small_epochs)
    with pytest.raises(ValueError, match="small_image_size must be at least 32"):
        dataclasses.replace(CLASSIFIER_RECIPE, small_image_size=24)
    assert dataclasses.replace(CLASSIFIER_RECIPE, small_epochs=0, small_image_size=24).epoch_image_sizes() == [None] * 4


def test_fit_segmenter_trains_the_given_model_in_place_and_saves_nothing(fit_calls, tmp_path):
    from course_utils.models import VGG11SkipFCN

    model = VGG11SkipFCN(NUM_CLASSES + 1, WIDTH, "32s")
    untrained = copy.deepcopy(model)
    history = recipes.fit_segmenter(model, SMALL_SEGMENTER, progress=False)
    assert len(fit_calls) == 1 and fit_calls[0]["train_samples"] == 6 and len(history["train_loss"]) == 1
    assert not weights_equal(model, untrained) and not model.training
    assert list(tmp_path.glob("*.pt")) == []


def test_without_a_recipe_the_width_chooses_it(fit_calls, monkeypatch):
    """classifier_recipe_for(width): the CPU recipe up to width 32, more epochs from the GPU's width 64 on."""
    assert (
        recipes.classifier_recipe_for(16) is CLASSIFIER_RECIPE
        and recipes.classifier_recipe_for(32) is CLASSIFIER_RECIPE
    )
    assert recipes.classifier_recipe_for(64) == dataclasses.replace(CLASSIFIER_RECIPE, epochs=6, small_epochs=0)
    monkeypatch.setattr(recipes, "CLASSIFIER_RECIPE", SMALL_RECIPE)  # what classifier_recipe_for(4) returns
    recipes.fit_classifier(VGG11Classifier(NUM_CLASSES, width=WIDTH), progress=False)
    trained_classifier(width=WIDTH, device="cpu")
    assert [call["train_samples"] for call in fit_calls] == [28, 28]
    assert recipes.classifier_config(WIDTH)["epochs"] == SMALL_RECIPE.epochs


def notebook_split_calls(split_names: set[str]) -> set[tuple]:
    """Every call of a function in `split_names` in the course's notebooks, as (name, num_samples,
    seed, image_size), its arguments evaluated with recipes' constants (TEST_DATA_SEED, ...)."""
    calls = set()

    def recorder(name):
        signature = inspect.signature(getattr(recipes, name))

        def record(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            calls.add((name, bound.arguments["num_samples"], bound.arguments["seed"], bound.arguments["image_size"]))

        return record

    namespace = {**vars(recipes), **{name: recorder(name) for name in split_names}}
    for path in course_notebooks():
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in split_names:
                    eval(compile(ast.Expression(node), path.name, "eval"), namespace)
    return calls


def test_make_warm_caches_every_held_out_set_the_notebooks_load():
    """A warm notebook must never draw: every shapes_split / scenes_split a notebook calls is in
    HELD_OUT_SETS, which `make warm` (recipes.warm) and the benchmark's warm phase cache."""
    calls = notebook_split_calls({"shapes_split", "scenes_split"})
    cached = set()
    for split, num_samples, seed in recipes.HELD_OUT_SETS:
        image_size = inspect.signature(split).parameters["image_size"].default
        cached.add((split.__name__, num_samples, seed, image_size))
    assert {call[0] for call in calls} == {"shapes_split", "scenes_split"}  # the notebooks were read
    assert calls <= cached, f"not cached by make warm: {sorted(calls - cached)}"


def test_cache_held_out_sets_leaves_each_set_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setattr(recipes, "HELD_OUT_SETS", ((recipes.shapes_split, 7, 0), (recipes.scenes_split, 2, 1)))
    recipes.scenes_split.cache_clear()
    recipes.cache_held_out_sets()
    stored = sorted(path.name.split("-")[0] for path in (tmp_path / "datasets").glob("*.pt"))
    assert stored == ["ShapesDataset", "ShapesScenes"]
