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


def add_run_locally_note(app, doctree) -> None:
    """Sphinx `doctree-read` hook: under each notebook page's title, say how to run it locally and
    link the notebook file itself (copied into the site as `_sources/notebooks/NN_name.ipynb`)."""
    docname = app.env.docname
    if not docname.startswith("notebooks/"):
        return
    name = docname.split("/", 1)[1] + ".ipynb"
    paragraph = nodes.paragraph()
    paragraph += nodes.strong(text="Run it yourself: ")
    paragraph += nodes.Text("in a clone of the course, ")
    paragraph += nodes.literal(text="make lab")
    paragraph += nodes.Text(" installs everything and opens JupyterLab; open ")
    paragraph += nodes.literal(text=f"notebooks/{name}")
    paragraph += nodes.Text(" there and run all cells. This page shows the outputs stored in the notebook (")
    paragraph += nodes.reference(text="download the notebook", refuri=f"../_sources/notebooks/{name}")
    paragraph += nodes.Text(").")
    note = nodes.note("", paragraph, classes=["run-locally"])
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, note)
    else:
        title_index = next((i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1)
        section.insert(title_index + 1, note)


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
    args = ["-b", "html", "-c", str(ROOT / "docs"), "-d", str(out.parent / "site-doctrees"), "-W", "--keep-going"]
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
