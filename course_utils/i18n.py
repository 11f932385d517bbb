"""The course's languages: every message a learner can see, in English or in Korean.

Messages are written in English, inside `tr`:

    raise ValueError(tr("expected a tensor of shape (N, 3, H, W), got {shape}", shape=shape))

`tr` looks the English text up in the gettext catalog of the chosen language,
`course_utils/locales/<lang>/LC_MESSAGES/course_utils.po`, and fills its `{fields}` with
`str.format` (so a literal brace is written `{{`). English needs no catalog: the text is its own
translation. A message missing from a catalog, or marked fuzzy there, falls back to English;
the tests fail on any such message, so none reaches a learner.

The Korean notebooks start with `course_utils.set_language("ko")`, which also makes matplotlib
draw with NanumGothic, a Korean font installed with the course (the koreanize-matplotlib
package), so that figure titles and labels show Hangul, not empty boxes.
"""

from __future__ import annotations

import functools
import gettext
import io
from importlib.util import find_spec
from pathlib import Path

#: The languages the course is written in. English is the source.
LANGUAGES = ("en", "ko")
LOCALE_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "course_utils"
#: The font a Korean figure is drawn with, and the package it comes in.
KOREAN_FONT = "NanumGothic"
KOREAN_FONT_PACKAGE = "koreanize_matplotlib"

_language = "en"


def catalog_path(language: str) -> Path:
    """Where a language's catalog of course_utils messages lives."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def set_language(language: str) -> None:
    """Show the course's messages (and figures' fonts) in `language`: "en" or "ko"."""
    global _language
    if language not in LANGUAGES:
        raise ValueError(
            f"the course speaks {' and '.join(map(repr, LANGUAGES))}, not {language!r} "
            f"(이 강좌의 언어는 {', '.join(map(repr, LANGUAGES))} 중 하나입니다)"
        )
    if language == "ko":
        _translations("ko")  # a missing or broken catalog fails here, not at the first message
        use_korean_font()
    _language = language


def language() -> str:
    """The language messages are shown in now."""
    return _language


def tr(message: str, **fields) -> str:
    """`message` in the current language, its `{fields}` filled in (str.format)."""
    return translate(message, _language, **fields)


def translate(message: str, language: str, **fields) -> str:
    """`message` in `language`, whatever the current one: for a tool that writes a notebook of
    another edition (the student build's stubs)."""
    if language != "en":
        message = _translations(language).gettext(message)
    return message.format(**fields)


def in_every_language(message: str) -> dict[str, str]:
    """{language: message in that language} (fields not filled), e.g. for a tool that reads
    messages a notebook printed in either edition."""
    return {lang: message if lang == "en" else _translations(lang).gettext(message) for lang in LANGUAGES}


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    """The language's catalog, read from its .po file (polib compiles it, gettext reads it)."""
    import polib

    path = catalog_path(language)
    try:
        if not path.is_file():  # polib would read the path itself as a catalog's text
            raise OSError("no such file")
        catalog = polib.pofile(str(path))
    except (OSError, ValueError) as error:
        raise RuntimeError(
            f"The {language!r} message catalog {path} cannot be read: {error} "
            f"(메시지 카탈로그를 읽을 수 없습니다: 저장소를 다시 받으세요)"
        ) from None
    return gettext.GNUTranslations(io.BytesIO(catalog.to_binary()))


def korean_font_files() -> list[Path]:
    """The NanumGothic font files that the koreanize-matplotlib package installs.

    Found without importing the package (its import changes matplotlib's settings, and on
    Python 3.12 it fails: it imports distutils).
    """
    spec = find_spec(KOREAN_FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "Korean figures need the NanumGothic font from the koreanize-matplotlib package, which is "
            "not installed: run `make setup` (or `pip install koreanize-matplotlib`) and restart the kernel. "
            "(한글 그림에 필요한 NanumGothic 글꼴이 없습니다. koreanize-matplotlib 패키지가 설치되지 "
            "않았습니다: `make setup`(또는 `pip install koreanize-matplotlib`)을 실행하고 커널을 다시 시작하세요.)"
        )
    fonts = Path(next(iter(spec.submodule_search_locations))) / "fonts"
    files = sorted(fonts.glob(f"{KOREAN_FONT}*.ttf"))
    if not files:
        raise FileNotFoundError(
            f"No {KOREAN_FONT} font files in {fonts}: reinstall koreanize-matplotlib. "
            f"({fonts}에 {KOREAN_FONT} 글꼴 파일이 없습니다: koreanize-matplotlib를 다시 설치하세요.)"
        )
    return files


def use_korean_font() -> None:
    """Make matplotlib draw Hangul in NanumGothic. Latin letters, digits and maths stay in DejaVu Sans,
    as in the English figures; matplotlib falls back to the next family for each glyph the first
    lacks (NanumGothic itself has no U+2212 minus sign, which log axes' labels use)."""
    import matplotlib
    from matplotlib import font_manager

    for path in korean_font_files():
        font_manager.fontManager.addfont(str(path))
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", KOREAN_FONT]
