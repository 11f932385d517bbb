"""The code passes the linter and the formatter's check configured in pyproject.toml ([tool.ruff])."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is in the lint extra: `make setup-dev` installs it")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_passes(command):
    result = subprocess.run([RUFF, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_ruff_sees_the_package_and_the_tests():
    """The configuration's include covers every Python file CI should lint, and nothing is excluded silently."""
    if RUFF is None:
        pytest.skip("ruff is in the lint extra")
    listed = subprocess.run([RUFF, "check", "--show-files"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    files = {Path(line).resolve() for line in listed.stdout.splitlines() if line.endswith(".py")}
    packages = ["course_utils", "benchmarks", "publish", "tests"]
    expected = {p.resolve() for package in packages for p in ROOT.glob(f"{package}/**/*.py")}
    expected |= {ROOT / "conftest.py", ROOT / "docs" / "conf.py"}
    assert expected <= files, sorted(str(p.relative_to(ROOT)) for p in expected - files)
