"""The website (`make site`): it builds from the stored notebooks, offline, and fetches nothing from
another machine. The browser test (tests/browser/test_site.py) then opens it in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publish import offline, vendor

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(path.stem for path in (ROOT / "notebooks").glob("0*.ipynb"))
DOCS = sorted(path.stem for path in (ROOT / "docs").glob("*.md"))

pytest.importorskip("sphinx", reason="the site's tools are in the `site` extra (make setup-dev installs them)")
pytest.importorskip("myst_nb", reason="the site's tools are in the `site` extra (make setup-dev installs them)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from publish import site as site_module

    return site_module.build(tmp_path_factory.mktemp("site") / "site")


def test_every_notebook_and_docs_page_is_built(site):
    for name in NOTEBOOKS:
        assert (site / "notebooks" / f"{name}.html").is_file(), name
        assert (site / "_sources" / "notebooks" / f"{name}.ipynb").is_file(), f"{name}: no downloadable notebook"
    for name in DOCS:
        assert (site / "docs" / f"{name}.html").is_file(), name
    assert "docs/index.html" in (site / "index.html").read_text()
    assert (site / "searchindex.js").is_file()


def test_notebook_pages_show_the_stored_outputs_and_how_to_run_them(site):
    page = (site / "notebooks" / "05_upsampling_and_skip_connections.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    assert "Run it yourself" in text and "make lab installs everything" in text
    assert 'href="../_sources/notebooks/05_upsampling_and_skip_connections.ipynb"' in page
    assert page.count("<img") >= 5, "the stored figures are missing"
    assert "FCN-8s" in page and "<details>" in page


def test_both_editions_are_built_and_every_page_links_to_the_other_language(site):
    korean = sorted(path.stem for path in (ROOT / "notebooks" / "ko").glob("0*.ipynb"))
    assert korean == NOTEBOOKS
    for name in NOTEBOOKS:
        english_page = (site / "notebooks" / f"{name}.html").read_text()
        korean_page = (site / "notebooks" / "ko" / f"{name}.html").read_text()
        assert f'href="ko/{name}.html">한국어</a>' in english_page, name
        assert f'href="../{name}.html">English</a>' in korean_page, name
        assert "직접 실행하기" in korean_page and f"notebooks/ko/{name}.ipynb" in korean_page, name
        assert (site / "_sources" / "notebooks" / "ko" / f"{name}.ipynb").is_file(), name
    for name in DOCS:
        page = (site / "docs" / f"{name}.html").read_text()
        assert ('href="index.html">English</a>' if name == "ko" else 'href="ko.html">한국어</a>') in page, name
    figures = (site / "notebooks" / "ko" / "05_upsampling_and_skip_connections.html").read_text().count("<img")
    assert figures >= 5, "the Korean notebook's stored figures are missing"


def test_the_built_site_fetches_nothing_from_other_machines(site):
    assert offline.scan_folder(site) == {}
    mathjax = site / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.is_file() and mathjax.stat().st_size > 500_000
    pages_with_maths = [
        path for path in site.rglob("*.html") if 'class="math' in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert pages_with_maths, "no page has maths; the MathJax check would check nothing"
    for path in pages_with_maths:
        assert re.search(r'<script [^>]*src="[./]*_static/mathjax/tex-chtml\.js', path.read_text()), path


def test_the_offline_check_finds_what_a_page_would_fetch():
    page = """<html><head>
      <script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>
      <link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">
      <style>@import "https://example.org/theme.css"; body { background: url(http://x.org/b.png) }</style>
      </head><body><img srcset="a.png 1x, https://x.org/a2.png 2x">
      <a href="https://github.com/">a link a reader may follow</a>
      <script src="_static/local.js"></script><img src="../_images/figure.png"></body></html>"""
    assert sorted(offline.external_resources(page)) == sorted(
        [
            "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js",
            "//fonts.googleapis.com/css?family=Lato",
            "https://example.org/theme.css",
            "http://x.org/b.png",
            "https://x.org/a2.png",
        ]
    )
    assert offline.external_resources('<a href="https://a.org">x</a><img src="data:image/png;base64,AA">') == []


def test_a_site_that_would_fetch_from_a_cdn_fails_the_build(tmp_path, monkeypatch):
    from publish import site as site_module

    def build_main_writing_a_cdn_page(args):
        out = Path(args[-1])
        out.mkdir(parents=True)
        (out / "page.html").write_text('<script src="https://unpkg.com/x.js"></script>')
        return 0

    monkeypatch.setattr("sphinx.cmd.build.build_main", build_main_writing_a_cdn_page)
    with pytest.raises(site_module.SiteError, match="unpkg.com"):
        site_module.build(tmp_path / "site")


def test_vendored_packages_are_checked_against_their_integrity(tmp_path, monkeypatch):
    data = b"not the package"
    with pytest.raises(vendor.VendorError, match="integrity mismatch"):
        vendor.check_integrity(data, vendor.PACKAGES["mathjax3"].integrity)
    monkeypatch.setattr(vendor, "VENDOR_DIR", tmp_path)

    class Offline:
        def __call__(self, url, timeout):
            raise vendor.urllib.error.URLError("no network")

    with pytest.raises(vendor.VendorError, match="could not download mathjax@3.2.2 from the npm registry"):
        vendor.vendored("mathjax3", fetch=Offline())
