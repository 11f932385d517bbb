"""Translated editions of the notebooks, built from the English ones and gettext catalogs.

The English notebooks are the one source. A translation lives in one `.po` catalog per notebook,
`locales/<lang>/notebooks/NN_name.po`, whose entries are keyed by the English cell's nbformat id:

- a markdown cell: `msgctxt "<cell id>"`, `msgid` = the cell's whole English source;
- a code comment: `msgctxt "<cell id> comment"`, `msgid` = the comment's text, `#` included.

Code is never translated: a translated notebook's code cells are the English ones with their
comments replaced, and one line added at the top of the first code cell that selects the language.

    python -m publish.translations update ko   # bring the catalogs up to date with the English cells
    python -m publish.translations check ko    # list missing, untranslated, fuzzy and stale entries
    python -m publish.translations build ko    # write notebooks/ko/*.ipynb (without outputs)

`update` works like gettext's msgmerge: a new cell gets an empty entry, a changed cell keeps its
old translation marked fuzzy (with the previous English as `#| msgid`), a removed cell's entry
becomes obsolete. `check` (and the tests) fail until every entry is translated and not fuzzy.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat
import polib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LOCALES = ROOT / "locales"
COMMENT_SUFFIX = " comment"
#: Comments that tools read, kept in English: nbgrader's solution markers, nbval's directives and
#: the student build's stub line.
MACHINE_READ_COMMENTS = ("### BEGIN SOLUTION", "### END SOLUTION", "# YOUR CODE HERE", "# NBVAL_")
#: The line a translated notebook adds at the top of its first code cell.
LANGUAGE_LINE = 'import course_utils; course_utils.set_language("{lang}")'


@dataclass(frozen=True)
class Source:
    """One translatable piece of an English notebook."""

    context: str  # the cell id, plus COMMENT_SUFFIX for a code comment
    text: str
    kind: str  # "markdown" or "comment"


def english_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("0*.ipynb"))


def catalog_path(notebook: Path, lang: str) -> Path:
    return LOCALES / lang / "notebooks" / f"{notebook.stem}.po"


def translated_path(notebook: Path, lang: str) -> Path:
    return NOTEBOOKS / lang / notebook.name


def python_only(code: str) -> str:
    """A code cell's source with its IPython lines (%magics, !shell) blanked: plain Python, the same
    line numbers."""
    return "".join("\n" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines(keepends=True))


def comments(code: str) -> list[tokenize.TokenInfo]:
    """The comment tokens of a code cell's source (IPython magics and shell lines are skipped)."""
    tokens = tokenize.generate_tokens(io.StringIO(python_only(code)).readline)
    return [
        token
        for token in tokens
        if token.type == tokenize.COMMENT and not token.string.startswith(MACHINE_READ_COMMENTS)
    ]


def sources(notebook) -> list[Source]:
    """Every translatable piece of a notebook, in order; a comment repeated in one cell once."""
    found: list[Source] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            found.append(Source(cell.id, cell.source, "markdown"))
        elif cell.cell_type == "code":
            seen = set()
            for token in comments(cell.source):
                if token.string not in seen:
                    seen.add(token.string)
                    found.append(Source(cell.id + COMMENT_SUFFIX, token.string, "comment"))
    return found


def template(notebook_path: Path) -> polib.POFile:
    """The catalog template (.pot) of one English notebook."""
    notebook = nbformat.read(notebook_path, as_version=4)
    pot = polib.POFile(wrapwidth=0)
    pot.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"}
    for source in sources(notebook):
        pot.append(
            polib.POEntry(
                msgctxt=source.context,
                msgid=source.text,
                msgstr="",
                comment=f"{source.kind} of {notebook_path.name}",
            )
        )
    return pot


def _key(entry: polib.POEntry) -> tuple[str, str]:
    return entry.msgctxt or "", entry.msgid


def update(catalog: polib.POFile, pot: polib.POFile) -> polib.POFile:
    """Merge `pot` into `catalog`, as msgmerge does, and return the merged catalog.

    Unchanged entries keep their translation; an entry whose English changed (same context, for a
    markdown cell) keeps its old translation, marked fuzzy, with the old English as previous_msgid;
    new ones are empty; entries no longer in the English become obsolete."""
    by_key = {_key(entry): entry for entry in catalog if not entry.obsolete}
    markdown_by_context = {
        entry.msgctxt: entry for entry in catalog if not entry.obsolete and not entry.msgctxt.endswith(COMMENT_SUFFIX)
    }
    merged = polib.POFile(wrapwidth=0)
    merged.metadata = dict(catalog.metadata) or dict(pot.metadata)
    used = set()
    for new in pot:
        old = by_key.get(_key(new))
        entry = polib.POEntry(msgctxt=new.msgctxt, msgid=new.msgid, msgstr="", comment=new.comment)
        if old is not None:
            entry.msgstr, entry.flags = old.msgstr, list(old.flags)
            entry.previous_msgid = old.previous_msgid
            used.add(id(old))
        elif new.msgctxt in markdown_by_context and not new.msgctxt.endswith(COMMENT_SUFFIX):
            old = markdown_by_context[new.msgctxt]
            entry.msgstr, entry.flags, entry.previous_msgid = old.msgstr, ["fuzzy"], old.msgid
            used.add(id(old))
        merged.append(entry)
    for old in catalog:
        if id(old) not in used and not old.obsolete and old.msgstr:
            old.obsolete = True
            merged.append(old)
    return merged


def problems(pot: polib.POFile, catalog: polib.POFile, name: str) -> list[str]:
    """What keeps `catalog` from translating every piece of `pot`, one line per cell."""
    found = []
    live = {_key(entry): entry for entry in catalog if not entry.obsolete}
    contexts = {entry.msgctxt for entry in catalog if not entry.obsolete}
    for entry in pot:
        cell = entry.msgctxt.removesuffix(COMMENT_SUFFIX)
        what = "a code comment" if entry.msgctxt.endswith(COMMENT_SUFFIX) else "markdown"
        translated = live.get(_key(entry))
        if translated is None:
            reason = "its English changed" if entry.msgctxt in contexts and what == "markdown" else "not in the catalog"
            found.append(f"{name}: cell {cell} ({what}): {reason}: {entry.msgid[:60]!r}")
        elif "fuzzy" in translated.flags:
            found.append(f"{name}: cell {cell} ({what}): fuzzy (the English changed; check the translation)")
        elif not translated.msgstr.strip():
            found.append(f"{name}: cell {cell} ({what}): not translated yet")
        elif what == "markdown":
            found += [
                f"{name}: cell {cell} (markdown): {issue}"
                for issue in structure_problems(entry.msgid, translated.msgstr)
            ]
        elif not translated.msgstr.startswith("#"):
            found.append(f"{name}: cell {cell} (a code comment): the translation must start with '#'")
    pot_keys = {_key(entry) for entry in pot}
    pot_contexts = {entry.msgctxt for entry in pot if not entry.msgctxt.endswith(COMMENT_SUFFIX)}
    for key, entry in live.items():
        if key not in pot_keys and entry.msgstr and entry.msgctxt not in pot_contexts:  # changed: named above
            found.append(
                f"{name}: cell {entry.msgctxt.removesuffix(COMMENT_SUFFIX)}: stale entry for English no longer there"
            )
    return found


CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
MATHS = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b")
HEADING = re.compile(r"^(#{1,6}) ", re.M)


def structure(markdown: str) -> dict[str, list[str]]:
    """What a translation of a markdown cell must keep exactly: code spans, maths, link targets,
    HTML tags and heading levels (each as a sorted list, so that word order may change)."""
    without_code = CODE_SPAN.sub(" ", markdown)
    return {
        "code spans": sorted(match.group(0) for match in CODE_SPAN.finditer(markdown)),
        "maths": sorted(MATHS.findall(without_code)),
        "link targets": sorted(LINK_TARGET.findall(without_code)),
        "HTML tags": sorted(HTML_TAG.findall(without_code)),
        "headings": [match.group(1) for match in HEADING.finditer(without_code)],
    }


def structure_problems(english: str, translated: str) -> list[str]:
    """How `translated` differs from `english` in what must not change (empty: nothing)."""
    found = []
    for what, expected in structure(english).items():
        got = structure(translated)[what]
        if got != expected:
            missing = [item for item in expected if item not in got][:3]
            extra = [item for item in got if item not in expected][:3]
            found.append(f"{what} differ: missing {missing}, extra {extra}")
    return found


def translate_comments(code: str, translations: dict[str, str]) -> str:
    """`code` with each comment replaced by its translation (comments without one are kept)."""
    lines = code.splitlines(keepends=True)
    for token in reversed(comments(code)):
        (row, col), (_, end) = token.start, token.end
        new = translations.get(token.string, token.string)
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[end:]
    return "".join(lines)


def build(notebook_path: Path, catalog: polib.POFile, lang: str):
    """The translated notebook (outputs cleared): English code, translated text and comments."""
    notebook = nbformat.read(notebook_path, as_version=4)
    entries = {
        _key(entry): entry.msgstr
        for entry in catalog
        if not entry.obsolete and entry.msgstr and "fuzzy" not in entry.flags
    }
    first_code = True
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            cell.source = entries.get((cell.id, cell.source), cell.source)
        elif cell.cell_type == "code":
            context = cell.id + COMMENT_SUFFIX
            translations = {text: msgstr for (ctx, text), msgstr in entries.items() if ctx == context}
            cell.source = translate_comments(cell.source, translations)
            if first_code:
                cell.source = LANGUAGE_LINE.format(lang=lang) + "\n" + cell.source
                first_code = False
            cell.outputs, cell.execution_count = [], None
    notebook.metadata["language"] = lang
    return notebook


def command_update(lang: str) -> int:
    for notebook in english_notebooks():
        path = catalog_path(notebook, lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = polib.pofile(str(path), wrapwidth=0) if path.exists() else polib.POFile(wrapwidth=0)
        merged = update(catalog, template(notebook))
        merged.metadata.setdefault("Language", lang)
        merged.save(str(path))
        todo = len(problems(template(notebook), merged, notebook.stem))
        print(f"{path.relative_to(ROOT)}: {len(merged)} entries, {todo} to translate or check")
    return 0


def command_check(lang: str) -> int:
    found = []
    for notebook in english_notebooks():
        path = catalog_path(notebook, lang)
        catalog = polib.pofile(str(path), wrapwidth=0) if path.exists() else polib.POFile()
        found += problems(template(notebook), catalog, notebook.stem)
    print("\n".join(found) or f"every cell of every notebook is translated ({lang})")
    return 1 if found else 0


def command_build(lang: str) -> int:
    for notebook in english_notebooks():
        catalog = polib.pofile(str(catalog_path(notebook, lang)), wrapwidth=0)
        out = translated_path(notebook, lang)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build(notebook, catalog, lang), str(out))
        print(f"wrote {out.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publish.translations", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["update", "check", "build"])
    parser.add_argument("lang", help="language code, e.g. ko")
    options = parser.parse_args(argv)
    return {"update": command_update, "check": command_check, "build": command_build}[options.command](options.lang)


if __name__ == "__main__":
    sys.exit(main())
