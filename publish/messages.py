"""The messages of course_utils that a learner can see, and their gettext catalogs.

A message is an English string literal passed to `course_utils.i18n.tr`. This module finds them
all by reading the package's source with `ast` (as xgettext does), keeps each language's catalog
`course_utils/locales/<lang>/LC_MESSAGES/course_utils.po` in step with them, and lists what is
missing. It also finds learner-visible text that bypasses `tr` (a literal raised, printed, warned
or drawn), so that no English slips into the Korean edition.

    python -m publish.messages update ko    # add new messages, drop those gone from the code
    python -m publish.messages check ko     # untranslated, fuzzy, stale, or not through tr()
"""

from __future__ import annotations

import argparse
import ast
import string
import sys
from collections import defaultdict
from pathlib import Path

import polib

from publish.translations import python_only

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_utils"
#: Tools for instructors and maintainers, not learners: their messages stay English. (i18n.py's
#: own errors come before a language is set, so it writes them in both languages.)
ENGLISH_ONLY = ("grade.py", "student.py", "run_notebooks.py", "__init__.py", "i18n.py")
#: Calls whose string argument a learner reads: print(...), warnings.warn(...), a self-check's
#: exercise.error(...) / .passed(...), and a figure's text.
SHOWN_BY = {"print", "warn", "error", "passed", "set_title", "set_xlabel", "set_ylabel", "suptitle", "text"}


def learner_modules(package: Path = PACKAGE) -> list[Path]:
    return sorted(path for path in package.rglob("*.py") if path.name not in ENGLISH_ONLY)


def learner_sources() -> list[Path]:
    """Where messages are: every module of course_utils (the English-only tools too: the student
    build writes Korean stubs with translate()) but i18n.py itself, and the English notebooks,
    whose code draws figure text through tr()."""
    modules = sorted(path for path in PACKAGE.rglob("*.py") if path.name != "i18n.py")
    return modules + sorted((ROOT / "notebooks").glob("0*.ipynb"))


def _trees(path: Path) -> list[tuple[str, ast.AST]]:
    """(where, syntax tree) of a module, or of each code cell of a notebook (IPython lines blanked)."""
    if path.suffix != ".ipynb":
        return [(_name(path), ast.parse(path.read_text(encoding="utf-8"), str(path)))]
    import nbformat

    trees = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            trees.append((f"{_name(path)}#{cell.id}", ast.parse(python_only(cell.source))))
    return trees


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


#: The functions whose first argument is a message: tr(message, ...) and translate(message, language, ...).
TRANSLATING = ("tr", "translate")


def _is_tr(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id in TRANSLATING)
        or (isinstance(node.func, ast.Attribute) and node.func.attr in TRANSLATING)
    )


def extract(paths: list[Path]) -> tuple[dict[str, list[str]], list[str]]:
    """({English message: ["file:line", ...]}, problems) for every tr(...) call in `paths`.

    A problem is a tr() whose first argument is not one string literal: its text cannot be
    read from the source, so it could never be translated."""
    messages: dict[str, list[str]] = defaultdict(list)
    problems = []
    for path in paths:
        for name, tree in _trees(path):
            for node in ast.walk(tree):
                if _is_tr(node):
                    _add(messages, problems, node, f"{name}:{node.lineno}")
    return dict(messages), problems


def _add(messages: dict[str, list[str]], problems: list[str], node: ast.Call, where: str) -> None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        messages[node.args[0].value].append(where)
    else:
        problems.append(f"{where}: tr() needs one string literal as its first argument")


def _literal_text(node: ast.AST) -> bool:
    """Whether `node` is text written in the source: a string literal, an f-string, or a
    concatenation or %-format of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and any(char.isalpha() for char in node.value)
    if isinstance(node, ast.JoinedStr):
        return any(_literal_text(part) for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) or _literal_text(node.right)
    return False


def bypassing_tr(paths: list[Path]) -> list[str]:
    """Learner-visible text that does not go through tr(): `file:line: what`, one per place.

    Looks at exceptions raised with literal text, and at print / warn / a self-check's error and
    passed / a figure's title and labels called with literal text (positional or `title=`,
    `label=`, `xlabel=`, `ylabel=`)."""
    found = []
    for path in paths:
        for where, tree in _trees(path):
            for node in ast.walk(tree):
                texts: list[ast.AST] = []
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    texts, what = node.exc.args[:1], "an exception's message"
                elif isinstance(node, ast.Call) and not _is_tr(node):
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    if name in SHOWN_BY:
                        texts, what = list(node.args), f"text shown by {name}()"
                    keywords = [k.value for k in node.keywords if k.arg in ("title", "label", "xlabel", "ylabel")]
                    if keywords and name not in ("dict",):
                        texts, what = texts + keywords, f"text shown by {name}()"
                if any(_literal_text(text) for text in texts):
                    found.append(f"{where}:{node.lineno}: {what} is not passed through tr()")
    return found


def fields(text: str) -> list[tuple[str, str]] | str:
    """The sorted (field name, format spec) pairs of a str.format template, or why it is not one."""
    try:
        return sorted(
            (name, f"{conversion or ''}:{spec or ''}")
            for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None
        )
    except ValueError as error:
        return f"not a valid str.format template ({error})"


def catalog_path(lang: str) -> Path:
    return PACKAGE / "locales" / lang / "LC_MESSAGES" / "course_utils.po"


def read_catalog(lang: str) -> polib.POFile:
    path = catalog_path(lang)
    return polib.pofile(str(path), wrapwidth=0) if path.exists() else polib.POFile(wrapwidth=0)


def update(catalog: polib.POFile, messages: dict[str, list[str]]) -> polib.POFile:
    """The catalog with one entry per message (translations kept), in source order, and
    entries for messages no longer in the code removed."""
    known = {entry.msgid: entry for entry in catalog if not entry.obsolete}
    merged = polib.POFile(wrapwidth=0)
    merged.metadata = dict(catalog.metadata) or {"Content-Type": "text/plain; charset=UTF-8"}
    for message, places in messages.items():
        old = known.get(message)
        entry = polib.POEntry(msgid=message, msgstr=old.msgstr if old else "", flags=list(old.flags) if old else [])
        entry.occurrences = [tuple(place.rsplit(":", 1)) for place in places]
        merged.append(entry)
    return merged


def problems(catalog: polib.POFile, messages: dict[str, list[str]]) -> list[str]:
    """What keeps `catalog` from translating every message, one line each (empty: nothing)."""
    found = []
    entries = {entry.msgid: entry for entry in catalog if not entry.obsolete}
    for message, places in messages.items():
        entry = entries.get(message)
        where = places[0]
        if entry is None:
            found.append(f"{where}: not in the catalog: {message[:70]!r}")
        elif not entry.msgstr.strip():
            found.append(f"{where}: not translated yet: {message[:70]!r}")
        elif "fuzzy" in entry.flags:
            found.append(f"{where}: fuzzy (check the translation): {message[:70]!r}")
        elif fields(entry.msgstr) != fields(message):
            found.append(
                f"{where}: the translation's fields {fields(entry.msgstr)} differ from the English {fields(message)}"
            )
        if isinstance(fields(message), str):
            found.append(f"{where}: the English message is {fields(message)}: {message[:70]!r}")
    for message in entries.keys() - messages.keys():
        found.append(f"catalog: stale entry, no longer in the code: {message[:70]!r}")
    return found


def command_update(lang: str) -> int:
    messages, found = extract(learner_sources())
    merged = update(read_catalog(lang), messages)
    merged.metadata.setdefault("Language", lang)
    catalog_path(lang).parent.mkdir(parents=True, exist_ok=True)
    merged.save(str(catalog_path(lang)))
    todo = problems(merged, messages)
    print(f"{catalog_path(lang).relative_to(ROOT)}: {len(merged)} messages, {len(todo)} to translate or check")
    print("\n".join(found), end="\n" if found else "")
    return 1 if found else 0


def command_check(lang: str) -> int:
    messages, found = extract(learner_sources())
    found += problems(read_catalog(lang), messages) + bypassing_tr(learner_modules())
    print("\n".join(found) or f"every learner-visible message of course_utils is translated ({lang}, {len(messages)})")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publish.messages", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["update", "check"])
    parser.add_argument("lang", help="language code, e.g. ko")
    options = parser.parse_args(argv)
    return {"update": command_update, "check": command_check}[options.command](options.lang)


if __name__ == "__main__":
    sys.exit(main())
