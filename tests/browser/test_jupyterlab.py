"""Notebook 4 in a real JupyterLab, driven by Debian's Chromium through Playwright.

Runs with `make test-browser` (which sets FCN_BROWSER_TEST=1 and installs what it needs); in a
plain `pytest` run it is skipped when Playwright or Chromium is missing. It starts JupyterLab on
127.0.0.1 (no token, temporary settings), opens the classifier-to-FCN notebook, runs all cells,
checks that the explorer widget renders and that moving a control changes its picture, saves a
screenshot to build/browser/, and stops the server.
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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/04_classifier_to_fcn.ipynb"
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with no token and throw-away settings; stopped afterwards."""
    home = tmp_path_factory.mktemp("lab")
    served = home / "root"
    (served / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / NOTEBOOK, served / NOTEBOOK)  # a copy: autosave must not touch the repository
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
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


def wait_for_idle_kernel(base: str, timeout: float) -> None:
    """Wait until a kernel exists and every kernel reports "idle" (polling the server, no fixed sleeps)."""
    deadline, states = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        states = {kernel["execution_state"] for kernel in get_json(f"{base}/api/kernels")}
        if states == {"idle"}:
            return
        time.sleep(0.25)
    raise AssertionError(f"the kernel was not idle within {timeout} s (states: {states})")


def test_explorer_widget_renders_and_responds(lab):
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
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator, .jp-KernelStatus, .jp-Toolbar-kernelStatus", timeout=60_000
            )
            wait_for_idle_kernel(lab, timeout=60)  # the kernel has started
            page.evaluate("""async () => {
                await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
                await window.jupyterapp.commands.execute('notebook:run-all-cells'); }""")
            # the notebook model (not the DOM: JupyterLab renders only the visible cells) must give
            # every code cell an execution count; then the server must report the kernel idle
            page.wait_for_function(
                """() => window.jupyterapp.shell.currentWidget.content.widgets
                         .filter(cell => cell.model.type === 'code')
                         .every(cell => cell.model.executionCount !== null)""",
                timeout=240_000,
            )
            wait_for_idle_kernel(lab, timeout=60)

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
        finally:
            browser.close()
    assert (SCREENSHOT_DIR / "explorer.png").stat().st_size > 10_000
