"""The lecture slides (`make slides`, publish/slides.py): every notebook's slide metadata follows the
presenter's rules, and a built deck loads nothing from another machine.

The browser check of a built deck is tests/browser/test_slides.py (make test-browser).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import nbformat
import pytest

from publish import slides
from publish.vendor import PACKAGES, VendorError, vendored

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
CHECK_CALL = re.compile(r"(?<![\w.])check_\w+\(")  # check_mask_to_box(mask_to_box), not an import


def load(path: Path):
    return nbformat.read(path, as_version=4)


def is_exercise_or_check(cell) -> bool:
    """An exercise cell or its self-check: nbgrader's solution or grade flag, `YOUR CODE HERE`, or a
    call of one of course_utils.checks' check_ functions."""
    grader = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(
        grader.get("solution")
        or grader.get("grade")
        or "YOUR CODE HERE" in cell.source
        or CHECK_CALL.search(cell.source)
    )


def test_there_are_six_notebooks():
    assert [path.name[:2] for path in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_a_valid_slide_type(path):
    for index, cell in enumerate(load(path).cells):
        kind = cell.metadata.get("slideshow", {}).get("slide_type")
        assert kind in slides.SLIDE_TYPES, f"cell {index}: slide_type {kind!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_title_and_every_section_start_a_slide(path):
    cells = load(path).cells
    assert slides.slide_type(cells[0]) == "slide" and cells[0].source.startswith("# ")
    sections = [
        index for index, cell in enumerate(cells) if cell.cell_type == "markdown" and cell.source.startswith("## ")
    ]
    assert sections, "a notebook without ## sections?"
    for index in sections:
        assert slides.slide_type(cells[index]) == "slide", f"cell {index} ({cells[index].source.splitlines()[0]})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_and_self_checks_are_shown(path):
    cells = load(path).cells
    exercises = [index for index, cell in enumerate(cells) if is_exercise_or_check(cell)]
    assert len(exercises) >= 2, "every notebook has at least one exercise and its self-check"
    hidden = [index for index in exercises if slides.slide_type(cells[index]) in ("skip", "notes")]
    assert not hidden, f"exercise or self-check cells left out of the slides: {hidden}"


def test_the_exercise_rule_sees_solutions_checks_and_student_cells():
    solution = nbformat.v4.new_code_cell("def f():\n    ...", metadata={"nbgrader": {"solution": True}})
    check = nbformat.v4.new_code_cell("check_mask_to_box(mask_to_box)")
    student = nbformat.v4.new_code_cell("def f():\n    # YOUR CODE HERE\n    raise NotImplementedError")
    plumbing = nbformat.v4.new_code_cell("from course_utils.checks import check_mask_to_box\nimport torch")
    text = nbformat.v4.new_markdown_cell("Run `check_mask_to_box(mask_to_box)` below.")
    assert [is_exercise_or_check(cell) for cell in (solution, check, student, plumbing, text)] == [
        True,
        True,
        True,
        False,
        False,
    ]


# -- the offline check ---------------------------------------------------------------------------


def page(tmp_path: Path, body: str, files: tuple[str, ...] = ()) -> Path:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    path = tmp_path / "deck.slides.html"
    path.write_text(f"<!DOCTYPE html><html><head>{body}</head><body></body></html>")
    return path


def test_the_offline_check_fails_on_a_cdn_script(tmp_path):
    deck = page(tmp_path, '<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js"></script>')
    problems = slides.check_offline(deck)
    assert len(problems) == 1 and "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js" in problems[0]


@pytest.mark.parametrize(
    "html",
    [
        '<link rel="stylesheet" href="//unpkg.com/reveal.js@4.0.2/dist/reveal.css">',
        "<style>@import url(https://fonts.googleapis.com/css?family=Lato);</style>",
        "<div style=\"background: url('http://example.org/a.png')\"></div>",
        "<script type=\"module\">import mermaid from 'https://cdn.jsdelivr.net/npm/mermaid.esm.min.mjs';</script>",
        "<script>var s = document.createElement('script'); s.src = 'https://unpkg.com/@jupyter-widgets/x.js';</script>",
        '<img srcset="a.png 1x, https://example.org/b.png 2x">',
        '<script src="_vendor/missing.js"></script>',
    ],
    ids=["protocol-relative link", "css @import", "style url", "module import", "script string", "srcset", "missing"],
)
def test_the_offline_check_finds_every_way_out(tmp_path, html):
    assert slides.check_offline(page(tmp_path, html, files=("a.png",))), html


def test_the_offline_check_allows_links_data_and_local_files(tmp_path):
    deck = page(
        tmp_path,
        '<a href="https://arxiv.org/abs/1411.4038">the FCN paper</a><a href="#top">top</a>'
        '<img src="data:image/png;base64,iVBORw0KGgo="><script src="_vendor/x/x.js?config=A"></script>'
        '<link rel="stylesheet" href="_vendor/x/x.css">'
        "<script>// see https://github.com/hakimel/reveal.js#configuration\n"
        "document.createElementNS('http://www.w3.org/2000/svg', 'svg');</script>"
        '<script type="application/vnd.jupyter.widget-state+json">{"url": "https://example.org"}</script>',
        files=("_vendor/x/x.js", "_vendor/x/font.woff"),
    )
    (tmp_path / "_vendor/x/x.css").write_text("@font-face { src: url(font.woff); }")
    assert slides.check_offline(deck) == []
    (tmp_path / "_vendor/x/x.css").write_text("@import url('https://fonts.googleapis.com/css?family=Lato');")
    assert "fonts.googleapis.com" in " ".join(slides.check_offline(deck))  # a linked stylesheet is read too


# -- a real build --------------------------------------------------------------------------------


def vendored_or_skip():
    """The pinned npm packages, downloaded once into build/vendor/; skip if that is impossible here."""
    try:
        for key in slides.ASSETS:
            vendored(key)
    except VendorError as error:
        missing = [key for key in slides.ASSETS if not (PACKAGES[key].folder / "package.json").is_file()]
        pytest.skip(
            f"the slides' JavaScript is not vendored yet ({', '.join(missing)}) and cannot be downloaded: {error}"
        )


def test_one_deck_builds_offline(tmp_path):
    vendored_or_skip()
    notebook = ROOT / "notebooks" / "05_upsampling_and_skip_connections.ipynb"
    out = tmp_path / "slides"
    assert slides.main(["--out", str(out), str(notebook)]) == 0
    deck = out / "05_upsampling_and_skip_connections.slides.html"
    html = deck.read_text()
    assert slides.check_offline(deck) == [] and slides.check_offline(out / "index.html") == []
    assert 'href="05_upsampling_and_skip_connections.slides.html"' in (out / "index.html").read_text()
    assert "cdnjs" not in html and "unpkg" not in html and "mermaid" not in html
    assert "_vendor/mathjax2/MathJax.js?config=TeX-AMS_CHTML-full,Safe" in html
    assert (out / "_vendor/mathjax2/fonts/HTML-CSS/TeX/woff/MathJax_Main-Regular.woff").is_file()
    assert "<title>5 · Upsampling done well" in html

    counts = slides.slide_counts(load(notebook))
    assert html.count('<aside class="notes">') == counts["notes"] == 1
    text = unescape(re.sub(r"<[^>]+>", "", html))  # the code as shown, without its highlighting
    assert "from course_utils.recipes import (SCENE_TEST_DATA_SEED" not in text  # the skipped imports
    assert "def fuse_skip(coarse, skip, upsample):" in text  # an exercise, shown
    assert "widget-state+json" not in html  # no renderer, so no saved widget state either


def test_the_build_fails_when_a_page_would_use_a_cdn(tmp_path, monkeypatch):
    vendored_or_skip()
    notebook = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Tiny\n\n$x^2$")]), notebook)
    cdn = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"
    monkeypatch.setitem(slides.EXPORTER_SETTINGS, "mathjax_url", cdn)
    with pytest.raises(slides.SlidesError, match=re.escape(cdn)):
        slides.build([notebook], tmp_path / "slides")
    assert slides.main(["--out", str(tmp_path / "again"), str(notebook)]) == 1


def test_a_wrong_slide_type_is_named(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# T", metadata={"slideshow": {"slide_type": "x"}})]
    )
    with pytest.raises(slides.SlidesError, match="tiny: cell 0 has slide_type 'x'"):
        slides.for_slides(nb, "tiny")
