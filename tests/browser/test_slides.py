"""Notebook 5's lecture slides (`make slides`) in a real browser, with every request that would leave
127.0.0.1 blocked.

Runs with `make test-browser` (FCN_BROWSER_TEST=1), like the JupyterLab test beside it. The deck is
built into a temporary folder (publish.slides, as `make slides` does) and served by Python's
http.server on 127.0.0.1 in a thread. Stepping through it with the keyboard, as a presenter does,
the test checks that code cells render, that a figure loads, that MathJax typesets the maths (from
the copy beside the slides), that a slide taller than the screen scrolls, that the presenter's keys
do what the index page says, that the speaker view opens with the notes, and that nothing was
fetched from another machine or missing here. Screenshots go to build/browser/slides-*.png.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from tests.browser.test_jupyterlab import REQUIRED, SCREENSHOT_DIR, chromium

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "05_upsampling_and_skip_connections.ipynb"
DECK = f"{NOTEBOOK.stem}.slides.html"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# raw TeX that MathJax should have replaced: $...$, $$...$$, \(...\), \[...\]
RAW_MATHS = re.compile(r"\$\$?[^$\s][^$]*\$|\\\(|\\\[")
# the deck's reveal.js, as an AMD module (nbconvert's template loads it with require.js)
REVEAL = "() => new Promise(done => require(['_vendor/reveal.js/dist/reveal.js'], R => { window.Reveal = R; done(); }))"
MATHJAX_IDLE = "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running"


@pytest.fixture(scope="module")
def slides_folder(tmp_path_factory) -> Path:
    if not REQUIRED:
        pytest.skip("the slides are checked in a browser only under make test-browser (FCN_BROWSER_TEST=1)")
    from publish import slides

    out = tmp_path_factory.mktemp("slides")
    slides.build([NOTEBOOK], out)
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving `folder`, in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def offline_context(browser, blocked: list[str], missing: list[str]):
    """A browser context (its pages and pop-ups) whose requests to any host but 127.0.0.1 are
    aborted and recorded in `blocked`; local requests answered 4xx/5xx are recorded in `missing`."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})

    def guard(route):
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    def answered(response):
        if response.status >= 400 and urlparse(response.url).path != "/favicon.ico":  # the browser's own guess
            missing.append(f"{response.status} {response.url}")

    context.route("**/*", guard)
    context.on("response", answered)
    try:
        yield context
    finally:
        context.close()


def advance_until(page, condition: str, max_steps: int = 60) -> dict:
    """Press Space (the presenter's next slide, those below a slide included) until the JavaScript
    predicate `condition(slide)` holds for the current slide; returns reveal's indices there."""
    for _ in range(max_steps):
        if page.evaluate(f"() => ({condition})(Reveal.getCurrentSlide())"):
            return page.evaluate("() => Reveal.getIndices()")
        before = page.evaluate("() => JSON.stringify(Reveal.getIndices())")
        page.keyboard.press("Space")
        page.wait_for_function("old => JSON.stringify(Reveal.getIndices()) !== old", arg=before, timeout=5_000)
    raise AssertionError(f"no slide within {max_steps} steps satisfies {condition}")


def settled(page) -> None:
    """Wait for reveal's slide transition (0.8 s by default) to end, before a screenshot."""
    page.wait_for_timeout(1000)


def test_notebook_5_slides_show_code_figures_and_maths_offline(slides_folder):
    counts = {kind: 0 for kind in ("slide", "subslide", "notes")}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type")
        counts[kind] = counts.get(kind, 0) + 1

    blocked, missing = [], []
    with serve(slides_folder) as base, chromium() as browser, offline_context(browser, blocked, missing) as context:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/{DECK}")
        page.wait_for_selector(".reveal.ready", timeout=30_000)
        page.evaluate(REVEAL)
        page.wait_for_function(MATHJAX_IDLE, timeout=30_000)
        assert page.evaluate("() => Reveal.getTotalSlides()") == counts["slide"] + counts["subslide"]
        assert page.locator("aside.notes").count() == counts["notes"]
        title = page.evaluate("() => Reveal.getCurrentSlide().querySelector('h1').innerText")
        assert title.startswith("5 ·"), title
        page.screenshot(path=str(SCREENSHOT_DIR / "slides-title.png"))

        # a code cell with a figure below it
        advance_until(page, "s => s.querySelector('.jp-CodeCell .highlight') && s.querySelector('.jp-OutputArea img')")
        slide = "Reveal.getCurrentSlide()"
        assert page.evaluate(f"() => {slide}.querySelector('.jp-CodeCell .highlight pre').innerText").strip()
        assert page.evaluate(f"() => {slide}.querySelectorAll('.highlight pre span').length") > 10  # highlighted
        images = f"Array.from({slide}.querySelectorAll('.jp-OutputArea img'))"
        page.wait_for_function(f"() => {images}.every(image => image.complete && image.naturalWidth > 0)")
        assert page.evaluate(f"() => {slide}.querySelector('.jp-OutputArea img').getBoundingClientRect().width") > 300
        settled(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "slides-code-figure.png"))

        # display maths, typeset by the MathJax beside the slides, each formula once, no raw TeX left
        indices = advance_until(page, "s => s.querySelector('script[type^=\"math/tex\"]')")
        page.wait_for_function(MATHJAX_IDLE, timeout=30_000)
        # MathJax 2 typesets a slide's maths after the slide is shown: wait (up to 30 s) until it is done
        page.wait_for_function(
            f"() => {slide}.querySelectorAll('.MathJax_CHTML').length"
            f" >= {slide}.querySelectorAll('script[type^=\"math/tex\"]').length",
            timeout=30_000,
        )
        formulas = page.evaluate(f"() => {slide}.querySelectorAll('script[type^=\"math/tex\"]').length")
        rendered = page.evaluate(f"() => {slide}.querySelectorAll('.MathJax_CHTML').length")
        assert formulas >= 1 and rendered == formulas, (formulas, rendered)
        settled(page)  # nbconvert's template re-renders the maths of each slide it arrives on
        page.wait_for_function(MATHJAX_IDLE, timeout=30_000)
        page.wait_for_function(f"() => {slide}.querySelector('.MathJax_CHTML').getBoundingClientRect().width > 50")
        text = page.evaluate(f"() => {slide}.innerText")
        assert not RAW_MATHS.search(text), text[:500]
        fonts = page.evaluate("() => performance.getEntriesByType('resource').map(r => r.name)")
        assert any("/_vendor/mathjax2/fonts/HTML-CSS/TeX/woff/" in name for name in fonts), fonts
        page.screenshot(path=str(SCREENSHOT_DIR / "slides-maths.png"))

        # going on and coming back keeps the maths as it was (nbconvert re-renders it on each change)
        for key in ["Space", "Space", "Shift+Space", "Shift+Space"]:
            page.keyboard.press(key)
            page.wait_for_timeout(300)
        assert page.evaluate("() => Reveal.getIndices()") == indices
        page.wait_for_function(MATHJAX_IDLE, timeout=30_000)
        assert page.evaluate(f"() => {slide}.querySelectorAll('.MathJax_CHTML').length") == formulas

        # a slide taller than the screen scrolls (nbconvert's reveal_scroll, set on arrival)
        advance_until(page, "s => getComputedStyle(s).overflowY === 'scroll' && s.scrollHeight > s.clientHeight")
        settled(page)
        page.mouse.move(640, 400)
        page.mouse.wheel(0, 500)
        page.wait_for_function(f"() => {slide}.scrollTop > 0", timeout=5_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(SCREENSHOT_DIR / "slides-scrolled.png"))

        # the presenter's other keys: -> the next section, down within one, Esc the overview
        def where():
            return page.evaluate("() => [Reveal.getIndices().h, Reveal.getIndices().v]")

        page.evaluate("() => Reveal.slide(1, 0)")
        assert page.evaluate("() => Reveal.availableRoutes().down"), "the first section has a slide below it"
        page.keyboard.press("ArrowDown")
        assert where() == [1, 1]
        page.keyboard.press("ArrowRight")  # (reveal resumes a section at the slide last seen there)
        assert where()[0] == 2
        page.keyboard.press("ArrowLeft")
        assert where() == [1, 1]
        page.keyboard.press("Escape")
        page.wait_for_selector(".reveal.overview")
        page.keyboard.press("Escape")
        page.wait_for_selector(".reveal:not(.overview)")

        # the last slide, and its speaker notes in the speaker view (S)
        page.keyboard.press("End")
        page.wait_for_timeout(500)
        assert "summary" in page.evaluate(f"() => {slide}.innerText").lower()  # headings are upper case
        with page.expect_popup(timeout=10_000) as popup:
            page.keyboard.press("s")
        speaker = popup.value
        speaker.wait_for_load_state()
        speaker.wait_for_function(
            "() => document.querySelector('.speaker-controls-notes') && "
            "document.querySelector('.speaker-controls-notes').innerText.includes('Hints and short answers')",
            timeout=15_000,
        )
        settled(speaker)
        speaker.screenshot(path=str(SCREENSHOT_DIR / "slides-speaker-view.png"))
        assert not errors, errors

    assert not blocked, f"the slides tried to fetch from other machines: {blocked}"
    assert not missing, f"the slides asked for files that are not in the build: {missing}"


def test_the_index_lists_the_deck_and_opens_it(slides_folder):
    blocked, missing = [], []
    with serve(slides_folder) as base, chromium() as browser, offline_context(browser, blocked, missing) as context:
        page = context.new_page()
        page.goto(f"{base}/index.html")
        link = page.locator(f'a[href="{DECK}"]')
        assert link.inner_text().startswith("5 · Upsampling")
        page.screenshot(path=str(SCREENSHOT_DIR / "slides-index.png"))
        link.click()
        page.wait_for_selector(".reveal.ready", timeout=30_000)
    assert not blocked and not missing, (blocked, missing)
