"""The repository's set-up files agree with each other and with the README."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_same_package_as_make_setup():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_deps = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    # conda provides only Python and pip; every other dependency comes from pyproject.toml,
    # the one list, through the same editable install with the same extras as the Makefile.
    assert sorted(re.split(r"[=<>]", d)[0] for d in conda_deps) == ["pip", "python"]
    assert pip_deps == [["-e .[dev]"]]
    assert '-e ".[dev]"' in (ROOT / "Makefile").read_text()


def test_environment_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    major, minor = map(int, python.split("=")[1].split(".")[:2])
    lowest = tuple(map(int, PYPROJECT["project"]["requires-python"].lstrip(">=").split(".")))
    assert (major, minor) >= lowest


def test_design_card_packages_are_dependencies():
    names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    test_names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert {"torch", "torchvision", "jupyterlab", "matplotlib", "ipywidgets"} <= names
    assert {"nbval", "pytest", "torchmetrics"} <= test_names
    assert "torchmetrics" not in names  # a test oracle, not a course dependency


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.MULTILINE)


def test_generated_data_is_ignored_but_documented():
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "data/*" in ignore and "!data/README.md" in ignore
    assert (ROOT / "data" / "README.md").is_file()


def test_the_benchmark_peers_are_never_a_course_dependency():
    names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    extra = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["optional-dependencies"]["benchmark"]}
    assert "segmentation-models-pytorch" in extra and "segmentation-models-pytorch" not in names
    importers = [path.name for path in (ROOT / "course_utils").glob("*.py")
                 if "segmentation_models_pytorch" in path.read_text()]
    assert importers == ["benchmark.py"]
    assert '-e ".[benchmark]"' in (ROOT / "Makefile").read_text()
