"""cache.load_or_draw: held-out datasets drawn once, then loaded from disk exactly as drawn."""

import pytest
import torch

import course_utils.cache as cache
from course_utils.data import ShapesDataset, ShapesScenes, materialize
from course_utils.paths import CHECKPOINT_DIR_VARIABLE
from course_utils.recipes import fcn_training_scenes, scenes_split, shapes_split
from tests.damage import flip_a_byte_inside_the_largest_tensor, rewrite


@pytest.fixture
def draws(monkeypatch, tmp_path):
    """Checkpoints (and so the cache) in tmp_path; count the datasets actually drawn."""
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, str(tmp_path))
    calls = []

    def counting_materialize(dataset, *args, **kwargs):
        calls.append(repr(dataset))
        return materialize(dataset, *args, **kwargs)

    monkeypatch.setattr(cache, "materialize", counting_materialize)
    return calls


def same(a, b):
    return len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("dataset", [ShapesDataset(5, image_size=32, seed=3), ShapesScenes(3, image_size=96, seed=4)])
def test_drawn_once_then_loaded_exactly_as_drawn(draws, tmp_path, dataset):
    first = cache.load_or_draw(dataset)
    assert same(first, materialize(dataset)) and len(draws) == 1
    assert cache.cache_path(dataset).parent == tmp_path / "datasets" and cache.cache_path(dataset).is_file()
    again = cache.load_or_draw(dataset)
    assert same(again, first) and len(draws) == 1  # loaded, not drawn
    assert again[-1].dtype == torch.int64  # masks stored as uint8 come back as int64


def test_another_dataset_or_generator_is_drawn_anew(draws, monkeypatch):
    cache.load_or_draw(ShapesDataset(4, image_size=32, seed=0))
    cache.load_or_draw(ShapesDataset(4, image_size=32, seed=1))  # another seed
    cache.load_or_draw(ShapesDataset(5, image_size=32, seed=0))  # another size
    assert len(draws) == 3
    monkeypatch.setattr(cache, "GENERATOR_FINGERPRINT", "changed-data")  # data.py edited
    cache.load_or_draw(ShapesDataset(4, image_size=32, seed=0))
    assert len(draws) == 4


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_a_broken_or_foreign_cache_file_is_drawn_again(draws, content):
    dataset = ShapesDataset(4, image_size=32, seed=0)
    path = cache.cache_path(dataset)
    path.parent.mkdir(parents=True)
    if content is None:
        torch.save({"dataset": "something else", "generator": cache.GENERATOR_FINGERPRINT, "tensors": []}, path)
    else:
        path.write_bytes(content)
    assert same(cache.load_or_draw(dataset), materialize(dataset)) and len(draws) == 1
    assert same(cache.load_or_draw(dataset), materialize(dataset)) and len(draws) == 1  # rewritten


def test_splits_are_cached_unless_told_not_to(draws, tmp_path):
    shapes_split(4, seed=5, image_size=32)
    scenes_split(2, seed=6, image_size=96)
    assert len(list((tmp_path / "datasets").iterdir())) == 2
    shapes_split(4, seed=7, image_size=32, cached=False)  # as the training sets are drawn
    fcn_training_scenes(2, image_size=96)
    assert len(list((tmp_path / "datasets").iterdir())) == 2


def test_two_datasets_of_one_class_each_keep_their_own_file(draws):
    """Notebook 5 loads several ShapesScenes splits: each must be loaded, not drawn, on every later
    run. (A file named by the class alone would hold only the last one cached, and every load
    of the others would find a foreign file and draw again.)"""
    test, val = ShapesScenes(3, image_size=96, seed=4), ShapesScenes(2, image_size=96, seed=5)
    assert cache.cache_path(test) != cache.cache_path(val)
    first = cache.load_or_draw(test), cache.load_or_draw(val)
    assert len(draws) == 2
    again = cache.load_or_draw(test), cache.load_or_draw(val)
    assert same(again[0], first[0]) and same(again[1], first[1])
    assert draws == [repr(test), repr(val)]  # neither was drawn again


@pytest.mark.parametrize(
    "damage, problem",
    [
        (flip_a_byte_inside_the_largest_tensor, "does not match its digest"),
        (lambda path: rewrite(path, lambda p: p["tensors"][0].mul_(0.5)), "does not match its digest"),
        (lambda path: rewrite(path, lambda p: p["tensors"].__setitem__(0, p["tensors"][0][:-1])), "items"),
        (lambda path: rewrite(path, lambda p: p.pop("digest")), "cannot be read"),
        (lambda path: path.write_bytes(path.read_bytes()[:500]), "cannot be read"),
    ],
    ids=["flipped byte", "changed values", "an item missing", "no digest", "cut off"],
)
def test_a_damaged_cache_file_is_reported_and_drawn_again(draws, damage, problem):
    dataset = ShapesScenes(3, image_size=96, seed=6)
    first = cache.load_or_draw(dataset)
    damage(cache.cache_path(dataset))
    with pytest.warns(UserWarning, match=f"The dataset cache .*{cache.cache_path(dataset).name} .*{problem}"):
        again = cache.load_or_draw(dataset)
    assert same(again, first) and len(draws) == 2  # drawn again, and right
    assert same(cache.load_or_draw(dataset), first) and len(draws) == 2  # the redrawn file is valid again
