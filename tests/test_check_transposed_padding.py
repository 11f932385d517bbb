"""check_transposed_padding accepts every (padding, output_padding) that makes a ConvTranspose2d multiply
sizes exactly, and names each typical wrong answer."""

import math
import re

import pytest
import torch
import torch.nn as nn

from course_utils.checks.upsampling import check_transposed_padding
from tests.test_checks import assert_passes, assert_rejected


def padding_ceil(factor, kernel):
    padding = math.ceil((kernel - factor) / 2)
    return padding, 2 * padding - (kernel - factor)


def padding_floor_division(factor, kernel):
    return (kernel - factor + 1) // 2, (kernel - factor) % 2


def padding_negated_floor(factor, kernel):
    padding = -(-(kernel - factor) // 2)
    return [padding, 2 * padding - (kernel - factor)]


def padding_largest_output_padding(factor, kernel):
    """Another valid pair: the largest output_padding below the stride with the right parity."""
    output_padding = factor - 1 if (factor - 1 - (kernel - factor)) % 2 == 0 else factor - 2
    return (kernel - factor + output_padding) // 2, output_padding


def padding_search(factor, kernel):
    """Try pairs on a real layer until the output is n * factor."""
    for padding in range(kernel):
        for output_padding in range(factor):
            layer = nn.ConvTranspose2d(1, 1, kernel, stride=factor, padding=padding, output_padding=output_padding)
            if layer(torch.zeros(1, 1, 3, 3)).shape[-1] == 3 * factor:
                return padding, output_padding
    raise ValueError("no pair found")


def test_padding_largest_output_padding_differs_from_the_smallest():
    """So that the check is shown to accept any pair PyTorch accepts, not one formula's."""
    assert padding_largest_output_padding(5, 5) == (2, 4) != padding_ceil(5, 5)


@pytest.mark.parametrize(
    "answer",
    [padding_ceil, padding_floor_division, padding_negated_floor, padding_largest_output_padding, padding_search],
)
def test_transposed_padding_accepts_every_correct_answer(answer, capsys):
    assert_passes(
        check_transposed_padding, answer, capsys, "padding_for: every n x n input comes out (n * factor) x (n * factor)"
    )


def padding_hard_coded(factor, kernel):
    return 1, 0


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda f, k: (f // 2, 0),
            r"^padding_for: for factor 5, kernel 5, \(padding, output_padding\) = \(2, 0\): a 5x5 input gives 21x21, "
            r"expected 25x25 \(5 x 5\): padding factor // 2 = 2 is the bilinear upsampler's, right only for "
            r"kernel 2 \* factor with an even factor",
        ),
        (
            lambda f, k: (k // 2, 0),
            r"for factor 2, kernel 4, .*gives 8x8, expected 10x10 .*padding kernel // 2 = 2 is a 'same' convolution's",
        ),
        (
            lambda f, k: ((k - f) // 2, 0),
            r"for factor 3, kernel 6, \(padding, output_padding\) = \(1, 0\): a 5x5 input gives 16x16, expected "
            r"15x15 \(5 x 3\): padding \(kernel - factor\) // 2 = 1 rounds the odd kernel - factor = 3 down, "
            r"leaving one pixel too many: round it up, padding = ceil\(\(kernel - factor\) / 2\) = 2, and "
            r"output_padding = 2 \* padding - \(kernel - factor\) = 1",
        ),
        (
            lambda f, k: (math.ceil((k - f) / 2), 0),
            r"for factor 3, kernel 6, .*gives 14x14, expected 15x15 .*output_padding forgotten: padding 2 removes "
            r"2 \* 2 = 4 pixels, one more than the overshoot",
        ),
        (
            lambda f, k: (k // 2, 2 * (k // 2) - (k - f)),
            r"for factor 2, kernel 4, nn.ConvTranspose2d\(C, C, 4, stride=2, padding=2, output_padding=2\) raised "
            r"RuntimeError: output padding must be smaller .*\(output_padding must be smaller than the stride 2: "
            r"take the smallest padding",
        ),
        (lambda f, k: ((f - k) // 2, 0), r"raised RuntimeError: .*\(padding -1 is negative: .*factor - kernel\?\)"),
        (
            lambda f, k: ((k - f) / 2, 0),
            r"padding=1.0, output_padding=0\) raised TypeError: .*\(PyTorch needs ints: use integer arithmetic",
        ),
        (
            lambda f, k: (math.ceil((k - f) / 2), float(2 * math.ceil((k - f) / 2) - (k - f))),
            r"output_padding=0.0\) raised TypeError: .*\(PyTorch needs ints",
        ),
        (lambda f, k: (torch.tensor(1), torch.tensor(0)), r"raised TypeError: .*must be Python ints, got a torch"),
        (
            lambda f, k: math.ceil((k - f) / 2),
            r"for factor 2, kernel 4, your function returned a single number, an int 1: return a pair, "
            r"\(padding, output_padding\)",
        ),
        (lambda f, k: (*padding_ceil(f, k), 1), r"expected a pair \(padding, output_padding\), got a tuple of 3 items"),
        (
            lambda f, k: padding_ceil(f, k)[::-1],
            r"for factor 2, kernel 4, \(padding, output_padding\) = \(0, 1\): .*the pair is in the wrong order: "
            r"return \(padding, output_padding\), padding first",
        ),
        (
            padding_hard_coded,
            r"for factor 4, kernel 8, .*2 \* padding - output_padding must equal kernel - factor = 4; yours is "
            r"2 \* 1 - 0 = 2",
        ),
    ],
)
def test_transposed_padding_names_each_mistake(wrong, message):
    assert_rejected(check_transposed_padding, wrong, message)


def test_transposed_padding_says_not_written():
    def padding_for(factor, kernel):
        raise NotImplementedError("your code here")

    assert_rejected(
        check_transposed_padding,
        padding_for,
        r"^padding_for: not written yet: replace `raise NotImplementedError` with your code\.$",
    )


def test_transposed_padding_says_when_return_is_forgotten():
    def padding_for(factor, kernel):
        padding = math.ceil((kernel - factor) / 2)
        padding, 2 * padding - (kernel - factor)

    assert_rejected(
        check_transposed_padding, padding_for, r"for factor 2, kernel 4, your function returned None: did you forget"
    )


def test_transposed_padding_reports_a_crash_in_the_learners_code():
    assert_rejected(
        check_transposed_padding,
        lambda factor, kernel: (kernel - factor) // 0,
        r"^padding_for: for factor 2, kernel 4, your code raised ZeroDivisionError: integer division or modulo by "
        r"zero$",
    )


def test_transposed_padding_messages_are_distinct():
    answers = [
        lambda f, k: (f // 2, 0),
        lambda f, k: (k // 2, 0),
        lambda f, k: ((k - f) // 2, 0),
        lambda f, k: (math.ceil((k - f) / 2), 0),
        padding_hard_coded,
    ]
    hints = {re.sub(r"^.*\(5 x \d+\): ", "", assert_rejected(check_transposed_padding, a, ".")) for a in answers}
    assert len(hints) == len(answers)


def test_transposed_padding_leaves_the_learners_random_state_alone(capsys):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_transposed_padding(padding_ceil)
    assert torch.equal(torch.rand(3), expected)
    assert capsys.readouterr().out.startswith("✓")
