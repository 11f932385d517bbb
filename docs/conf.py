"""Sphinx configuration of the course website (`make site`, which runs `python -m publish.site`).

The source folder is the repository root, so that the pages in docs/ and the notebooks in
notebooks/ keep the paths they have in a clone (a page's `../notebooks/03_train_classifier.ipynb`
link works on GitHub and on the site alike). Only those two are read (`include_patterns`).
The notebooks are shown with their stored outputs; nothing is executed. MathJax is served from
the site itself (`publish/site.py` copies it into `_static/mathjax/`): a built site needs no network.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publish import site  # noqa: E402  (the helpers this configuration uses)

project = "Semantic segmentation with FCNs"
author = "the course's authors"
copyright = "2026, the course's authors (MIT licence)"

extensions = ["myst_nb"]

root_doc = "docs/index"
include_patterns = ["docs/*.md", "notebooks/0*.ipynb", "notebooks/ko/0*.ipynb"]
exclude_patterns = [
    ".venv",
    ".git",
    "build",
    "data",
    "tests",
    "course_utils",
    "benchmarks",
    "publish",
    "**/.ipynb_checkpoints",
]

# The notebooks' stored outputs, as committed; never execute them while building.
nb_execution_mode = "off"
# Notebooks with ipywidgets would load the widget renderer from a CDN: leave it out (the site
# shows what the widget printed; a widget needs a running kernel anyway).
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# Served locally: publish/site.py copies MathJax 3 here after the build (see publish/vendor.py).
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "Semantic segmentation with FCNs"
html_copy_source = True
html_sourcelink_suffix = ""  # _sources/notebooks/NN_name.ipynb: the notebook itself, downloadable
html_show_sphinx = False
html_last_updated_fmt = None
html_static_path = ["_static"]
html_css_files = ["korean-font.css"]  # NanumGothic for Hangul, copied into _static/fonts/ by publish.site
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": True,
}


def setup(app):
    app.connect("doctree-read", site.add_run_locally_note)
    app.connect("build-finished", site.copy_mathjax)
    app.connect("build-finished", site.copy_korean_font)
