"""nbval with a tolerance, for the cells whose output comes from training.

Training is bit-for-bit repeatable only on one CPU instruction set, thread count, library build
and device, so a trained accuracy or mIoU printed on one machine differs in its last digits on
another. nbval compares text digit for digit. This plugin relaxes that for the cells that ask:

    cell metadata:  "nbval-tolerance": {"abs": 0.03, "rel": 0.02, "percent": 1.5}   (any of the three)

In such a cell the text outputs must still match the stored ones word for word, line for line
(the same table, the same rows, the same labels); only the numbers may move, each by at most
max(abs, rel * |stored number|), or by `percent` points for a number printed with a % sign.
A cell with no such entry is compared strictly, as nbval does.
What the numbers must reach on any machine (accuracy >= 0.98, FCN-8s above FCN-32s, ...) is
asserted in the notebook itself, next to the number.

Loaded by the repository's conftest.py, so a plain `pytest --nbval` uses it.
"""

from __future__ import annotations

import functools
import re

import pytest

METADATA_KEY = "nbval-tolerance"

#: A number as printed: optional sign, digits, optional decimals and exponent, optional % sign.
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?%?")
SPACES = re.compile(r"[ \t]+")


def number_mismatches(
    stored: str, actual: str, abs_tol: float = 0.0, rel_tol: float = 0.0, percent_tol: float = 0.0
) -> list[str]:
    """What differs between two printed texts, allowing each number a tolerance; [] if nothing.

    The text between the numbers must be equal, except for the width of runs of spaces (a
    right-aligned "98.0%" becomes "100.0%"). Each number may differ from the stored one by at most
    max(abs_tol, rel_tol * |stored|); a percentage ("98.0%") by at most percent_tol points.
    """
    stored_words = [SPACES.sub(" ", part) for part in NUMBER.split(stored)]
    actual_words = [SPACES.sub(" ", part) for part in NUMBER.split(actual)]
    if stored_words != actual_words:
        first = next(
            (i for i, (s, a) in enumerate(zip(stored_words, actual_words)) if s != a),
            min(len(stored_words), len(actual_words)),
        )
        return [
            f"the text differs, not only its numbers (stored: {_excerpt(stored_words, first)!r}, "
            f"got: {_excerpt(actual_words, first)!r}; stored {stored.count(chr(10))} lines, "
            f"got {actual.count(chr(10))})"
        ]
    problems = []
    lines = stored.splitlines()
    for match, got in zip(NUMBER.finditer(stored), NUMBER.findall(actual)):
        if match.group().endswith("%") != got.endswith("%"):
            problems.append(f"{got} where {match.group()} was stored")
            continue
        want = float(match.group().rstrip("%"))
        allowed = percent_tol if got.endswith("%") else max(abs_tol, rel_tol * abs(want))
        if abs(float(got.rstrip("%")) - want) > allowed:
            line = lines[stored.count("\n", 0, match.start())].strip() if lines else ""
            problems.append(f"{got} where {match.group()} was stored (allowed: ±{allowed:g}), in the line {line!r}")
    return problems


def _excerpt(words: list[str], index: int) -> str:
    return words[index] if index < len(words) else "<end of output>"


def text_fields(output: dict) -> list[tuple[dict, str]]:
    """The comparable text fields of one output: stream text and text/plain data."""
    if output.get("output_type") == "stream":
        return [(output, "text")]
    data = output.get("data", {})
    return [(data, "text/plain")] if "text/plain" in data else []


def compare_with_tolerance(item, original_compare, test_outputs, stored_outputs, skip_compare=None):
    """nbval's compare_outputs for one cell, with each number of its text allowed a tolerance.

    Texts whose numbers all lie within the tolerance are replaced by the stored text, so that
    nbval's own comparison then checks everything else (number and kinds of outputs) strictly.
    """
    tolerance = item.cell.metadata[METADATA_KEY]
    unknown = set(tolerance) - {"abs", "rel", "percent"}
    if unknown:
        raise ValueError(f"cell {item.cell_num}: unknown {METADATA_KEY} keys {sorted(unknown)}; use abs, rel, percent")
    abs_tol, rel_tol, percent_tol = (float(tolerance.get(key, 0.0)) for key in ("abs", "rel", "percent"))
    problems = []
    for test_output, stored_output in zip(test_outputs, stored_outputs):
        for (test_holder, key), (stored_holder, stored_key) in zip(
            text_fields(test_output), text_fields(stored_output)
        ):
            if key != stored_key:
                continue
            stored_text, test_text = (
                item.sanitize(_joined(stored_holder[key])),
                item.sanitize(_joined(test_holder[key])),
            )
            found = number_mismatches(stored_text, test_text, abs_tol, rel_tol, percent_tol)
            if found:
                problems += found
            else:
                test_holder[key] = stored_holder[key]
    if problems:
        item.comparison_traceback = [f"Cell {item.cell_num}: outside the tolerance {dict(tolerance)}:"] + [
            "  " + problem for problem in problems
        ]
        return False
    return original_compare(test_outputs, stored_outputs, skip_compare)


def _joined(text) -> str:
    return "".join(text) if isinstance(text, list) else text


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Give every notebook cell that carries a tolerance its tolerant comparison."""
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and METADATA_KEY in cell.get("metadata", {}) and hasattr(item, "compare_outputs"):
            item.compare_outputs = functools.partial(compare_with_tolerance, item, item.compare_outputs)
