"""The benchmark: its quick mode end to end (as `make benchmark-quick`), and the parts it is built
from, each checked against something known."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn

import course_utils.benchmark as benchmark
from course_utils.models import VGG11Classifier
from course_utils.paths import CHECKPOINT_DIR_VARIABLE
from course_utils.recipes import CLASSIFIER_RECIPE, SEGMENTER_RECIPE

REPO = Path(__file__).resolve().parent.parent
KEYS = {
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
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`python -m course_utils.benchmark --quick`, with a sentinel in the learner's checkpoint folder."""
    folder = tmp_path_factory.mktemp("quick")
    checkpoints = folder / "my_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "classifier_w16.pt").write_bytes(b"a learner's checkpoint")
    output = folder / "benchmark.json"
    env = {**os.environ, CHECKPOINT_DIR_VARIABLE: str(checkpoints)}
    completed = subprocess.run(
        [sys.executable, "-m", "course_utils.benchmark", "--quick", "--output", str(output)],
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
    assert KEYS <= set(stored) and stored["quick"] is True


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
    }
    assert result["machine"]["torch"] == torch.__version__


@pytest.mark.slow
def test_quick_run_gives_every_peer_the_course_budget(quick_run):
    peers = json.loads(quick_run[1].read_text())["peers"]
    assert set(peers) == {"course_fcn8s", "smp_unet_vgg11_bn", "torchvision_fcn_resnet50"}
    budget = peers["course_fcn8s"]["budget_s"]
    assert budget == pytest.approx(peers["course_fcn8s"]["classifier_train_s"] + peers["course_fcn8s"]["fcn8s_train_s"])
    for name in ("smp_unet_vgg11_bn", "torchvision_fcn_resnet50"):
        peer = peers[name]
        assert peer["budget_s"] == budget and peer["steps"] >= 1
        step_s = peer["train_s"] / peer["steps"]
        assert peer["train_s"] <= budget + 2 * step_s  # stops at the budget, plus at most about one step
        assert 0 <= peer["miou"] <= 1
        assert peer["ours_over_theirs"] == pytest.approx(peers["course_fcn8s"]["miou"] / peer["miou"])


@pytest.mark.slow
def test_the_readme_table_is_made_from_the_stored_result(quick_run):
    _, output, _ = quick_run
    result = json.loads(output.read_text())
    completed = subprocess.run(
        [sys.executable, "-m", "course_utils.benchmark", "--table", str(output)],
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


@pytest.mark.slow
def test_quick_run_leaves_the_learners_checkpoints_alone(quick_run):
    _, _, checkpoints = quick_run
    assert [p.name for p in checkpoints.iterdir()] == ["classifier_w16.pt"]
    assert (checkpoints / "classifier_w16.pt").read_bytes() == b"a learner's checkpoint"


def test_the_full_run_measures_the_course_recipes_and_all_notebooks():
    assert benchmark.FULL["classifier_recipe"] is CLASSIFIER_RECIPE
    assert benchmark.FULL["segmenter_recipe"] is SEGMENTER_RECIPE
    assert benchmark.FULL["notebooks"] is None


# ---------------------------------------------------------------------------- the parts


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
    assert benchmark.training_flops(model, images, labels) == 3 * forward - first
    assert all(p.grad is None for p in model.parameters())  # counting leaves no gradients behind


def test_matrix_product_speed_is_measured_per_library():
    speeds = benchmark.matmul_gflops(torch.device("cpu"), size=256)
    assert "torch.mm" in speeds and all(v > 0 for v in speeds.values())
    if torch.backends.mkldnn.is_available():
        assert "oneDNN (1x1 convolution)" in speeds


def test_training_speed_counts_images_and_flops():
    speed = benchmark.training_speed(width=4, device=torch.device("cpu"), steps=2, image_size=32, batch_size=8)
    assert speed["images_per_s"] > 0
    assert speed["gflops"] == pytest.approx(speed["images_per_s"] * speed["gflop_per_image"])


def tiny_segmenter():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 1))


def tiny_scenes(n=32, size=32):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=generator)
    masks = torch.randint(0, 3, (n, size, size), generator=generator)
    return torch.utils.data.TensorDataset(images, masks)


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter for the benchmark: each reading is `clock.step` seconds after the last."""

    class Clock:
        now, step = 0.0, 0.01

        def __call__(self):
            self.now += self.step
            return self.now

    fake = Clock()
    monkeypatch.setattr(benchmark.time, "perf_counter", fake)
    return fake


def test_train_within_budget_takes_the_steps_the_budget_allows(monkeypatch, clock):
    monkeypatch.setattr(benchmark, "seconds_per_step", lambda *args, **kwargs: 0.1)  # 0.5 s -> 5 steps
    model = tiny_segmenter()
    before = [p.detach().clone() for p in model.parameters()]
    run = benchmark.train_within_budget(model, tiny_scenes(), budget_s=0.5, batch_size=8)
    assert run["steps"] == 5 and run["images_seen"] == 8 * 5
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # it trained
    assert not model.training


def test_train_within_budget_stops_at_the_deadline_even_when_steps_slow_down(monkeypatch, clock):
    """The step count comes from a timing probe; if training is slower than the probe said, the
    deadline still holds."""
    monkeypatch.setattr(benchmark, "seconds_per_step", lambda *args, **kwargs: 1e-6)  # "a million steps"
    clock.step = 0.1  # but each clock reading is 0.1 s later: a step really takes longer
    run = benchmark.train_within_budget(tiny_segmenter(), tiny_scenes(), budget_s=0.3, batch_size=8)
    assert 1 <= run["steps"] <= 3 and run["train_s"] <= 0.3 + 2 * clock.step


def test_peers_take_images_and_return_one_score_map_per_class():
    x = torch.rand(1, 3, 64, 64)
    for name, build in benchmark.PEERS.items():
        model = build(8).eval()
        with torch.no_grad():
            assert model(x).shape == (1, 8, 64, 64), name


def test_a_missing_peer_library_is_a_clear_message_not_a_traceback(monkeypatch):
    monkeypatch.setitem(sys.modules, "segmentation_models_pytorch", None)  # import fails
    with pytest.raises(benchmark.MissingPeer, match=r"pip install -e '\.\[benchmark\]'"):
        benchmark.unet_vgg11_bn(8)
    monkeypatch.setattr(benchmark, "PEERS", {"smp_unet_vgg11_bn": benchmark.unet_vgg11_bn})
    monkeypatch.setattr(benchmark, "held_out_scenes", lambda: ((None, None), (None, None)))
    monkeypatch.setattr(benchmark, "scenes_split", lambda *args: tiny_scenes())
    peers = benchmark.benchmark_peers(1.0, 0.8, torch.device("cpu"), benchmark.QUICK)
    assert peers["smp_unet_vgg11_bn"]["miou"] is None
    assert "not installed" in peers["smp_unet_vgg11_bn"]["skipped"]


def test_time_notebook_reports_time_and_the_kernels_peak_memory(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("block = bytearray(300 * 2**20)")])
    path = tmp_path / "big.ipynb"
    nbformat.write(notebook, path)
    result = benchmark.time_notebook(path)
    assert result["seconds"] > 0
    assert result["peak_rss_mb"] > 300  # the 300 MB block, held by the kernel
    assert len(nbformat.read(path, as_version=4).cells) == 1  # the file itself is not changed


def result_with(**changes):
    result = {
        "notebooks": {"a": {"cold_s": 100, "warm_s": 10, "peak_rss_mb": 1000}},
        "classifier_accuracy": 0.99,
        "fcn8s_miou": 0.8,
        "train_flops_utilization": 0.5,
        "peers": {"course_fcn8s": {"miou": 0.8}, "unet": {"miou": 0.3}, "missing": {"miou": None}},
    }
    result.update(changes)
    return result


def test_targets_say_which_are_met():
    assert all(t["met"] for t in benchmark.targets(result_with()).values())
    slow = benchmark.targets(result_with(notebooks={"a": {"cold_s": 700, "warm_s": 130, "peak_rss_mb": 4000}}))
    assert [name for name, t in slow.items() if not t["met"]] == [
        "notebooks cold, total seconds <= 600",
        "notebooks warm, total seconds <= 120",
        "largest kernel, MB <= 3072",
    ]
    beaten = benchmark.targets(result_with(fcn8s_miou=0.2, classifier_accuracy=0.9, train_flops_utilization=0.3))
    assert [name for name, t in beaten.items() if not t["met"]] == [
        "classifier accuracy >= 0.98",
        "FCN-8s mIoU >= best peer at the same budget",
        "full-width training, fraction of matmul FLOP/s >= 0.40",
    ]


def test_a_longer_peer_budget_drops_the_same_budget_target():
    names = benchmark.targets(result_with(peer_budget_factor=5.0))
    assert "FCN-8s mIoU >= best peer at the same budget" not in names and len(names) == 5


def test_a_budget_factor_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--peer-budget-factor", "0"])
    assert "must be positive, got 0.0" in capsys.readouterr().err


def test_a_quick_run_never_replaces_the_full_result():
    assert benchmark.default_output(quick=False).name == "benchmark.json"
    assert benchmark.default_output(quick=True).name == "benchmark-quick.json"


def test_the_machine_record_names_what_makes_results_differ(monkeypatch):
    cpuinfo = (
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
        "flags\t\t: fpu sse4_1 avx2 avx512f avx512_bf16 amx_tile\n"
    )
    assert benchmark.cpu_description(cpuinfo) == (
        "Intel(R) Xeon(R) Platinum 8480+",
        ["AVX2", "AVX-512", "AVX-512 BF16", "AMX"],
    )
    assert benchmark.cpu_description("model name\t: AMD EPYC\nflags\t\t: sse4_1 avx2\n") == ("AMD EPYC", ["AVX2"])
    for name in benchmark.ISA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    record = benchmark.machine()
    assert record["isa_settings"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert record["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["torch_threads"] == torch.get_num_threads()
