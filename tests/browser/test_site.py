"""The built website (`make site`) in a real browser, with every request leaving 127.0.0.1 blocked.

Runs with `make test-browser` (FCN_BROWSER_TEST=1), like the JupyterLab test beside it. The site
is built once into a temporary folder and served by Python's http.server on 127.0.0.1 (Sphinx's
search needs a server, not file://). Each test fails if the page tried to fetch anything from
another machine. Screenshots go to build/browser/site-*.png.
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

import pytest

from tests.browser.test_jupyterlab import REQUIRED, SCREENSHOT_DIR, _need, chromium

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_PAGES = sorted(path.stem for path in (ROOT / "notebooks").glob("0*.ipynb"))
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# raw TeX that MathJax should have replaced: $...$, $$...$$, \(...\), \[...\]
RAW_MATHS = re.compile(r"\$\$?[^$\s][^$]*\$|\\\(|\\\[")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    if not REQUIRED:
        pytest.skip("the site is checked in a browser only under make test-browser (FCN_BROWSER_TEST=1)")
    _need(True, "")
    from publish import site

    return site.build(tmp_path_factory.mktemp("site") / "site")


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving `folder`, in a thread; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def offline_page(browser, blocked: list[str], color_scheme: str = "light"):
    """A new page whose requests to any host but 127.0.0.1 are aborted and recorded in `blocked`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)

    def guard(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def site_browser(built_site):
    with serve(built_site) as base, chromium() as browser:
        yield base, browser


def wait_for_fonts(page) -> None:
    """Wait until the page's web fonts are loaded (the site's NanumGothic draws Hangul, also in the
    sidebar and the language switch of English pages), so that a screenshot shows them."""
    page.evaluate(
        """async () => {
            await document.fonts.ready;
            if (/[\uac00-\ud7a3]/.test(document.body.innerText)) await document.fonts.load("16px NanumGothic", "한");
            await document.fonts.ready;
        }"""
    )


def wait_for_maths(page) -> int:
    """Wait until MathJax has typeset every maths element on the page; returns how many there are."""
    count = page.locator("article .math").count()
    if count:
        page.wait_for_function(
            "n => document.querySelectorAll('article mjx-container').length >= n", arg=count, timeout=30_000
        )
    return count


def test_the_landing_page_lists_the_notebooks_in_order(site_browser):
    base, browser = site_browser
    blocked: list[str] = []
    with offline_page(browser, blocked) as page:
        page.goto(f"{base}/index.html")  # redirects to docs/index.html
        page.wait_for_url("**/docs/index.html")
        links = page.locator("article a.reference.internal").evaluate_all("links => links.map(a => a.href)")
        pages = [Path(urlparse(link).path).stem for link in links if "/notebooks/" in link]
        assert [name for name in pages if name in NOTEBOOK_PAGES] == NOTEBOOK_PAGES
        assert "make lab" in page.inner_text("article")
        wait_for_fonts(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "site-landing.png"))
    assert not blocked, f"the landing page tried to fetch from other machines: {blocked}"


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_each_notebook_page_shows_figures_maths_and_hints_and_links_on(site_browser, name):
    base, browser = site_browser
    blocked: list[str] = []
    with offline_page(browser, blocked) as page:
        page.goto(f"{base}/notebooks/{name}.html")
        page.wait_for_load_state("load")
        article = page.locator("article")
        assert name.split("_", 1)[0].lstrip("0") in page.locator("article h1").first.inner_text()
        assert "Run it yourself" in article.inner_text()

        images = page.locator("article img")
        if name != "06_real_photos":  # stored without outputs: no figures
            assert images.count() >= 1, f"{name}: no figure on the page"
        broken = images.evaluate_all("images => images.filter(i => !(i.complete && i.naturalWidth > 0)).length")
        assert broken == 0, f"{name}: {broken} figures did not load"

        maths = wait_for_maths(page)
        assert not RAW_MATHS.search(article.inner_text()), f"{name}: raw TeX left on the page"

        hint = page.locator("article details").last
        assert hint.count() == 1, f"{name}: no collapsed hints"
        answer = hint.locator(":scope > :not(summary)").first
        assert not answer.is_visible()
        hint.locator("summary").click()
        assert hint.evaluate("d => d.open") and answer.is_visible()

        index = NOTEBOOK_PAGES.index(name)
        if index + 1 < len(NOTEBOOK_PAGES):
            page.locator("a.right-next").click()
            page.wait_for_url(f"**/notebooks/{NOTEBOOK_PAGES[index + 1]}.html")
            page.locator("a.left-prev").click()
            page.wait_for_url(f"**/notebooks/{name}.html")
        if name.startswith("05"):
            page.goto(f"{base}/notebooks/{name}.html")
            wait_for_maths(page)
            page.locator("article img").first.scroll_into_view_if_needed()
            wait_for_fonts(page)
            page.screenshot(path=str(SCREENSHOT_DIR / "site-notebook-05-figure.png"))
            maths_element = page.locator("article mjx-container").first
            maths_element.scroll_into_view_if_needed()
            wait_for_fonts(page)
            page.screenshot(path=str(SCREENSHOT_DIR / "site-notebook-05-maths.png"))
            assert maths >= 1, "notebook 5 has no typeset maths"
    assert not blocked, f"{name}: the page tried to fetch from other machines: {blocked}"


def test_search_finds_a_term_from_notebook_5(site_browser):
    base, browser = site_browser
    blocked: list[str] = []
    with offline_page(browser, blocked) as page:
        page.goto(f"{base}/search.html?q=checkerboard")
        results = page.locator("#search-results li a")
        results.first.wait_for(timeout=30_000)
        hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert any("05_upsampling_and_skip_connections" in href for href in hrefs), hrefs
        wait_for_fonts(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "site-search.png"))
    assert not blocked, f"search tried to fetch from other machines: {blocked}"


def test_the_dark_mode_switch_turns_the_page_dark(site_browser):
    base, browser = site_browser
    blocked: list[str] = []
    with offline_page(browser, blocked) as page:
        page.goto(f"{base}/notebooks/04_classifier_to_fcn.html")
        page.wait_for_load_state("load")
        page.locator("button.theme-switch-button").click()  # opens the colour-mode menu
        page.locator("button.theme-change-button[data-mode=dark]").click()
        page.keyboard.press("Escape")  # close the menu before the screenshot
        page.mouse.move(640, 700)
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(value) for value in re.findall(r"\d+", background)[:3])
        assert red + green + blue < 3 * 80, f"dark mode, but the page's background is {background}"
        wait_for_fonts(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "site-dark.png"))
    assert not blocked, f"the dark page tried to fetch from other machines: {blocked}"


def test_the_language_switch_leads_to_the_korean_page_and_back(site_browser):
    base, browser = site_browser
    blocked: list[str] = []
    name = "05_upsampling_and_skip_connections"
    with offline_page(browser, blocked) as page:
        page.goto(f"{base}/notebooks/{name}.html")
        page.locator("a.edition-switch-link").click()
        page.wait_for_url(f"**/notebooks/ko/{name}.html")
        page.wait_for_load_state("load")
        text = page.locator("article").inner_text()
        assert "직접 실행하기" in text and sum("\uac00" <= char <= "\ud7a3" for char in text) > 1000
        images = page.locator("article img")
        assert images.count() >= 5
        assert images.evaluate_all("images => images.every(i => i.complete && i.naturalWidth > 0)")
        wait_for_maths(page)
        assert not RAW_MATHS.search(page.locator("article").inner_text())
        # Hangul is drawn with the NanumGothic served from the site itself (no Korean system font needed)
        page.evaluate("document.fonts.ready")
        assert page.evaluate("document.fonts.check('16px NanumGothic', '한국어')")
        assert page.evaluate(
            "[...document.fonts].some(f => f.family.includes('NanumGothic') && f.status === 'loaded')"
        ), "NanumGothic was not loaded"
        wait_for_fonts(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "site-notebook-05-ko.png"))
        page.locator("a.edition-switch-link").click()
        page.wait_for_url(f"**/notebooks/{name}.html")
    assert not blocked, f"the Korean page tried to fetch from other machines: {blocked}"
