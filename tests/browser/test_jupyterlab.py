"""Notebooks 4 and 6 in a real JupyterLab, driven by Debian's Chromium through Playwright.

Runs with `make test-browser` (which sets FCN_BROWSER_TEST=1 and installs what it needs); in a
plain `pytest` run it is skipped when Playwright or Chromium is missing. Each test starts
JupyterLab on 127.0.0.1 (no token, temporary settings), opens its notebook, runs all cells, and
uses the notebook's widget as a learner would:

- notebook 4: the explorer widget renders, and moving its slider changes its picture;
- notebook 6, on the tests' small copy of the Oxford-IIIT Pet dataset and random weights (the
  real files cannot be downloaded here): a photo chosen with the upload button is segmented and
  shown below it.

Screenshots go to build/browser/; the server is stopped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/04_classifier_to_fcn.ipynb"
PETS_NOTEBOOK = "notebooks/06_real_photos.ipynb"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("FCN_BROWSER_TEST") == "1"
SCREENSHOT_DIR = ROOT / "build" / "browser"


def _need(condition: bool, reason: str):
    if not condition:
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@contextmanager
def jupyterlab(home: Path, notebook: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 serving a copy of `notebook` (autosave must not touch the
    repository), with no token, throw-away settings and `env` added to its environment (its
    kernels inherit it); yields its base URL, and stops it afterwards."""
    served = home / "root"
    (served / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / notebook, served / notebook)
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        **(env or {}),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            "--LabApp.expose_app_in_browser=True",
            "--allow-root",
            f"--ServerApp.root_dir={served}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                get_json(f"{base}/api/status")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@contextmanager
def chromium() -> Iterator:
    """A Playwright Chromium browser (Debian's, at CHROMIUM), closed afterwards; the test is
    skipped (failed under make test-browser) when Playwright or Chromium is missing."""
    try:
        from playwright import sync_api
    except ImportError:
        _need(False, "Playwright is not installed (make test-browser installs it)")
    _need(
        shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists(),
        f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
    )
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def wait_for_idle_kernel(base: str, timeout: float) -> None:
    """Wait until a kernel exists and every kernel reports "idle" (polling the server, no fixed sleeps)."""
    deadline, states = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        try:
            states = {kernel["execution_state"] for kernel in get_json(f"{base}/api/kernels")}
        except OSError as error:  # e.g. HTTP 500 while a kernel is still starting on a loaded machine: ask again
            states = {f"no answer ({error})"}
        if states == {"idle"}:
            return
        time.sleep(0.25)
    raise AssertionError(f"the kernel was not idle within {timeout} s (states: {states})")


def open_and_run_all(browser, base: str, notebook: str, timeout_s: float):
    """Open `notebook` in JupyterLab at `base`, clear its outputs and run all its cells; return the
    page once every code cell has run and the kernel is idle."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/{notebook}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator, .jp-KernelStatus, .jp-Toolbar-kernelStatus", timeout=60_000
    )
    wait_for_idle_kernel(base, timeout=60)  # the kernel has started
    page.evaluate("""async () => {
        await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
        await window.jupyterapp.commands.execute('notebook:run-all-cells'); }""")
    # the notebook model (not the DOM: JupyterLab renders only the visible cells) must give every
    # code cell an execution count; then the server must report the kernel idle
    page.wait_for_function(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .filter(cell => cell.model.type === 'code')
                 .every(cell => cell.model.executionCount !== null)""",
        timeout=timeout_s * 1000,
    )
    wait_for_idle_kernel(base, timeout=60)
    return page


def test_explorer_widget_renders_and_responds(tmp_path):
    with jupyterlab(tmp_path, NOTEBOOK) as lab, chromium() as browser:
        page = open_and_run_all(browser, lab, NOTEBOOK, timeout_s=240)
        explorer = page.locator(".widget-vbox").filter(has=page.locator(".widget-image")).first
        explorer.wait_for(timeout=30_000)
        image = explorer.locator(".widget-image img, img.widget-image").first
        before = image.get_attribute("src")
        assert before and before.startswith(("blob:", "data:")), before
        summary_before = explorer.locator(".widget-html-content").first.inner_text()
        assert summary_before.startswith("image 0: predicted")

        explorer.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT_DIR / "explorer_before.png"), full_page=False)
        slider = explorer.locator(".widget-slider .ui-slider-handle, .widget-slider .noUi-handle").first
        slider.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([el, old]) => el.innerText !== old",
            arg=[explorer.locator(".widget-html-content").first.element_handle(), summary_before],
            timeout=30_000,
        )
        summary_after = explorer.locator(".widget-html-content").first.inner_text()
        assert summary_after.startswith("image 1: predicted"), summary_after
        page.wait_for_function(
            "([el, old]) => el.getAttribute('src') !== old", arg=[image.element_handle(), before], timeout=30_000
        )
        explorer.screenshot(path=str(SCREENSHOT_DIR / "explorer.png"))
    assert (SCREENSHOT_DIR / "explorer.png").stat().st_size > 10_000


def test_a_photo_chosen_with_the_upload_button_is_segmented_and_shown(tmp_path):
    """Notebook 6 on the fixture (its dataset and weights where the notebook looks for the real
    ones, an empty checkpoint folder); a 150x100 photo goes through the browser's file chooser."""
    from PIL import Image

    from course_utils.paths import CHECKPOINT_DIR_VARIABLE
    from course_utils.pets import PETS_VARIABLE
    from tests.pets_fixture import build_pets, build_weights

    env = {
        PETS_VARIABLE: str(build_pets(tmp_path / "pets")),
        "TORCH_HOME": str(build_weights(tmp_path / "torch").parents[2]),
        CHECKPOINT_DIR_VARIABLE: str(tmp_path / "checkpoints"),
    }
    photo = tmp_path / "my_pet.png"
    Image.new("RGB", (150, 100), (180, 120, 60)).save(photo)
    with jupyterlab(tmp_path / "lab", PETS_NOTEBOOK, env) as lab, chromium() as browser:
        page = open_and_run_all(browser, lab, PETS_NOTEBOOK, timeout_s=600)
        uploader = page.locator(".widget-vbox").filter(has=page.locator("button.widget-upload")).first
        uploader.scroll_into_view_if_needed(timeout=30_000)
        with page.expect_file_chooser(timeout=30_000) as chooser:
            uploader.locator("button.widget-upload").click()
        chooser.value.set_files(str(photo))
        figure = uploader.locator(".jp-OutputArea-output img").first  # the overlay, drawn by the kernel
        figure.wait_for(timeout=120_000)
        assert (figure.get_attribute("src") or "").startswith("data:image/png")
        assert figure.evaluate("img => img.naturalWidth") > 100  # a figure, not an error icon
        uploader.screenshot(path=str(SCREENSHOT_DIR / "photo_upload.png"))
    assert (SCREENSHOT_DIR / "photo_upload.png").stat().st_size > 10_000
