"""Lecture slides from the course notebooks: `make slides`, or

    python -m publish.slides [--out DIR] [notebooks...]

Each notebook becomes `NN_name.slides.html` (nbconvert's reveal.js slides, from the committed
notebook with its stored outputs: nothing is executed), and `index.html` lists them. Every cell's
`metadata.slideshow.slide_type` says where it goes: "slide" starts a new slide, "subslide" a new
one below it (the down arrow), "fragment" appears on the next key press, "-" joins the slide
above, "skip" is left out and "notes" goes to the speaker view (press S).

nbconvert's template loads reveal.js, require.js, jQuery and MathJax 2 from CDNs. Here they come
from the pinned npm packages of `vendor.py`, copied under `_vendor/` beside the slides, so the
folder opens with no network at all. The template's Mermaid import and ipywidgets renderer, which
the course's slides do not need (a widget needs a live kernel anyway), are left out. After the
build every written page is checked: a reference that would leave the machine fails the build.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from collections import Counter
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import nbformat

from publish.vendor import VendorError, copy_into

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
OUT_DIR = ROOT / "build" / "slides"
VENDOR = "_vendor"  # beside the slides: build/slides/_vendor/<key>/...

SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")

#: What the slides load from each vendored package (paths inside the npm package). MathJax 2 loads
#: the rest itself, by name: the combined TeX/CommonHTML configuration, its jax, the TeX extensions,
#: the menu and zoom, and the TeX fonts as woff (enough for any browser from the last ten years).
ASSETS = {
    "reveal.js": (
        "dist/reveal.js",
        "dist/reveal.css",
        "dist/theme/white.css",
        "dist/theme/fonts/source-sans-pro",
        "plugin/notes/notes.js",
    ),
    "requirejs": ("require.js",),
    "jquery": ("dist/jquery.min.js",),
    "mathjax2": (
        "MathJax.js",
        "config/TeX-AMS_CHTML-full.js",
        "config/Safe.js",
        "extensions/Safe.js",
        "extensions/MathMenu.js",
        "extensions/MathZoom.js",
        "extensions/AssistiveMML.js",
        "extensions/TeX",
        "jax/input/TeX",
        "jax/output/CommonHTML",
        "jax/element/mml",
        "fonts/HTML-CSS/TeX/woff",
    ),
}

#: The SlidesExporter's settings: every URL it would fetch points into _vendor/.
EXPORTER_SETTINGS = {
    "reveal_url_prefix": f"{VENDOR}/reveal.js",
    "reveal_theme": "white",
    "reveal_scroll": True,  # a slide taller than the screen scrolls instead of being cut off
    "reveal_number": "c/t",
    # 16:9, and wider than nbconvert's 960x700: the figures are wide and code lines reach 100 columns
    "reveal_width": "1280",
    "reveal_height": "720",
    "require_js_url": f"{VENDOR}/requirejs/require.js",
    "jquery_url": f"{VENDOR}/jquery/dist/jquery.min.js",
    "mathjax_url": f"{VENDOR}/mathjax2/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    # not used by nbconvert 7's reveal template; pointed here in case a later one does (then the
    # check below fails until font-awesome is added to ASSETS)
    "font_awesome_url": f"{VENDOR}/font-awesome/css/font-awesome.min.css",
    "exclude_input_prompt": True,  # the "In [3]:" column costs a sixth of the slide's width
    "exclude_output_prompt": True,
}

#: nbconvert's reveal template, less what would need a CDN: Mermaid (no notebook draws a
#: diagram) and the ipywidgets renderer (widgets need a kernel; notebook 4 shows a static figure
#: of its explorer right below it).
TEMPLATE_NAME = "fcn_slides.html.j2"
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


class SlidesError(RuntimeError):
    """The slides could not be built, or a written page would load something off the machine."""


# ---------------------------------------------------------------------------------------------
# notebooks


def slide_type(cell) -> str:
    """The cell's slideshow type ("-" when it has none, as in Jupyter)."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")


def slide_counts(nb) -> Counter:
    """How many cells of each slide type the notebook has."""
    return Counter(slide_type(cell) for cell in nb.cells)


def deck_title(nb, fallback: str) -> str:
    """The notebook's first `# ` heading (its title), or `fallback`."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def for_slides(nb, name: str):
    """A copy of the notebook ready for the exporter: its title (the browser tab's) set from its
    heading, the saved widget state dropped (no renderer loads it), every cell's type checked."""
    nb = nbformat.from_dict(nb)  # a deep copy: the caller's notebook is not changed
    nb.metadata["title"] = deck_title(nb, name)
    nb.metadata.pop("widgets", None)
    for index, cell in enumerate(nb.cells):
        if slide_type(cell) not in SLIDE_TYPES:
            raise SlidesError(
                f"{name}: cell {index} has slide_type {slide_type(cell)!r}; expected one of {SLIDE_TYPES}"
            )
    return nb


# ---------------------------------------------------------------------------------------------
# building


def exporter():
    """nbconvert's SlidesExporter with every URL pointing into _vendor/ (see EXPORTER_SETTINGS)."""
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter

    return SlidesExporter(
        extra_loaders=[DictLoader({TEMPLATE_NAME: TEMPLATE})], template_file=TEMPLATE_NAME, **EXPORTER_SETTINGS
    )


def copy_vendor(out: Path) -> None:
    """Copy what the slides load (ASSETS) from the vendored npm packages into out/_vendor/."""
    for key, subpaths in ASSETS.items():
        copy_into(key, out / VENDOR / key, subpaths)


class Deck(NamedTuple):
    """One written deck: its page, its title and how many cells of each slide type it has."""

    page: Path
    title: str
    counts: Counter


def build_deck(path: Path, out: Path, slides_exporter=None) -> Deck:
    """Write one notebook's slides to out/<notebook>.slides.html."""
    nb = for_slides(nbformat.read(path, as_version=4), path.stem)
    body, _ = (slides_exporter or exporter()).from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
    page = out / f"{path.stem}.slides.html"
    page.write_text(body, encoding="utf-8")
    return Deck(page, nb.metadata.title, slide_counts(nb))


def write_index(decks: list[Deck], out: Path) -> Path:
    """Write out/index.html, a list of the decks (title, file, how many slides)."""
    items = "\n".join(
        f'  <li><a href="{html.escape(deck.page.name)}">{html.escape(deck.title)}</a> '
        f"<small>({deck.counts['slide']} slides, {deck.counts['subslide']} more below them)</small></li>"
        for deck in decks
    )
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FCN course: lecture slides</title>
<style>
body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
li {{ margin: 0.4em 0; }}
kbd {{ border: 1px solid #aaa; border-radius: 3px; padding: 0 0.3em; }}
</style>
</head>
<body>
<h1>FCN course: lecture slides</h1>
<p>One deck per notebook, with the notebook's stored outputs. <kbd>Space</kbd> goes to the next
slide, including the ones below a slide (a section's details, an exercise's solution);
<kbd>&rarr;</kbd> and <kbd>&larr;</kbd> jump from section to section, <kbd>&darr;</kbd> and
<kbd>&uarr;</kbd> move within one; <kbd>Esc</kbd> shows them all; <kbd>S</kbd> opens the speaker
view with the notes. Everything loads from this folder: no network needed.</p>
<ul>
{items}
</ul>
</body>
</html>
"""
    target = out / "index.html"
    target.write_text(page, encoding="utf-8")
    return target


def build(notebooks: Iterable[Path] | None = None, out: Path = OUT_DIR) -> list[Path]:
    """Build the slides of `notebooks` (default: notebooks/0*.ipynb) into `out`, with index.html and
    _vendor/, check them (check_offline) and return the pages written.

    Raises SlidesError when a page would load anything from another machine, or misses a file."""
    notebooks = sorted(NOTEBOOK_DIR.glob("0*.ipynb")) if notebooks is None else [Path(p) for p in notebooks]
    if not notebooks:
        raise SlidesError("no notebooks to build slides from")
    missing = [str(path) for path in notebooks if not path.is_file()]
    if missing:
        raise SlidesError(f"no such notebook: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    copy_vendor(out)
    slides_exporter = exporter()
    decks = [build_deck(path, out, slides_exporter) for path in notebooks]
    pages = [deck.page for deck in decks] + [write_index(decks, out)]
    problems = [problem for page in pages for problem in check_offline(page, out)]
    if problems:
        raise SlidesError(
            "these references would leave this machine, or name a file that is not there, so the slides "
            "would not work offline:\n  " + "\n  ".join(problems)
        )
    return pages


# ---------------------------------------------------------------------------------------------
# checking


#: Attributes that make a browser fetch something (an `<a href>` is a link the reader may follow,
#: so it is allowed to point anywhere).
FETCHING_ATTRIBUTES = {"src", "href", "srcset", "data", "poster", "background", "xlink:href", "action", "formaction"}
CSS_URL = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)|url\(\s*['"]?([^'")\s]+)""", re.IGNORECASE)
# a quoted absolute URL in a script: `import x from 'https://...'`, `el.src = "//cdn/..."`
SCRIPT_URL = re.compile(r"""(['"`])((?:https?:)?//[^'"`\s]+)\1""", re.IGNORECASE)
JSON_SCRIPT = re.compile(r"json", re.IGNORECASE)  # data, not code: <script type="application/...+json">
NAMESPACES = ("http://www.w3.org/",)  # XML namespace names in scripts (createElementNS): never fetched


def is_external(url: str) -> bool:
    """Whether loading `url` would leave the machine (http:, https: or protocol-relative //)."""
    url = url.strip().lower()
    return url.startswith(("http://", "https://", "//"))


class _References(HTMLParser):
    """Collects every URL a page would load: tag attributes, CSS in <style> and style="", and
    quoted absolute URLs in scripts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []  # (where, url)
        self._in: str | None = None  # "style" or "script" while inside one

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if value is None:
                continue
            if name in FETCHING_ATTRIBUTES and not (tag == "a" and name == "href"):
                for url in value.split(",") if name == "srcset" else [value]:
                    if url.strip():
                        self.urls.append((f"<{tag} {name}>", url.strip().split(" ")[0]))
            elif name == "style":
                self.urls += [(f"<{tag} style>", url) for url in css_urls(value)]
        if tag == "style":
            self._in = "style"
        elif tag == "script":
            self._in = None if JSON_SCRIPT.search(attrs.get("type") or "") else "script"

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.urls += [("<style>", url) for url in css_urls(data)]
        elif self._in == "script":
            urls = (match.group(2) for match in SCRIPT_URL.finditer(data))
            self.urls += [("<script>", url) for url in urls if not url.startswith(NAMESPACES)]


def css_urls(css: str) -> list[str]:
    """The URLs a piece of CSS loads (@import and url(...))."""
    return [first or second for first, second in CSS_URL.findall(css)]


def page_references(page_html: str) -> list[tuple[str, str]]:
    """(where, url) for everything an HTML page would load."""
    parser = _References()
    parser.feed(page_html)
    parser.close()
    return parser.urls


def local_file(url: str, base: Path) -> Path | None:
    """The file a relative URL names, relative to folder `base` (None for data:, blob:, #...)."""
    parts = urlsplit(url)
    if parts.scheme or not parts.path:
        return None
    return (base / unquote(parts.path)).resolve()


def check_offline(page: Path, root: Path | None = None) -> list[str]:
    """What in `page` would need the network, or is missing on disk: one line per problem.

    Checks the page's own references and those of the stylesheets it links (their @import and url(),
    and so on down). Plain links (<a href>) may point anywhere. Local files must exist inside `root`
    (default: the page's folder)."""
    root = (root or page.parent).resolve()
    problems, seen_css = [], set()
    todo = [(page, page_references(page.read_text(encoding="utf-8")))]
    while todo:
        source, references = todo.pop()
        for where, url in references:
            name = source.relative_to(root) if source.is_relative_to(root) else source
            if is_external(url):
                problems.append(f"{name}: {where} {url}")
                continue
            target = local_file(url, source.parent)
            if target is None:
                continue
            if not target.is_relative_to(root) or not target.is_file():
                problems.append(f"{name}: {where} {url} (no such file in {root.name}/)")
            elif target.suffix == ".css" and target not in seen_css:
                seen_css.add(target)
                css = target.read_text(encoding="utf-8", errors="replace")
                todo.append((target, [("css", url) for url in css_urls(css)]))
    return problems


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publish.slides", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to build (default: notebooks/0*.ipynb)")
    parser.add_argument(
        "--out", type=Path, default=OUT_DIR, help=f"output folder (default: {OUT_DIR.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)
    try:
        pages = build(args.notebooks or None, args.out)
    except (SlidesError, VendorError) as error:
        print(f"slides not built: {error}", file=sys.stderr)
        return 1
    for page in pages:
        print(f"{page}  ({page.stat().st_size / 1e6:.1f} MB)")
    print(f"open {args.out / 'index.html'} in a browser (works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
