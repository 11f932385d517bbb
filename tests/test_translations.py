"""The Korean edition cannot drift from the English one.

The English notebooks are the one source; notebooks/ko/ is built from them and the catalogs
locales/ko/notebooks/*.po (publish/translations.py), and course_utils' messages are translated in
course_utils/locales/ko/LC_MESSAGES/course_utils.po (publish/messages.py). Each guard below is
shown failing on a deliberate drift.
"""

import copy
import io
import tokenize
from pathlib import Path

import nbformat
import polib
import pytest

from course_utils.i18n import set_language, tr
from publish import messages, translations

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = translations.english_notebooks()
LANG = "ko"


def catalog(path: Path) -> polib.POFile:
    return polib.pofile(str(translations.catalog_path(path, LANG)), wrapwidth=0)


def catalog_problems(english, po, name="nb") -> list[str]:
    pot = polib.POFile(wrapwidth=0)
    for source in translations.sources(english):
        pot.append(polib.POEntry(msgctxt=source.context, msgid=source.text, msgstr=""))
    return translations.problems(pot, po, name)


def code_tokens(source: str) -> list[tuple[int, str]]:
    """A code cell's tokens without comments and line breaks: what the code *does*."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    return [
        (t.type, t.string)
        for t in tokenize.generate_tokens(io.StringIO(translations.python_only(source)).readline)
        if t.type not in skip
    ]


def code_differences(english, translated, lang=LANG) -> list[str]:
    """The code cells whose code (comments aside, and the translation's language line) differs."""
    found = []
    if [c.id for c in english.cells] != [c.id for c in translated.cells]:
        return ["the cells (their ids and order) differ"]
    language_line = translations.LANGUAGE_LINE.format(lang=lang) + "\n"
    first = True
    for mine, theirs in zip(english.cells, translated.cells):
        if mine.cell_type != "code":
            continue
        source = theirs.source
        if first:
            if not source.startswith(language_line):
                found.append(f"cell {theirs.id}: the first code cell does not start with {language_line.strip()!r}")
            source, first = source.removeprefix(language_line), False
        if code_tokens(mine.source) != code_tokens(source):
            found.append(f"cell {theirs.id}: its code differs from the English cell's")
    return found


def without_outputs(notebook):
    """What the build writes: everything but outputs, execution counts and run-time metadata."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    for key in ("widgets", "kernelspec", "language_info"):
        notebook.metadata.pop(key, None)
    return notebook


# ---------------------------------------------------------------- markdown and comments: the catalogs


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_every_cell_is_translated_and_up_to_date(path):
    assert catalog_problems(nbformat.read(path, 4), catalog(path), path.stem) == []


def test_a_changed_added_or_removed_cell_is_named():
    path = ENGLISH[0]
    english, po = nbformat.read(path, 4), catalog(path)
    markdown = [cell for cell in english.cells if cell.cell_type == "markdown"]

    changed = copy.deepcopy(english)
    target = next(cell for cell in changed.cells if cell.id == markdown[1].id)
    target.source += "\nOne more sentence."
    assert catalog_problems(changed, po) == [
        f"nb: cell {target.id} (markdown): its English changed: {target.source[:60]!r}"
    ]

    added = copy.deepcopy(english)
    added.cells.insert(2, nbformat.v4.new_markdown_cell("A new paragraph.", id="newcell1"))
    assert catalog_problems(added, po) == ["nb: cell newcell1 (markdown): not in the catalog: 'A new paragraph.'"]

    removed = copy.deepcopy(english)
    removed.cells = [cell for cell in removed.cells if cell.id != markdown[1].id]
    assert catalog_problems(removed, po) == [f"nb: cell {markdown[1].id}: stale entry for English no longer there"]

    commented = copy.deepcopy(english)
    code = next(cell for cell in commented.cells if cell.cell_type == "code" and "#" not in cell.source)
    code.source += "  # a new comment"
    assert catalog_problems(commented, po) == [
        f"nb: cell {code.id} (a code comment): not in the catalog: '# a new comment'"
    ]


def test_fuzzy_untranslated_and_broken_entries_are_named():
    path = ENGLISH[0]
    english, po = nbformat.read(path, 4), catalog(path)
    entry = next(e for e in po if not e.obsolete and not e.msgctxt.endswith(" comment") and "`" in e.msgid)
    entry.flags.append("fuzzy")
    assert catalog_problems(english, po) == [
        f"nb: cell {entry.msgctxt} (markdown): fuzzy (the English changed; check the translation)"
    ]
    entry.flags.remove("fuzzy")
    saved, entry.msgstr = entry.msgstr, ""
    assert catalog_problems(english, po) == [f"nb: cell {entry.msgctxt} (markdown): not translated yet"]
    entry.msgstr = saved.replace("`", "")  # the code spans lost
    (problem,) = catalog_problems(english, po)
    assert problem.startswith(f"nb: cell {entry.msgctxt} (markdown): code spans differ: missing [")


def test_update_marks_a_changed_cell_fuzzy_and_keeps_its_old_translation():
    path = ENGLISH[0]
    english, po = nbformat.read(path, 4), catalog(path)
    cell = next(c for c in english.cells if c.cell_type == "markdown")
    old = next(e for e in po if e.msgctxt == cell.id)
    cell.source += "\nMore."
    pot = polib.POFile()
    for source in translations.sources(english):
        pot.append(polib.POEntry(msgctxt=source.context, msgid=source.text, msgstr=""))
    merged = translations.update(po, pot)
    entry = next(e for e in merged if e.msgctxt == cell.id and not e.obsolete)
    assert "fuzzy" in entry.flags and entry.msgstr == old.msgstr and entry.previous_msgid == old.msgid


# ---------------------------------------------------------------- code: the same in both editions


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_code_is_the_english_code_but_comments_and_the_language_line(path):
    translated = nbformat.read(translations.translated_path(path, LANG), 4)
    assert code_differences(nbformat.read(path, 4), translated) == []


def test_changed_code_in_a_translation_is_caught():
    path = ENGLISH[2]
    english = nbformat.read(path, 4)
    translated = nbformat.read(translations.translated_path(path, LANG), 4)
    cell = next(
        c for c in translated.cells if c.cell_type == "code" and "=" in c.source and "set_language" not in c.source
    )
    edited = copy.deepcopy(translated)
    target = next(c for c in edited.cells if c.id == cell.id)
    target.source = target.source.replace("=", "= 1 +", 1)
    assert code_differences(english, edited) == [f"cell {cell.id}: its code differs from the English cell's"]
    target.source = cell.source + "\n# 주석만 추가"  # a comment only: fine
    assert code_differences(english, edited) == []
    first = next(c for c in edited.cells if c.cell_type == "code")
    first.source = first.source.replace('set_language("ko")', 'set_language("en")')
    assert code_differences(english, edited)[0].startswith(f"cell {first.id}: the first code cell does not start")


# ---------------------------------------------------------------- the committed notebooks are the build


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_committed_translation_is_what_the_build_writes(path):
    committed = nbformat.read(translations.translated_path(path, LANG), 4)
    built = translations.build(path, catalog(path), LANG)
    assert without_outputs(committed) == without_outputs(built), (
        f"notebooks/{LANG}/{path.name} is not what `python -m publish.translations build {LANG}` writes: "
        "rebuild it and re-execute it"
    )


def test_a_hand_edit_of_a_built_notebook_is_caught():
    path = ENGLISH[0]
    committed = nbformat.read(translations.translated_path(path, LANG), 4)
    committed.cells[0].source += " (고침)"
    assert without_outputs(committed) != without_outputs(translations.build(path, catalog(path), LANG))


def test_translated_notebooks_are_stored_with_their_outputs():
    """Each committed Korean notebook comes from its own run: a code cell has outputs exactly where
    the English cell has them (notebook 6, stored without outputs, in neither)."""
    for path in ENGLISH:
        english = nbformat.read(path, 4)
        translated = nbformat.read(translations.translated_path(path, LANG), 4)
        for mine, theirs in zip(english.cells, translated.cells):
            if mine.cell_type == "code":
                assert bool(mine.outputs) == bool(theirs.outputs), f"{path.name} cell {mine.id}"


# ---------------------------------------------------------------- course_utils' messages


def test_every_learner_visible_message_is_translated():
    found, problems = messages.extract(messages.learner_sources())  # course_utils and the notebooks' figure text
    assert problems == []
    assert len(found) > 300 and any("notebooks/05" in place for places in found.values() for place in places)
    assert messages.problems(messages.read_catalog(LANG), found) == []
    assert messages.bypassing_tr(messages.learner_modules()) == []


def test_untranslated_or_bypassing_messages_are_caught(tmp_path):
    module = tmp_path / "drift.py"
    module.write_text(
        "from course_utils.i18n import tr\n"
        "def f(shape):\n"
        "    print(tr('A brand new message about {shape}', shape=shape))\n"
        "    raise ValueError(f'wrong shape {shape}')\n"
        "def g(ax, name):\n"
        "    ax.set_title('training loss')\n"
        "    ax.plot([1], label=tr(name))\n",
        encoding="utf-8",
    )
    found, problems = messages.extract([module])
    assert problems == ["drift.py:7: tr() needs one string literal as its first argument"]
    assert messages.problems(polib.POFile(), found) == [
        "drift.py:3: not in the catalog: 'A brand new message about {shape}'"
    ]
    catalog = messages.update(messages.read_catalog(LANG), {**messages.extract(messages.learner_sources())[0], **found})
    assert "A brand new message about {shape}" in [e.msgid for e in catalog if not e.msgstr]  # update adds it, empty
    assert messages.bypassing_tr([module]) == [
        "drift.py:4: an exception's message is not passed through tr()",
        "drift.py:6: text shown by set_title() is not passed through tr()",
    ]
    po = polib.POFile()
    po.append(polib.POEntry(msgid="A brand new message about {shape}", msgstr="{shap}에 대한 새 메시지"))
    po.append(polib.POEntry(msgid="gone from the code", msgstr="사라진 메시지"))
    assert messages.problems(po, found) == [
        "drift.py:3: the translation's fields [('shap', ':')] differ from the English [('shape', ':')]",
        "catalog: stale entry, no longer in the code: 'gone from the code'",
    ]


def test_tr_speaks_korean_after_set_language_and_english_again_after():
    entry = next(e for e in messages.read_catalog(LANG) if "{case}" in e.msgid and e.msgstr)
    values = {name: f"<{name}>" for name, _ in messages.fields(entry.msgid)}
    english = tr(entry.msgid, **values)
    try:
        set_language("ko")
        korean = tr(entry.msgid, **values)
    finally:
        set_language("en")
    assert english == entry.msgid.format(**values) and korean == entry.msgstr.format(**values)
    assert any("\uac00" <= char <= "\ud7a3" for char in korean), korean
    assert tr(entry.msgid, **values) == english
    with pytest.raises(ValueError, match="not 'fr'"):
        set_language("fr")


def test_a_missing_font_package_or_a_broken_catalog_says_what_to_do(monkeypatch, tmp_path):
    from course_utils import i18n

    monkeypatch.setattr(i18n, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"koreanize-matplotlib.*make setup"):
        i18n.korean_font_files()
    monkeypatch.undo()
    broken = tmp_path / "ko" / "LC_MESSAGES" / "course_utils.po"
    broken.parent.mkdir(parents=True)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n._translations.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="message catalog .* cannot be read: no such file"):
            set_language("ko")
        broken.write_text('msgid "a"\nmsgstr "b"\nmsgstr "c"\n', encoding="utf-8")
        i18n._translations.cache_clear()
        with pytest.raises(RuntimeError, match="message catalog .* cannot be read: Syntax error"):
            set_language("ko")
        assert i18n.language() == "en"  # nothing half-switched
    finally:
        i18n._translations.cache_clear()


def test_korean_figures_use_nanum_gothic_for_hangul_and_keep_dejavu_for_the_rest():
    import matplotlib

    saved = matplotlib.rcParams["font.family"]
    try:
        set_language("ko")
        assert matplotlib.rcParams["font.family"] == ["DejaVu Sans", "NanumGothic"]
        from matplotlib import font_manager

        found = font_manager.findfont(font_manager.FontProperties(family="NanumGothic"), fallback_to_default=False)
        assert Path(found).name.startswith("NanumGothic")
    finally:
        set_language("en")
        matplotlib.rcParams["font.family"] = saved
