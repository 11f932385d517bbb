"""Is a built page self-contained? Find every resource it would fetch from another machine.

A page that loads a script, a style sheet, a font or an image from a CDN breaks offline and leaks
its readers' visits. Plain hyperlinks (`<a href="https://...">`) are fine: nothing is fetched until
a reader follows one.

    >>> external_resources('<script src="https://cdn.example/x.js"></script><a href="https://ok">')
    ['https://cdn.example/x.js']
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

# attributes through which a browser fetches something by itself
FETCHING_ATTRIBUTES = {"src", "srcset", "data", "poster", "action", "formaction"}
# <link rel=...> values that fetch (a stylesheet, an icon, a preloaded font or script)
FETCHING_LINKS = {
    "stylesheet",
    "icon",
    "shortcut",
    "preload",
    "modulepreload",
    "prefetch",
    "manifest",
    "apple-touch-icon",
}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


def is_external(url: str) -> bool:
    """True for an absolute URL to another machine (http:, https:, or protocol-relative //)."""
    url = url.strip().lower()
    return url.startswith(("http://", "https://", "//"))


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        for name in FETCHING_ATTRIBUTES & attrs.keys():
            urls = (
                [part.split()[0] for part in attrs[name].split(",") if part.strip()]
                if name == "srcset"
                else [attrs[name]]
            )
            self.found += [url for url in urls if is_external(url)]
        rel = set(attrs.get("rel", "").lower().split())
        if tag == "link" and rel & FETCHING_LINKS and is_external(attrs.get("href", "")):
            self.found.append(attrs["href"])
        if "style" in attrs:
            self.found += css_external_urls(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.found += css_external_urls(data)


def css_external_urls(css: str) -> list[str]:
    """External URLs that a piece of CSS fetches (`url(...)`, `@import`)."""
    return [a or b for a, b in CSS_URL.findall(css) if is_external(a or b)]


def external_resources(html: str) -> list[str]:
    """The external URLs an HTML page would fetch as it loads (not the links a reader may follow)."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.found


def scan_folder(folder: Path) -> dict[str, list[str]]:
    """{relative path: external URLs} for every .html and .css file under `folder` that fetches any."""
    problems = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix not in {".html", ".css"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = external_resources(text) if path.suffix == ".html" else css_external_urls(text)
        if found:
            problems[str(path.relative_to(folder))] = sorted(set(found))
    return problems
