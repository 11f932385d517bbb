"""The benchmark: its quick mode end to end (as `make benchmark-quick`), and the parts it is built
from, each checked against something known. No test asserts a speed: time is a fake clock here."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn

from benchmarks import cli, common, curves, machine, notebooks, peers, quality, report, run, speed, training
from course_utils.models import VGG11Classifier, VGG11SkipFCN
from course_utils.paths import CHECKPOINT_DIR_VARIABLE
from course_utils.recipes import CLASSIFIER_RECIPE, SEGMENTER_RECIPES

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "benchmarks"
BENCHMARK_PAGE = REPO / "docs" / "benchmark.md"
PEER_NAMES = {"smp_unet_vgg11_bn", "torchvision_fcn_resnet50", "smp_unet_resnet18_small"}
KEYS = {
    "complete",
    "notebooks",
    "classifier_accuracy",
    "converted_fcn_miou",
    "fcn32s_miou",
    "fcn16s_miou",
    "fcn8s_miou",
    "train_images_per_s",
    "train_flops_utilization",
    "matmul_gflops",
    "peers",
    "machine",
    "targets",
    # the comparison that means something: equal steps, equal size, learning curves, one table
    "equal_size_peer",
    "equal_steps",
    "curves",
    "curve_budget_s",
    "curve_budget_factor",
    "curves_figure",
    "comparison",
    "comparison_markdown",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`python -m benchmarks --quick`, with a sentinel in the learner's checkpoint folder."""
    folder = tmp_path_factory.mktemp("quick")
    checkpoints = folder / "my_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "classifier_w16.pt").write_bytes(b"a learner's checkpoint")
    output = folder / "benchmark.json"
    env = {**os.environ, CHECKPOINT_DIR_VARIABLE: str(checkpoints)}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed, output, checkpoints


@pytest.mark.slow
def test_quick_run_writes_the_json_and_prints_it_as_its_last_line(quick_run):
    completed, output, _ = quick_run
    stored = json.loads(output.read_text())
    printed = json.loads(completed.stdout.strip().splitlines()[-1])
    assert printed == stored
    assert KEYS <= set(stored) and stored["quick"] is True and stored["complete"] is True
    assert not cli.partial_path(output).exists()  # the run ended, so its partial record is gone


@pytest.mark.slow
def test_quick_run_reports_every_figure(quick_run):
    result = json.loads(quick_run[1].read_text())
    assert set(result["notebooks"]) == {"01_classification_detection_segmentation", "02_vgg11_backbone"}
    for figures in result["notebooks"].values():
        assert figures["cold_s"] > 0 and figures["warm_s"] > 0
        assert 100 < figures["peak_rss_mb"] < 8192  # a kernel with torch loaded
    assert set(result["train_images_per_s"]) == {"16", "64"}
    assert result["train_images_per_s"]["16"] > result["train_images_per_s"]["64"] > 0
    assert result["matmul_gflops"] == max(result["matmul_gflops_by_library"].values()) > 0
    assert 0 < result["train_flops_utilization"] < 2
    for key in ("classifier_accuracy", "converted_fcn_miou", "fcn32s_miou", "fcn16s_miou", "fcn8s_miou"):
        assert 0 <= result[key] <= 1, key
    assert result["classifier_accuracy"] > 0.5  # 7 classes: chance is 0.14
    assert set(result["machine"]) >= {
        "cpu",
        "cpu_extensions",
        "torch_cpu_capability",
        "isa_settings",
        "torch_threads",
        "device",
        "load_average_at_start",
        "load_average_at_end",
    }
    assert result["machine"]["torch"] == torch.__version__


@pytest.mark.slow
def test_quick_run_gives_every_peer_the_course_budget(quick_run):
    peers_ = json.loads(quick_run[1].read_text())["peers"]
    assert set(peers_) == {"course_fcn8s"} | PEER_NAMES
    course = peers_["course_fcn8s"]
    assert course["budget_s"] == pytest.approx(course["classifier_train_s"] + course["fcn_train_s"])
    for name in PEER_NAMES:
        peer = peers_[name]
        assert peer["budget_s"] == course["budget_s"] and peer["steps"] >= 1
        step_s = peer["train_s"] / peer["steps"]
        assert peer["train_s"] <= course["budget_s"] + 2 * step_s  # stops at the budget, plus at most about one step
        assert 0 <= peer["miou"] <= 1
        assert peer["ours_over_theirs"] == pytest.approx(course["miou"] / peer["miou"])
        assert peer["parameters"] > 0 and peer["multiply_adds"] > 0


@pytest.mark.slow
def test_quick_run_compares_at_equal_steps_and_equal_size(quick_run):
    result = json.loads(quick_run[1].read_text())
    course = result["peers"]["course_fcn8s"]
    assert result["equal_steps"]["steps"] == course["steps"] >= 1
    assert result["equal_steps"]["images_seen"] == course["steps"] * common.QUICK.scene_recipe.batch_size
    assert 0 <= result["equal_steps"]["miou"] <= 1
    size = result["equal_size_peer"]
    assert size["closest_decoder_channels"] == size["decoder_channels"]
    assert size["course_parameters"] == course["parameters"] and size["course_multiply_adds"] == course["multiply_adds"]
    assert size["parameters"] == result["equal_steps"]["parameters"]


@pytest.mark.slow
def test_quick_run_draws_a_learning_curve_per_model(quick_run):
    _, output, _ = quick_run
    result = json.loads(output.read_text())
    assert set(result["curves"]) == {"course_fcn8s"} | PEER_NAMES
    course = result["peers"]["course_fcn8s"]
    assert result["curve_budget_s"] == pytest.approx(result["curve_budget_factor"] * course["budget_s"])
    for name, curve in result["curves"].items():
        steps = [point["step"] for point in curve["points"]]
        seconds = [point["train_s"] for point in curve["points"]]
        assert steps[0] == 0 and steps == sorted(set(steps)), name
        most = common.QUICK.curve_points + 1 if name != "course_fcn8s" else max(common.QUICK.curve_points, 3) + 1
        assert 2 <= len(steps) <= most, name  # the course's curve scores the end of each of its 3 stages
        assert seconds == sorted(seconds) and seconds[0] == curve["offset_s"], name
        assert curve["best_miou"] == max(point["miou"] for point in curve["points"])
    assert result["curves"]["course_fcn8s"]["offset_s"] == course["classifier_train_s"]
    assert result["curves"]["course_fcn8s"]["steps"] == course["steps"]
    figure = output.with_name("benchmark-curves.png")
    assert result["curves_figure"] == str(figure)
    assert figure.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_the_table_option_prints_the_tables_of_a_stored_result(quick_run):
    """`--table JSON`, the command docs/benchmark.md's tables come from, prints them from the JSON alone."""
    _, output, _ = quick_run
    result = json.loads(output.read_text())
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--table", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    text = completed.stdout
    assert (
        f"| **course FCN-8s** | {result['fcn8s_miou']:.3f} | {result['peers']['course_fcn8s']['budget_s']:.0f} s |"
        in text
    )
    assert f"{result['train_images_per_s']['64']:,.0f}" in text
    assert f"{result['peers']['smp_unet_vgg11_bn']['ours_over_theirs']:.1f}x" in text
    assert text.count("`0") == 2  # one row per notebook run
    assert result["comparison_markdown"] in text
    assert len(result["comparison"]) == 1 + len(PEER_NAMES) + 1  # course, each peer at equal time, equal steps


@pytest.mark.slow
def test_quick_run_leaves_the_learners_checkpoints_alone(quick_run):
    _, _, checkpoints = quick_run
    assert [p.name for p in checkpoints.iterdir()] == ["classifier_w16.pt"]
    assert (checkpoints / "classifier_w16.pt").read_bytes() == b"a learner's checkpoint"


def test_the_full_run_measures_the_course_recipes_and_all_notebooks():
    assert common.FULL.classifier_recipe is CLASSIFIER_RECIPE
    assert common.FULL.segmenter_recipes is SEGMENTER_RECIPES
    assert common.FULL.notebooks is None
    assert common.FULL.curve_budget_factor >= 5 and common.FULL.curve_scenes == common.TEST_SCENES


# ---------------------------------------------------------------------------- the package


def test_each_module_imports_on_its_own_and_runs_nothing_at_import():
    """In a fresh interpreter, each module imported first (the others forgotten in between) finds
    no import loop; importing starts no clock and loads no peer library."""
    modules = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem not in ("__init__", "__main__"))
    code = f"""
import importlib, sys
for name in {modules!r}:
    for loaded in [m for m in sys.modules if m.startswith("benchmarks")]:
        del sys.modules[loaded]
    importlib.import_module("benchmarks." + name)
    assert importlib.import_module("benchmarks.common").log.started is None, name
assert "segmentation_models_pytorch" not in sys.modules
print("ok", len({modules!r}))
"""
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["ok", str(len(modules))] and len(modules) >= 10


def test_the_progress_clock_starts_with_the_run(capsys, clock):
    log = common.ProgressLog()
    assert log.started is None and log.elapsed() == 0.0
    log.start()
    clock.step = 2.0
    log("hello")
    assert capsys.readouterr().err == "[   2 s] hello\n"


def test_scratch_checkpoints_set_the_variable_for_the_block_only(monkeypatch):
    monkeypatch.setenv(CHECKPOINT_DIR_VARIABLE, "/my/checkpoints")
    with run.scratch_checkpoints() as scratch:
        assert os.environ[CHECKPOINT_DIR_VARIABLE] == str(scratch) and scratch.is_dir()
    assert os.environ[CHECKPOINT_DIR_VARIABLE] == "/my/checkpoints" and not scratch.exists()
    monkeypatch.delenv(CHECKPOINT_DIR_VARIABLE)
    with pytest.raises(RuntimeError), run.scratch_checkpoints():
        raise RuntimeError("a failure inside the run")
    assert CHECKPOINT_DIR_VARIABLE not in os.environ


# ---------------------------------------------------------------------------- speed


def conv_flops(c_in, c_out, size, kernel=3):
    return 2 * c_in * c_out * kernel * kernel * size * size


def test_training_flops_are_forward_plus_backward_of_every_convolution():
    """VGG11 at width w on 32x32 images, counted by hand: backward costs twice the forward
    (gradients of inputs and of weights), except that the first layer needs no input gradient."""
    w, size = 4, 32
    layers = [
        (3, w, 32),
        (w, 2 * w, 16),
        (2 * w, 4 * w, 8),
        (4 * w, 4 * w, 8),
        (4 * w, 8 * w, 4),
        (8 * w, 8 * w, 4),
        (8 * w, 8 * w, 2),
        (8 * w, 8 * w, 2),
    ]
    forward = sum(conv_flops(*layer) for layer in layers) + 2 * 8 * w * 7
    first = conv_flops(*layers[0])
    model = VGG11Classifier(num_classes=7, width=w)
    images, labels = torch.rand(1, 3, size, size), torch.tensor([3])
    assert speed.training_flops(model, images, labels) == 3 * forward - first
    assert all(p.grad is None for p in model.parameters())  # counting leaves no gradients behind


def test_multiply_adds_are_those_of_one_forward_pass_on_a_128x128_image():
    model = tiny_segmenter().train()
    assert speed.multiply_adds(model) == (3 * 8 * 9 + 8 * 3) * 128 * 128  # two convolutions, biases not counted
    assert model.training  # the mode is restored


def test_matrix_product_speed_is_measured_per_library():
    speeds = speed.matmul_gflops(torch.device("cpu"), size=256)
    assert "torch.mm" in speeds and all(v > 0 for v in speeds.values())
    if torch.backends.mkldnn.is_available():
        assert "oneDNN (1x1 convolution)" in speeds


def test_training_speed_counts_images_and_flops():
    result = speed.training_speed(width=4, device=torch.device("cpu"), steps=2, image_size=32, batch_size=8)
    assert result["images_per_s"] > 0
    assert result["gflops"] == pytest.approx(result["images_per_s"] * result["gflop_per_image"])


# ---------------------------------------------------------------------------- training and curves


def tiny_segmenter(num_classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


def tiny_scenes(n=32, size=32):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=generator)
    masks = torch.randint(0, 3, (n, size, size), generator=generator)
    return torch.utils.data.TensorDataset(images, masks)


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter: each reading is `clock.step` seconds after the last."""

    class Clock:
        now, step = 0.0, 0.25

        def __call__(self):
            self.now += self.step
            return self.now

    fake = Clock()
    monkeypatch.setattr(training.time, "perf_counter", fake)  # the time module: every reader sees it
    return fake


def test_evaluation_points_are_evenly_spaced_steps_ending_at_the_last():
    assert training.evaluation_steps(100, 4) == (0, 25, 50, 75, 100)
    assert training.evaluation_steps(10, 3) == (0, 4, 7, 10)
    assert training.evaluation_steps(2, 5) == (0, 1, 2)  # never a step twice


def test_a_curve_is_scored_at_its_planned_steps_and_scoring_is_not_training_time(clock):
    """Each step takes one clock step (two readings); each scoring takes 100 s, and none of it counts."""

    def slow_score(model):
        clock.now += 100.0
        return 0.5

    model = tiny_segmenter()
    before = [p.detach().clone() for p in model.parameters()]
    plan = training.TrainingPlan(total_steps=6, lr=1e-2, batch_size=8, eval_steps=training.evaluation_steps(6, 3))
    run_ = training.train_steps(model, tiny_scenes(), plan, slow_score)
    assert [point["step"] for point in run_["curve"]] == [0, 2, 4, 6]
    assert [point["train_s"] for point in run_["curve"]] == [0.0, 0.5, 1.0, 1.5]
    assert run_["steps"] == 6 and run_["train_s"] == 1.5 and run_["images_seen"] == 6 * 8
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # it trained
    assert not model.training


def test_training_stops_at_the_deadline_and_scores_where_it_stopped(clock):
    """The plan says a thousand steps, but each takes 0.25 s: a 0.75 s deadline allows three."""
    plan = training.TrainingPlan(total_steps=1000, lr=1e-2, batch_size=8, deadline_s=0.75, eval_steps=(0, 500, 1000))
    run_ = training.train_steps(tiny_segmenter(), tiny_scenes(), plan, lambda model: 0.5)
    assert run_["steps"] == 3 and run_["train_s"] == 0.75
    assert [point["step"] for point in run_["curve"]] == [0, 3]


@pytest.fixture
def tiny_peers(monkeypatch):
    """The peers replaced by one tiny model (8 scores per pixel), trained and scored on tiny scenes."""
    tiny = peers.Peer("tiny", "a tiny segmenter", tiny_segmenter, lr=1e-2)
    monkeypatch.setattr(peers, "PEERS", {"tiny": tiny})
    monkeypatch.setattr(curves, "PEERS", {"tiny": tiny})
    monkeypatch.setattr(peers, "EQUAL_SIZE_PEER", tiny)
    scenes = tiny_scenes()
    monkeypatch.setattr(peers, "training_scenes", lambda config: scenes)
    monkeypatch.setattr(curves, "training_scenes", lambda config: scenes)
    monkeypatch.setattr(peers, "held_out_scenes", lambda: (scenes.tensors, scenes.tensors))
    monkeypatch.setattr(curves, "held_out_scorer", lambda count: lambda model: 0.25)
    return tiny


def test_an_equal_time_run_takes_the_steps_the_budget_allows(monkeypatch, clock, tiny_peers):
    monkeypatch.setattr(peers, "seconds_per_step", lambda *args, **kwargs: 0.25)  # 1 s -> 4 steps
    record = peers.equal_time_run(tiny_peers, 1.0, torch.device("cpu"), common.QUICK)
    assert record["steps"] == 4 and record["train_s"] == 1.0 and record["seconds_per_step"] == 0.25
    assert record["budget_s"] == 1.0 and 0 <= record["miou"] <= 1 and record["label"] == "a tiny segmenter"


def test_the_equal_steps_run_takes_exactly_the_course_steps(clock, tiny_peers):
    """Seven steps of batch 8 on 32 scenes: across an epoch's end, and however slow each step is."""
    clock.step = 1000.0
    record = peers.equal_steps_run(7, torch.device("cpu"), common.QUICK, peer=tiny_peers)
    assert record["steps"] == 7 and record["images_seen"] == 7 * common.QUICK.scene_recipe.batch_size
    assert record["parameters"] == sum(p.numel() for p in tiny_segmenter(8).parameters())


def test_a_peer_curve_runs_to_the_curve_budget(monkeypatch, clock, tiny_peers):
    monkeypatch.setattr(curves, "seconds_per_step", lambda *args, **kwargs: 0.25)  # 2 s -> 8 steps
    curve = curves.peer_curve(tiny_peers, 2.0, torch.device("cpu"), common.QUICK)
    assert [point["step"] for point in curve["points"]] == [0, 4, 8]  # QUICK: 2 points after the start
    assert curve["points"][-1]["train_s"] == 2.0 and curve["best_miou"] == 0.25 and curve["offset_s"] == 0.0


def test_the_course_curve_starts_where_its_classifier_finished_and_runs_through_the_stages(clock, tiny_peers):
    """The FCN-8s starts from the classifier: its curve starts at the classifier's training seconds,
    then runs through FCN-32s, 16s and 8s, each stage its recipe's steps (1 epoch of the 32 tiny
    scenes in batches of 8: 4 steps), counted on from the stage before."""
    recipe = dataclasses.replace(SEGMENTER_RECIPES["8s"], epochs=1, batch_size=8)
    config = dataclasses.replace(common.QUICK, segmenter_recipes={"32s": recipe, "16s": recipe, "8s": recipe})
    torch.manual_seed(0)
    models = {"classifier": (VGG11Classifier(7, width=2).eval(), {"seconds": 30.0})}
    curve = curves.course_curve(models, config, "course FCN-8s")
    assert curve["offset_s"] == 30.0 and curve["steps"] == 12
    assert [point["step"] for point in curve["points"]] == [0, 4, 8, 12]  # QUICK's 2 points: 1 per stage
    assert [point["train_s"] for point in curve["points"]] == [30.0, 31.0, 32.0, 33.0]


def test_the_course_record_adds_the_classifiers_training_to_the_fcn_stages(clock):
    """The peers' budget is the course's whole training: the classifier, then FCN-32s, 16s and 8s,
    the stages FCN-8s went through; its steps are those of the three stages."""
    fcn8s = VGG11SkipFCN(8, width=16, variant="8s")
    models = {
        "classifier": (None, {"seconds": 30.0, "step_loss": [1.0] * 5}),
        "segmenters": {
            "32s": (None, {"seconds": 20.0, "step_loss": [1.0] * 4}),
            "16s": (None, {"seconds": 10.0, "step_loss": [1.0] * 2}),
            "8s": (fcn8s, {"seconds": 10.0, "step_loss": [1.0] * 2}),
        },
    }
    course = quality.course_record(models, fcn8s_miou=0.8)
    assert (course["budget_s"], course["train_s"], course["steps"], course["classifier_steps"]) == (70.0, 70.0, 8, 5)
    assert course["fcn_train_s"] == 40.0 and course["seconds_per_step"] == 5.0 and course["miou"] == 0.8
    assert course["parameters"] == 599_512 and course["multiply_adds"] == speed.multiply_adds(fcn8s)


# ---------------------------------------------------------------------------- peers


def test_peers_take_images_and_return_one_score_map_per_class():
    x = torch.rand(1, 3, 64, 64)
    for name, peer in peers.PEERS.items():
        model = peer.build(8).eval()
        with torch.no_grad():
            assert model(x).shape == (1, 8, 64, 64), name


def test_the_equal_size_peer_is_the_candidate_closest_to_the_course_fcn8s():
    """Parameters and multiply-adds of the network that runs: smp's unused resnet18 stages are gone."""
    course = VGG11SkipFCN(8, width=16, variant="8s")
    size = peers.equal_size_report(course)
    assert size["closest_decoder_channels"] == list(peers.SMALL_UNET_DECODER) == size["decoder_channels"]
    assert size["course_parameters"] == 599_512
    assert 0.5 < size["parameters"] / size["course_parameters"] < 2  # the same order, unlike 18 M or 33 M
    assert 1 < size["multiply_adds"] / size["course_multiply_adds"] < 4
    assert [c["decoder_channels"] for c in size["candidates"]] == [list(c) for c in peers.SMALL_UNET_CANDIDATES]


def test_a_missing_peer_library_is_a_clear_message_not_a_traceback(monkeypatch):
    monkeypatch.setitem(sys.modules, "segmentation_models_pytorch", None)  # import fails
    with pytest.raises(peers.MissingPeer, match=r"pip install -e '\.\[benchmark\]'"):
        peers.unet_vgg11_bn(8)
    smp_only = {"smp_unet_vgg11_bn": peers.PEERS["smp_unet_vgg11_bn"]}
    monkeypatch.setattr(peers, "PEERS", smp_only)
    monkeypatch.setattr(curves, "PEERS", smp_only)
    race = peers.race_at_equal_time(1.0, 0.8, torch.device("cpu"), common.QUICK)
    assert race["smp_unet_vgg11_bn"]["miou"] is None
    assert "not installed" in race["smp_unet_vgg11_bn"]["skipped"]
    assert peers.equal_steps_run(10, torch.device("cpu"), common.QUICK)["miou"] is None
    assert "not installed" in peers.equal_size_report(tiny_segmenter(8))["skipped"]
    monkeypatch.setattr(curves, "course_curve", lambda *args: {"label": "course"})
    assert set(curves.learning_curves({}, "course", 1.0, torch.device("cpu"), common.QUICK)) == {"course_fcn8s"}


# ---------------------------------------------------------------------------- notebooks, machine


def test_time_notebook_reports_time_and_the_kernels_peak_memory(tmp_path):
    slow_exit = "import atexit, time\natexit.register(time.sleep, 1.5)  # as torch's teardown, only longer"
    cells = [nbformat.v4.new_code_cell("block = bytearray(300 * 2**20)"), nbformat.v4.new_code_cell(slow_exit)]
    path = tmp_path / "big.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    result = notebooks.time_notebook(path)
    assert result["seconds"] > 0
    assert result["with_shutdown_s"] - result["seconds"] >= 1.5  # the kernel's exit is not in "seconds"
    assert result["peak_rss_mb"] > 300  # the 300 MB block, held by the kernel
    assert len(nbformat.read(path, as_version=4).cells) == 2  # the file itself is not changed


def test_the_machine_record_names_what_makes_results_differ(monkeypatch):
    cpuinfo = (
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
        "flags\t\t: fpu sse4_1 avx2 avx512f avx512_bf16 amx_tile\n"
    )
    assert machine.cpu_description(cpuinfo) == (
        "Intel(R) Xeon(R) Platinum 8480+",
        ["AVX2", "AVX-512", "AVX-512 BF16", "AMX"],
    )
    assert machine.cpu_description("model name\t: AMD EPYC\nflags\t\t: sse4_1 avx2\n") == ("AMD EPYC", ["AVX2"])
    for name in machine.ISA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")  # MKL ignores oneDNN's variable
    monkeypatch.setenv("UNRELATED_SETTING", "1")
    record = machine.machine()
    assert record["isa_settings"] == {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    assert record["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["torch_threads"] == torch.get_num_threads()
    monkeypatch.setattr(os, "getloadavg", lambda: (2.344, 1.5, 0.25))
    assert machine.machine()["load_average_at_end"] == [2.34, 1.5, 0.25]
    monkeypatch.delattr(os, "getloadavg")  # Windows has none
    assert machine.load_average() is None


# ---------------------------------------------------------------------------- report


def result_with(**changes):
    result = {
        "notebooks": {
            "01_a": {"cold_s": 5, "warm_s": 5, "peak_rss_mb": 800},
            "05_e": {"cold_s": 150, "warm_s": 10, "peak_rss_mb": 1000},
        },
        "classifier_accuracy": 0.99,
        "background_miou": 0.1,
        "converted_fcn_miou": 0.4,
        "fcn32s_miou": 0.6,
        "fcn16s_miou": 0.75,
        "fcn8s_miou": 0.82,
        "train_flops_utilization": 0.5,
        "peers": {"course_fcn8s": {"miou": 0.82}, "unet": {"miou": 0.3}, "missing": {"miou": None}},
    }
    result.update(changes)
    return result


def test_targets_say_which_are_met():
    assert all(t["met"] for t in report.targets(result_with()).values())
    slow = report.targets(
        result_with(
            notebooks={
                "01_a": {"cold_s": 170, "warm_s": 36, "peak_rss_mb": 900},
                "05_e": {"cold_s": 201, "warm_s": 10, "peak_rss_mb": 1600},
            }
        )
    )
    assert [name for name, t in slow.items() if not t["met"]] == [
        "notebooks cold, total seconds <= 360",
        "last notebook cold, seconds <= 200",
        "notebooks warm, total seconds <= 45",
        "slowest notebook warm, seconds <= 12",
        "largest kernel, MB <= 1536",
    ]
    beaten = report.targets(
        result_with(
            fcn8s_miou=0.2,
            fcn16s_miou=0.3,
            converted_fcn_miou=0.25,
            classifier_accuracy=0.9,
            train_flops_utilization=0.3,
        )
    )
    assert [name for name, t in beaten.items() if not t["met"]] == [
        "classifier accuracy >= 0.98",
        "FCN-8s mIoU >= 0.80",
        "FCN-8s mIoU - FCN-16s mIoU >= 0",
        "FCN-16s mIoU - FCN-32s mIoU >= 0",
        "converted mIoU - all-background mIoU >= 0.2",
        "FCN-8s mIoU >= best peer at the same budget",
        "full-width training, fraction of matmul FLOP/s >= 0.40",
    ]


def test_the_last_notebook_target_is_notebook_5s():
    """It trains the classifier and the three FCNs when cold: the longest wait of the course."""
    result = result_with(
        notebooks={
            "01_a": {"cold_s": 199, "warm_s": 5, "peak_rss_mb": 800},
            "05_e": {"cold_s": 150, "warm_s": 5, "peak_rss_mb": 800},
        }
    )
    assert report.targets(result)["last notebook cold, seconds <= 200"]["value"] == 150


def test_targets_are_named_by_what_they_measure():
    """Each name says the quantity and its bound, with its value beside it; none points at an issue."""
    for name, target in report.targets(result_with()).items():
        assert ("<=" in name or ">=" in name) and "issue" not in name.lower(), name
        assert set(target) == {"value", "target", "met"}
    assert "issue" not in report.targets.__doc__.lower()


def test_a_longer_peer_budget_drops_the_same_budget_target():
    names = report.targets(result_with(peer_budget_factor=5.0))
    assert "FCN-8s mIoU >= best peer at the same budget" not in names and len(names) == 11


def record(label, miou, **figures):
    fields = {"parameters": 1_000_000, "multiply_adds": 2e9, "seconds_per_step": 0.5, "steps": 10, "train_s": 5.0}
    return {"label": label, "miou": miou, **fields, **figures}


def comparison_result():
    return {
        "peers": {
            "course_fcn8s": record("course FCN-8s", 0.8, classifier_steps=7),
            "unet": record("a big Unet", 0.3),
            "missing": {"label": "a missing peer", "miou": None, "skipped": "not installed"},
        },
        "equal_steps": record("a small Unet", 0.6),
        "curves": {"course_fcn8s": {"best_miou": 0.81}, "unet": {"best_miou": 0.5}},
        "curve_budget_s": 25.0,
    }


def test_the_comparison_table_has_every_row_and_column():
    rows = report.comparison_rows(comparison_result())
    assert [(row["model"], row["run"]) for row in rows] == [
        ("course FCN-8s", "its recipe: classifier, then FCN-8s"),
        ("a big Unet", "equal time"),
        ("a missing peer", "equal time"),
        ("a small Unet", "equal steps"),
    ]
    assert [row["curve_best_miou"] for row in rows] == [0.81, 0.5, None, None]
    lines = report.comparison_markdown(rows, 25.0).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == [
        "model",
        "training",
        "parameters",
        "multiply-adds per 128x128 image",
        "s per step",
        "steps",
        "training s",
        "mIoU",
        "best mIoU on its learning curve (within 25 s)",
    ]
    assert len(lines) == 2 + len(rows) and all(line.count("|") == len(header) + 1 for line in lines)
    assert (
        "| course FCN-8s | its recipe: classifier, then FCN-8s | 1.00 M | 2.00 G | 0.500 | 10 (+ 7 classifier) |"
        in (lines[2])
    )
    assert lines[2].endswith("| 5 | 0.800 | 0.810 |")
    assert lines[4] == "| a missing peer | equal time |" + " – |" * 7


def page_section_with(tables: str) -> tuple[str, list[str]]:
    """The section of docs/benchmark.md (from one `## ` heading to the next) that shows `tables`,
    and the lines of `tables` it lacks. A table line counts only as a whole line of the page."""
    wanted = [line for line in tables.splitlines() if line.strip()]
    sections = re.split(r"^(?=## )", BENCHMARK_PAGE.read_text(), flags=re.MULTILINE)
    section = min(sections, key=lambda text: len(set(wanted) - set(text.splitlines())))
    return section, [line for line in wanted if line not in section.splitlines()]


def test_the_benchmark_page_shows_the_committed_runs_tables_and_its_figure():
    """docs/benchmark.md's result tables are those `--table data/benchmark.json` prints, line for
    line, so they cannot drift from the committed run; that run is a whole one, with its curves,
    whose figure the page shows; and the page's list of targets met and not met is the run's."""
    stored = json.loads((REPO / "data" / "benchmark.json").read_text())
    assert stored.get("complete", True) and stored["curves"] and (REPO / "data" / "benchmark-curves.png").is_file()
    section, missing = page_section_with(report.markdown_report(stored))
    assert not missing, f"docs/benchmark.md lines that differ from data/benchmark.json's tables: {missing[:3]}"
    figures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", section)
    assert "../data/benchmark-curves.png" in figures  # relative to docs/, where the site is built from
    assert all((BENCHMARK_PAGE.parent / figure).is_file() for figure in figures), figures
    targets = report.targets(stored)
    assert ("meets every target" in section) == all(target["met"] for target in targets.values())
    claim = next(paragraph for paragraph in section.split("\n\n") if paragraph.startswith("Targets ("))
    met, _, not_met = claim.partition("Not met:")
    for name, target in targets.items():
        said, unsaid = (met, not_met) if target["met"] else (not_met, met)
        assert name in said and name not in unsaid, f"docs/benchmark.md says the wrong thing of {name!r}"


def test_the_curves_figure_is_a_png_with_a_line_per_model(tmp_path):
    curve = {
        "label": "a model",
        "parameters": 600_000,
        "points": [{"train_s": 0, "miou": 0.1}, {"train_s": 5, "miou": 0.6}],
    }
    path = report.plot_curves({"a": curve, "b": {**curve, "label": "another"}}, 3.0, tmp_path / "out" / "curves.png")
    assert path.read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    "option, message",
    [
        ("--peer-budget-factor", "must be positive, got 0.0"),
        ("--curve-budget-factor", "must be positive, got 0.0"),
        ("--curve-points", "must be at least 1, got 0"),
    ],
)
def test_budgets_and_points_must_be_positive(capsys, option, message):
    with pytest.raises(SystemExit):
        cli.main([option, "0"])
    assert message in capsys.readouterr().err


def test_the_curve_options_override_the_configuration():
    assert cli.config_from(cli.parser().parse_args([])) == common.FULL
    assert cli.config_from(cli.parser().parse_args(["--quick"])) == common.QUICK
    config = cli.config_from(cli.parser().parse_args(["--quick", "--curve-budget-factor", "3", "--curve-points", "4"]))
    assert (config.curve_budget_factor, config.curve_points, config.name) == (3.0, 4, "quick")


def test_a_quick_run_never_replaces_the_full_result():
    assert cli.default_output(quick=False).name == "benchmark.json"
    assert cli.default_output(quick=True).name == "benchmark-quick.json"
    assert cli.figure_path(cli.default_output(quick=False)).name == "benchmark-curves.png"
    assert cli.figure_path(cli.default_output(quick=True)).name == "benchmark-quick-curves.png"


def test_a_run_stopped_during_the_curves_keeps_what_it_measured_in_the_partial_file(tmp_path, monkeypatch):
    """Every phase faked: the run saves after each phase and each curve, and a stop during the
    second curve leaves the notebooks, speed, quality, peers and the first curve on disk."""
    monkeypatch.setattr(
        run, "notebooks_and_models", lambda *args: ({"nb": {"cold_s": 1.0}}, {"segmenters": {"8s": (None, None)}})
    )
    monkeypatch.setattr(run, "notebooks_total", lambda notebooks: {"cold_s": 1.0})
    monkeypatch.setattr(run, "speed_report", lambda *args: {"train_images_per_s": {"width16": 300.0}})
    monkeypatch.setattr(run, "course_quality", lambda models: {"fcn8s_miou": 0.8})
    monkeypatch.setattr(
        run, "course_record", lambda models, miou: {"budget_s": 10.0, "steps": 5, "label": "c", "miou": miou}
    )
    monkeypatch.setattr(run, "race_at_equal_time", lambda *args: {"peer": {"miou": 0.1}})
    monkeypatch.setattr(run, "equal_steps_run", lambda *args: {"miou": 0.2})
    monkeypatch.setattr(run, "equal_size_report", lambda model: {"parameters": 1})

    def curves_then_stop(models, label, budget_s, device, config, on_curve):
        on_curve({"course_fcn8s": {"best_miou": 0.8}})
        raise KeyboardInterrupt  # e.g. the session ends during the second curve

    monkeypatch.setattr(run, "learning_curves", curves_then_stop)
    output = tmp_path / "benchmark.json"
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--quick", "--output", str(output)])
    assert not output.exists()
    partial = json.loads(cli.partial_path(output).read_text())
    assert partial["complete"] is False and partial["quick"] is True
    assert partial["notebooks"] == {"nb": {"cold_s": 1.0}} and partial["fcn8s_miou"] == 0.8
    assert partial["train_images_per_s"] == {"width16": 300.0} and partial["peers"]["peer"] == {"miou": 0.1}
    assert partial["curves"] == {"course_fcn8s": {"best_miou": 0.8}}
    assert "load_average_at_start" in partial["machine"] and partial["benchmark_s"] >= 0


def test_the_notebook_table_gives_the_times_with_the_kernels_shutdown_where_the_run_has_them():
    old = {"a": {"cold_s": 10.0, "warm_s": 5.0, "peak_rss_mb": 900.0}}
    new = {"a": {**old["a"], "cold_with_shutdown_s": 12.0, "warm_with_shutdown_s": 6.4}}
    assert notebooks.notebooks_total(old) == {"cold_s": 10.0, "warm_s": 5.0}
    assert notebooks.notebooks_total(new) == {
        "cold_s": 10,
        "warm_s": 5,
        "cold_with_shutdown_s": 12,
        "warm_with_shutdown_s": 6.4,
    }
    old_table = report.notebooks_table({"notebooks": old, "notebooks_total": notebooks.notebooks_total(old)})
    new_table = report.notebooks_table({"notebooks": new, "notebooks_total": notebooks.notebooks_total(new)})
    assert "shutdown" not in old_table and "| `a` | 10 s | 5 s | 900 MB |" in old_table
    assert "| `a` | 10 s | 5 s | 12 s / 6 s | 900 MB |" in new_table


def test_a_notebooks_only_run_writes_its_own_file_with_the_targets_it_decides(tmp_path, monkeypatch):
    """--notebooks-only: the notebooks and the course's quality, no speed phase, no peers; its
    targets are the notebooks' and the quality's, and its tables print with --table."""
    fake = result_with()
    notebooks = fake["notebooks"]
    quality = {key: fake[key] for key in ("classifier_accuracy", "background_miou", "converted_fcn_miou")}
    quality.update({f"fcn{v}_miou": fake[f"fcn{v}_miou"] for v in ("32s", "16s", "8s")})
    monkeypatch.setattr(run, "notebooks_and_models", lambda *args: (notebooks, {"segmenters": {}}))
    monkeypatch.setattr(run, "course_quality", lambda models: quality)
    for phase in ("speed_report", "race_at_equal_time", "learning_curves"):
        monkeypatch.setattr(run, phase, lambda *args, phase=phase: pytest.fail(f"a notebooks-only run ran {phase}"))
    output = tmp_path / "benchmark-notebooks.json"
    cli.main(["--notebooks-only", "--output", str(output)])
    result = json.loads(output.read_text())
    assert result["complete"] and result["notebooks_only"] and result["notebooks"] == notebooks
    assert result["notebooks_total"] == {"cold_s": 155, "warm_s": 15}
    assert list(result["targets"]) == list(report.targets(result_with()))[:10]  # no race, no FLOP/s
    assert all(target["met"] for target in result["targets"].values())
    assert not cli.partial_path(output).exists() and not cli.figure_path(output).exists()
    tables = report.markdown_report(result)
    assert "| **all notebooks** | **155 s** | **15 s** |" in tables and "| course FCN-8s | 0.820 |" in tables
    assert cli.default_output(quick=False, notebooks_only=True).name == "benchmark-notebooks.json"
    assert cli.default_output(quick=True, notebooks_only=True).name == "benchmark-notebooks-quick.json"


def test_warm_runs_keep_every_run_and_count_the_fastest(monkeypatch):
    """All notebooks in order, then all again; the fastest run counts, as in timeit."""
    seconds = iter([9.0, 5.0, 7.0, 6.0, 8.0, 4.0])  # a, b, a, b, a, b
    calls = []

    def fake_time_notebook(path):
        calls.append(path.stem)
        s = next(seconds)
        return {"seconds": s, "with_shutdown_s": s + 1.5, "peak_rss_mb": 100 * s}

    monkeypatch.setattr(notebooks, "time_notebook", fake_time_notebook)
    cold = {"a": {"cold_s": 60.0, "peak_rss_mb": 850.0}, "b": {"cold_s": 70.0, "peak_rss_mb": 300.0}}
    results = notebooks.warm_runs([Path("a.ipynb"), Path("b.ipynb")], cold, repeats=3)
    assert calls == ["a", "b"] * 3
    assert results["a"] == {
        "cold_s": 60.0,
        "warm_runs_s": [9.0, 7.0, 8.0],
        "warm_s": 7.0,
        "warm_with_shutdown_s": 8.5,
        "peak_rss_mb": 900.0,
    }
    assert results["b"]["warm_runs_s"] == [5.0, 6.0, 4.0] and results["b"]["warm_s"] == 4.0
    assert results["b"]["peak_rss_mb"] == 600.0 and cold["a"] == {"cold_s": 60.0, "peak_rss_mb": 850.0}
    assert common.FULL.warm_repeats == 3 and common.QUICK.warm_repeats == 1


def test_the_benchmark_page_shows_the_committed_notebook_run_and_says_whether_it_meets_every_target():
    """The notebooks' tables of data/benchmark-notebooks.json (make benchmark-notebooks) are in
    docs/benchmark.md line for line, in a section of their own, and that section's claims about
    the run's targets (each one's row, and whether it "meets every target") are the JSON's."""
    stored = json.loads((REPO / "data" / "benchmark-notebooks.json").read_text())
    assert stored["complete"] and stored["notebooks_only"] and not stored["quick"]
    assert stored["machine"]["isa_settings"] == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    section, missing = page_section_with(report.markdown_report(stored))
    assert not missing, f"docs/benchmark.md lines unlike data/benchmark-notebooks.json's tables: {missing[:3]}"
    assert all(f"{name}={value}" in section for name, value in stored["machine"]["isa_settings"].items())
    targets = report.targets(stored)
    assert ("meets every target" in section) == all(target["met"] for target in targets.values())
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()]
    rows = {row[0]: row[-1] for row in cells}  # the targets' table: | target | committed run | met |
    assert {name: rows.get(name) for name in targets} == {
        name: "yes" if target["met"] else "no" for name, target in targets.items()
    }
