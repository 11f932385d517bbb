"""The repository's set-up files agree with each other and with the README."""

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from course_utils.paths import course_notebooks
from course_utils.pets import PETS_FOLDER

try:  # Python 3.11+; on 3.10 the test extra installs tomli, the same parser
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def make_dry_run(target: str) -> list[str]:
    """The commands `make <target>` would run from nothing (a fresh virtual environment), not run."""
    result = subprocess.run(
        ["make", "-n", "-B", target, "VENV=/nonexistent/venv"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def pip_installs(target: str) -> list[str]:
    """What `make <target>` asks pip to install, e.g. ['.', '.[dev]']."""
    return [re.search(r'-e "?([^" ]+)"?', line).group(1) for line in make_dry_run(target) if " pip install " in line]


def test_a_learner_installs_the_course_and_nothing_for_developers():
    assert pip_installs("lab") == ["."]
    assert pip_installs("setup") == ["."]
    assert pip_installs("student") == ["."] and pip_installs("warm") == ["."]


def test_developers_and_ci_get_the_extras():
    assert pip_installs("test") == [".", ".[dev]"]
    assert set(PYPROJECT["project"]["optional-dependencies"]) >= {"test", "lint", "benchmark", "site", "dev"}
    assert PYPROJECT["project"]["optional-dependencies"]["dev"] == ["fcn-course[test,lint,benchmark,site]"]


def test_environment_yml_installs_the_same_package_as_make_setup():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_deps = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    # conda provides only Python and pip; every other dependency comes from pyproject.toml,
    # the one list, through the same editable install as `make setup`.
    assert sorted(re.split(r"[=<>]", d)[0] for d in conda_deps) == ["pip", "python"]
    assert pip_deps == [[f"-e {spec}" for spec in pip_installs("setup")]]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    return names | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }


def test_each_third_party_import_of_the_course_is_a_declared_dependency():
    """A module imported by course_utils must be installed by `make lab`, not only by an extra."""
    declared = {re.split(r"[<>=\[ ;]", d)[0].lower().replace("-", "_") for d in PYPROJECT["project"]["dependencies"]}
    declared |= {"ipython", "PIL"}  # installed by jupyterlab and ipykernel, and by torchvision
    optional = {"segmentation_models_pytorch", "timm", "playwright"}  # imported lazily, for the benchmark or browser
    stdlib = set(sys.stdlib_module_names)
    for path in (ROOT / "course_utils").rglob("*.py"):
        for module in imported_modules(path) - stdlib - {"course_utils"} - optional:
            assert module.lower() in {d.lower() for d in declared}, f"{path.name} imports {module}, not a dependency"


def test_the_code_keeps_to_the_oldest_python_it_claims():
    """requires-python says 3.10: no newer syntax anywhere, and 3.11's tomllib only with a fallback."""
    oldest = tuple(map(int, PYPROJECT["project"]["requires-python"].lstrip(">=").split(".")))
    assert oldest == (3, 10)
    for path in [
        *ROOT.glob("course_utils/**/*.py"),
        *ROOT.glob("benchmarks/*.py"),
        *ROOT.glob("tests/**/*.py"),
        ROOT / "conftest.py",
    ]:
        source = path.read_text()
        ast.parse(source, filename=str(path), feature_version=oldest)
        if "import tomllib" in source:
            assert "import tomli as tomllib" in source, f"{path.name}: tomllib needs Python 3.11"


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
    runs = [
        (m.start(), m.group(2)) for m in re.finditer(r"^(time )?((\w+=('[^']*'|\S+) )*)make test$", ci, re.MULTILINE)
    ]
    assert [settings for _, settings in runs][-1] == "", "CI must run the README's test command as it is"
    # ... and before that cold, on another CPU's float path (portable ATen kernels, oneDNN on
    # SSE4.1, MKL on SSE4.2: each library reads only its own variable)
    start, settings = runs[0]
    assert "ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2" in settings
    assert ci.index("make clean-data") < start


def test_generated_data_is_ignored_but_documented():
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "data/*" in ignore and "!data/README.md" in ignore
    assert (ROOT / "data" / "README.md").is_file()


def test_clean_data_deletes_what_is_generated_and_keeps_what_git_tracks_and_downloads(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    data = tmp_path / "data"
    kept = ["README.md", "benchmark.json", "benchmark-curves.png", "benchmark-notebooks.json"]
    downloaded = f"{PETS_FOLDER}/annotations/test.txt"  # notebook 6's 800 MB dataset, if downloaded here
    generated = ["checkpoints/classifier_w16.pt", "checkpoints/datasets/ShapesScenes-0.pt", "pets/features.pt"]
    for name in kept + [downloaded] + generated:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("x")
    subprocess.run(["make", "-s", "clean-data"], cwd=tmp_path, check=True, capture_output=True)
    assert sorted(path.name for path in data.iterdir()) == sorted([*kept, PETS_FOLDER])
    assert (data / downloaded).is_file()
    tracked = subprocess.run(["git", "ls-files", "data"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert {Path(name).name for name in tracked} <= set(kept)  # a new tracked file there must be kept too


def test_the_benchmark_peers_are_never_a_course_dependency():
    names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    extra = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["optional-dependencies"]["benchmark"]}
    assert "segmentation-models-pytorch" in extra and "segmentation-models-pytorch" not in names

    def importers(package: str) -> list[Path]:
        return [path for path in (ROOT / package).rglob("*.py") if "segmentation_models_pytorch" in path.read_text()]

    assert importers("benchmarks") and not importers("course_utils")
    assert ".[benchmark]" in pip_installs("benchmark")


def test_the_course_package_never_imports_the_benchmark():
    """course_utils holds what the course teaches; the benchmark is the top-level package
    benchmarks/, which imports course_utils and is never imported by it (nor by name, through importlib)."""
    assert not (ROOT / "course_utils" / "benchmark").exists() and not (ROOT / "course_utils" / "benchmark.py").exists()
    assert (ROOT / "benchmarks" / "__init__.py").is_file()
    for path in (ROOT / "course_utils").rglob("*.py"):
        names = {node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)}
        by_name = {name for name in names if isinstance(name, str) and re.match(r"benchmarks(\.|$)", name)}
        assert "benchmarks" not in imported_modules(path) and not by_name, f"{path.name} imports benchmarks"


def collected(*args) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout.splitlines()


def test_plain_pytest_nbval_from_the_root_runs_the_unit_tests_and_every_notebook():
    items = collected("--nbval")
    notebooks = sorted({line.split("::")[0] for line in items if ".ipynb::" in line})
    # every notebook but those that need a download (no stored outputs; tests/test_pets.py runs them),
    # in English and then in the Korean edition
    english = [p.relative_to(ROOT) for p in course_notebooks()]
    assert notebooks == [str(p) for p in english] + [str(p.parent / "ko" / p.name) for p in english]
    assert "notebooks/06_real_photos.ipynb" not in notebooks
    assert any(line.startswith("tests/test_models.py::") for line in items)
    assert not any(line.startswith("tests/browser") for line in items)  # only with FCN_BROWSER_TEST=1
    assert not any(".ipynb" in line for line in collected())  # plain `pytest`: unit tests only


def test_pytest_nbval_gets_the_options_of_make_test(monkeypatch):
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    environment = {}
    monkeypatch.setattr(conftest.os, "environ", environment)
    option = SimpleNamespace(
        nbval=True, nbval_lax=False, nbval_current_env=False, nbval_sanitize_with=None, nbval_cell_timeout=2000
    )
    conftest.pytest_configure(SimpleNamespace(option=option))
    assert option.nbval_current_env
    assert option.nbval_cell_timeout > 2000  # notebook 5 trains three FCNs in one cell
    assert Path(option.nbval_sanitize_with) == ROOT / "notebooks" / "nbval-sanitize.cfg"
    assert environment["FCN_COURSE_WIDTH"] == "16"  # the kernels train the width the outputs were stored with
    assert "tests.nbval_tolerance" in conftest.pytest_plugins


def test_every_subpackage_of_course_utils_is_installed():
    """A non-editable install copies only the listed packages: a new subpackage must be listed."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    roots = {name.split(".")[0] for name in listed}  # course_utils, and beside it benchmarks
    assert {"course_utils", "benchmarks"} <= roots
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for root in roots for init in (ROOT / root).rglob("__init__.py")
    }
    assert on_disk == listed, f"pyproject.toml [tool.setuptools] packages: {sorted(listed)}, on disk: {sorted(on_disk)}"
    # and the translations of course_utils' messages travel with it as package data
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["course_utils"]
    catalogs = [p.relative_to(ROOT / "course_utils") for p in (ROOT / "course_utils" / "locales").rglob("*.po")]
    assert catalogs and all(any(c.match(pattern) for pattern in patterns) for c in catalogs), (catalogs, patterns)


def test_the_sanitizer_masks_what_differs_between_machines_and_torch_versions():
    """notebooks/nbval-sanitize.cfg, read as nbval reads it: outputs that differ only where they should."""
    import re

    from nbval.plugin import get_sanitize_patterns

    patterns = dict(
        get_sanitize_patterns((ROOT / "notebooks" / "nbval-sanitize.cfg").read_text())
    )  # as nbval keeps them

    def sanitize(text):
        for regex, replace in patterns.items():
            text = re.sub(regex, replace, text)
        return text

    # torch 2.11 prints BatchNorm's `bias`, 2.14 does not
    older = "(1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    newer = "(1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert sanitize(older) == sanitize(newer) == newer
    assert sanitize("<Figure size 1440x960 with 8 Axes>") == sanitize("<Figure size 1440x720 with 6 Axes>")
    assert sanitize("Conv2d(3, 64, kernel_size=(3, 3))") == "Conv2d(3, 64, kernel_size=(3, 3))"  # untouched
