"""The course as a static website: `make site` (`python -m publish.site`) writes `build/site/`.

Sphinx with myst-nb reads docs/*.md and the committed notebooks with their stored outputs
(executing nothing; the configuration is docs/conf.py) and renders them with sphinx-book-theme.
The site then needs no network: MathJax is copied into it from the pinned npm package
(publish/vendor.py), the theme ships its own fonts and scripts, and the build fails if any page
would still fetch something from another machine (publish/offline.py).

    python -m publish.site                 # build/site/index.html
    python -m http.server -d build/site    # then open http://127.0.0.1:8000 (search needs a server)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from docutils import nodes

from publish import offline, vendor

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "site"
# what of MathJax 3 the pages use: the TeX-to-HTML component, its fonts and the extensions it loads
MATHJAX_PARTS = ("es5/tex-chtml.js", "es5/input/tex/extensions", "es5/output/chtml/fonts", "es5/ui", "es5/a11y")


class SiteError(RuntimeError):
    """The site could not be built, or it would not work offline."""


#: The Korean edition's landing page (docs/ko.md) and its notebooks (notebooks/ko/).
KOREAN_LANDING, KOREAN_NOTEBOOKS = "docs/ko", "notebooks/ko/"


def language_switch(docname: str) -> tuple[str, str]:
    """(link text, relative URL) of the same page in the other language, for any page of the site:
    a notebook's counterpart, or for a docs page (English only) the Korean landing page."""
    if docname.startswith(KOREAN_NOTEBOOKS):
        return "English", "../" + docname.removeprefix(KOREAN_NOTEBOOKS) + ".html"
    if docname.startswith("notebooks/"):
        return "한국어", "ko/" + docname.removeprefix("notebooks/") + ".html"
    if docname == KOREAN_LANDING:
        return "English", "index.html"
    return "한국어", "ko.html"  # a page of docs/, beside docs/ko.md


#: The run-it-yourself note's words around `make lab`, the notebook's path and the download link.
RUN_LOCALLY = {
    "en": (
        "Run it yourself: ",
        "in a clone of the course, ",
        " installs everything and opens JupyterLab; open ",
        " there and run all cells. This page shows the outputs stored in the notebook (",
        "download the notebook",
    ),
    "ko": (
        "직접 실행하기: ",
        "강좌 저장소를 클론한 폴더에서 ",
        "을 실행하면 필요한 것을 모두 설치하고 JupyterLab을 엽니다. 거기서 ",
        "을 열고 모든 셀을 실행하세요. 이 페이지는 노트북에 저장된 출력을 보여 줍니다(",
        "노트북 내려받기",
    ),
}


def add_run_locally_note(app, doctree) -> None:
    """Sphinx `doctree-read` hook: on every page, a link to the page in the other language; under
    each notebook page's title, also how to run it locally and a link to the notebook file itself
    (copied into the site as `_sources/notebooks/[ko/]NN_name.ipynb`)."""
    docname = app.env.docname
    text, url = language_switch(docname)
    switch = nodes.paragraph(classes=["edition-switch"])
    switch += nodes.reference(text=text, refuri=url, classes=["edition-switch-link"])
    parts = [switch]
    if docname.startswith("notebooks/"):
        path = docname.split("/", 1)[1] + ".ipynb"
        korean = docname.startswith(KOREAN_NOTEBOOKS)
        words = RUN_LOCALLY["ko" if korean else "en"]
        paragraph = nodes.paragraph()
        paragraph += nodes.strong(text=words[0])
        paragraph += nodes.Text(words[1])
        paragraph += nodes.literal(text="make lab")
        paragraph += nodes.Text(words[2])
        paragraph += nodes.literal(text=f"notebooks/{path}")
        paragraph += nodes.Text(words[3])
        paragraph += nodes.reference(text=words[4], refuri="../" * (2 if korean else 1) + f"_sources/notebooks/{path}")
        paragraph += nodes.Text(").")
        parts.append(nodes.note("", paragraph, classes=["run-locally"]))
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        for part in reversed(parts):
            doctree.insert(0, part)
    else:
        title_index = next((i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1)
        for part in reversed(parts):
            section.insert(title_index + 1, part)


def copy_mathjax(app, exception) -> None:
    """Sphinx `build-finished` hook: serve MathJax 3 from `_static/mathjax/` (conf.py's mathjax_path)."""
    if exception is not None or app.builder.format != "html":
        return
    destination = Path(app.outdir) / "_static" / "mathjax"
    vendor.copy_into("mathjax3", destination, MATHJAX_PARTS)
    # the parts were copied with their es5/ prefix; MathJax finds its components beside its script
    for part in (destination / "es5").iterdir():
        part.rename(destination / part.name)
    (destination / "es5").rmdir()


def copy_korean_font(app, exception) -> None:
    """Sphinx `build-finished` hook: NanumGothic (regular, bold) into `_static/fonts/`, for the Korean
    pages (docs/_static/korean-font.css), from the package that also draws the Korean figures."""
    if exception is not None or app.builder.format != "html":
        return
    from course_utils.i18n import korean_font_files

    destination = Path(app.outdir) / "_static" / "fonts"
    destination.mkdir(parents=True, exist_ok=True)
    for path in korean_font_files():
        if path.stem in ("NanumGothic", "NanumGothicBold"):
            write_web_font(path, destination / path.name)


def write_web_font(source: Path, destination: Path) -> None:
    """Copy a TrueType font without its TSI* tables (the hinting sources of Microsoft's VTT). The
    NanumGothic files carry an empty TSI3, and browsers' font sanitizer (OTS) rejects the whole font
    for it ("TSI3: zero-length table"), which would leave the Korean pages without their font."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(source))
    for table in [tag for tag in font.keys() if tag.startswith("TSI")]:
        del font[table]
    font.save(str(destination))


def write_redirect(out: Path) -> None:
    """`index.html` at the top of the site: the landing page is docs/index.html."""
    (out / "index.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="0; url=docs/index.html">'
        "<title>Semantic segmentation with FCNs</title></head>"
        '<body><a href="docs/index.html">The course</a></body></html>\n',
        encoding="utf-8",
    )


def build(out: Path = OUT, quiet: bool = True) -> Path:
    """Build the site into `out` and check it is self-contained; returns `out`. Raises SiteError."""
    from sphinx.cmd.build import build_main

    vendor.vendored("mathjax3")  # fetched before Sphinx starts, so a failure reads clearly
    # -E: read every page afresh, so that a change to the hooks here reaches pages whose source did not change
    args = ["-b", "html", "-E", "-c", str(ROOT / "docs"), "-d", str(out.parent / "site-doctrees"), "-W", "--keep-going"]
    args += ["-q"] if quiet else []
    status = build_main([*args, str(ROOT), str(out)])
    if status != 0:
        raise SiteError(f"sphinx-build failed (exit status {status}); its warnings are above")
    write_redirect(out)
    problems = offline.scan_folder(out)
    if problems:
        listing = "; ".join(f"{page}: {', '.join(urls)}" for page, urls in list(problems.items())[:5])
        raise SiteError(f"{len(problems)} built files would fetch from another machine: {listing}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: build/site)")
    parser.add_argument("--clean", action="store_true", help="delete the output folder first")
    options = parser.parse_args(argv)
    if options.clean:
        shutil.rmtree(options.out, ignore_errors=True)
    start = time.perf_counter()
    try:
        out = build(options.out)
    except (SiteError, vendor.VendorError) as error:
        print(f"make site: {error}", file=sys.stderr)
        return 1
    print(f"Site built in {time.perf_counter() - start:.0f} s: {out / 'index.html'}")
    print(f"Browse it with: python -m http.server -d {out} 8000  (then http://127.0.0.1:8000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
