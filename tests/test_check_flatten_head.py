"""check_linear_to_conv (notebook 4, the paper's real head) accepts every correct way of copying a
Flatten + Linear(C*h*w, D) into a Conv2d(C, D, (h, w)), and names each typical mistake."""

import pytest
import torch
import torch.nn as nn

from course_utils.checks.flatten_head import check_linear_to_conv
from tests.test_checks import assert_passes, assert_rejected, not_written, returns_none

SUCCESS = (
    "linear_to_conv: weight and bias copied in PyTorch's flatten order, for 3 head sizes; conv == fc on an h x w "
    "input and on every window of a larger one."
)


def sizes(fc, conv):
    """(D, C, h, w), as a learner would read them."""
    return tuple(conv.weight.shape)


# ----------------------------------------------------------------------------- correct answers


def head_reshape(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(conv.weight.shape))
        conv.bias.copy_(fc.bias)


def head_view(fc, conv):
    outputs, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.view(outputs, channels, h, w))
        conv.bias.copy_(fc.bias)


def head_unflatten(fc, conv):
    _, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.unflatten(1, (channels, h, w)))
        conv.bias.copy_(fc.bias)


def head_loops(fc, conv):
    _, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        for c in range(channels):
            for i in range(h):
                for j in range(w):
                    conv.weight[:, c, i, j] = fc.weight[:, c * h * w + i * w + j]
        conv.bias.copy_(fc.bias)


def head_load_state_dict(fc, conv):
    conv.load_state_dict({"weight": fc.weight.reshape(conv.weight.shape), "bias": fc.bias})


def head_data(fc, conv):
    conv.weight.data.copy_(fc.weight.data.reshape(conv.weight.shape))
    conv.bias.data.copy_(fc.bias.data)


def head_returns_the_conv(fc, conv):
    head_reshape(fc, conv)
    return conv


@pytest.mark.parametrize(
    "answer",
    [head_reshape, head_view, head_unflatten, head_loops, head_load_state_dict, head_data, head_returns_the_conv],
)
def test_linear_to_conv_accepts_every_correct_answer(answer, capsys):
    assert_passes(check_linear_to_conv, answer, capsys, SUCCESS)


def test_linear_to_conv_leaves_the_random_state_alone(capsys):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    check_linear_to_conv(head_reshape)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_linear_to_conv_says_not_written_for_the_stub():
    assert_rejected(
        check_linear_to_conv, not_written, r"^linear_to_conv: not written yet: replace `raise NotImplementedError`"
    )


# ----------------------------------------------------------------------------- wrong answers


def head_channels_last(fc, conv):
    outputs, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(outputs, h, w, channels).permute(0, 3, 1, 2))
        conv.bias.copy_(fc.bias)


def head_rows_columns_swapped(fc, conv):
    outputs, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(outputs, channels, w, h).transpose(2, 3))
        conv.bias.copy_(fc.bias)


def head_transposed_window(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(conv.weight.shape).transpose(2, 3))
        conv.bias.copy_(fc.bias)


def head_reshape_w_h(fc, conv):
    """Right on square windows, a shape error on the non-square one."""
    outputs, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(outputs, channels, w, h))
        conv.bias.copy_(fc.bias)


def head_weight_only(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(conv.weight.shape))


def head_outputs_last(fc, conv):
    outputs, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(channels, h, w, outputs))
        conv.bias.copy_(fc.bias)


def head_fc_transposed_reshape(fc, conv):
    outputs, channels, h, w = sizes(fc, conv)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.T.reshape(channels, h, w, outputs))
        conv.bias.copy_(fc.bias)


def head_fc_transposed_same_shape(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.T.reshape(conv.weight.shape))
        conv.bias.copy_(fc.bias)


def head_hard_coded_7x7(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(fc.out_features, 512, 7, 7))
        conv.bias.copy_(fc.bias)


def head_hard_coded_4096(fc, conv):
    with torch.no_grad():
        conv.weight.copy_(fc.weight.view(4096, -1, 7, 7))
        conv.bias.copy_(fc.bias)


def head_new_parameters(fc, conv):
    conv.weight = nn.Parameter(fc.weight.detach().clone().reshape(conv.weight.shape))
    conv.bias = nn.Parameter(fc.bias.detach().clone())


def head_shared(fc, conv):
    conv.weight = nn.Parameter(fc.weight.view(conv.weight.shape))
    conv.bias = fc.bias


def head_data_views(fc, conv):
    conv.weight.data = fc.weight.data.view(conv.weight.shape)
    conv.bias.data = fc.bias.data


def head_backwards(fc, conv):
    with torch.no_grad():
        fc.weight.copy_(conv.weight.flatten(1))
        fc.bias.copy_(conv.bias)


def head_without_no_grad(fc, conv):
    conv.weight.copy_(fc.weight.reshape(conv.weight.shape))
    conv.bias.copy_(fc.bias)


def head_returns_new_conv(fc, conv):
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size)
    head_reshape(fc, new)
    return new


def head_flat_data(fc, conv):
    conv.weight.data = fc.weight.data.clone()
    conv.bias.data = fc.bias.data.clone()


FIRST = r"with fc = nn.Linear\(12, 4\) on \(N, 3, 2, 2\) features \(C=3, h=2, w=2, D=4\)"
NON_SQUARE = r"with fc = nn.Linear\(12, 3\) on \(N, 2, 2, 3\) features \(C=2, h=2, w=3, D=3\)"
NUMBERS_MISPLACED = r"conv.weight differs from fc.weight.reshape\(D, C, h, w\) by up to \S+ "


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            head_channels_last,
            rf"^linear_to_conv: {FIRST}: {NUMBERS_MISPLACED}\(fc's columns read channels last .*Keras/TensorFlow's "
            r"flatten order\): PyTorch flattens \(C, h, w\) channel first, then rows, then columns, so column "
            r"c\*h\*w \+ i\*w \+ j holds feature \(c, i, j\): fc.weight.reshape\(D, C, h, w\), with no permute\)$",
        ),
        (
            head_rows_columns_swapped,
            rf"{FIRST}: {NUMBERS_MISPLACED}\(rows and columns swapped: .*reshape\(D, C, h, w\) with no transpose\)$",
        ),
        (head_transposed_window, rf"{FIRST}: {NUMBERS_MISPLACED}\(rows and columns swapped"),
        (
            head_reshape_w_h,
            rf"{NON_SQUARE}, your code raised RuntimeError: .*\(conv.weight is \(D, C, h, w\) = \(3, 2, 2, 3\) and "
            r"fc.weight is \(D, C\*h\*w\) = \(3, 12\): D already comes first, so reshape fc.weight straight to "
            r"conv.weight.shape, with no .T, permute or transpose \(here h = 2 rows, w = 3 columns\)\)$",
        ),
        (
            head_weight_only,
            rf"{FIRST}: expected conv.bias == fc.bias = .*\(the bias was not copied: every output would be off",
        ),
        (
            head_outputs_last,
            rf"{FIRST}, your code raised RuntimeError: .*\(conv.weight is \(D, C, h, w\) = \(4, 3, 2, 2\) .*no .T",
        ),
        (head_fc_transposed_reshape, rf"{FIRST}, your code raised RuntimeError: .*D already comes first"),
        (
            head_fc_transposed_same_shape,
            rf"{FIRST}: {NUMBERS_MISPLACED}\(fc's numbers in the wrong places: conv.weight\[d, c, i, j\] must be "
            r"fc.weight\[d, c\*h\*w \+ i\*w \+ j\]",
        ),
        (
            head_hard_coded_7x7,
            rf"{FIRST}, your code raised RuntimeError: .*512.*\(this check uses fc = nn.Linear\(12, 4\) on 3x2x2 "
            r"features, not the paper's 512x7x7 and 4096: take the sizes from conv.weight.shape",
        ),
        (head_hard_coded_4096, r"raised RuntimeError: .*not the paper's 512x7x7 and 4096: take the sizes from conv"),
        (
            head_new_parameters,
            rf"{FIRST}: conv.weight is a new nn.Parameter, so an optimizer \(or a hook\) holding the old one would "
            r"not see the copy",
        ),
        (head_shared, rf"{FIRST}: conv.weight shares memory with fc.weight, so training one would change the other"),
        (head_data_views, r"conv.weight shares memory with fc.weight"),
        (head_backwards, rf"{FIRST}: fc was changed: copy from fc into conv, not the other way round"),
        (
            head_without_no_grad,
            rf"{FIRST}, your code raised RuntimeError: a leaf Variable that requires grad.*\(wrap the copy in "
            r"`with torch.no_grad\(\):`",
        ),
        (head_returns_new_conv, r"you returned a new Conv2d, but the conv you were given is unchanged"),
        (head_flat_data, r"expected conv.weight of shape \(4, 3, 2, 2\), got \(4, 12\) \(reshape fc.weight"),
        (returns_none, rf"{FIRST}: {NUMBERS_MISPLACED}\(conv.weight was not changed\)$"),
    ],
    ids=lambda value: value.__name__ if callable(value) else "message",
)
def test_linear_to_conv_names_each_mistake(wrong, message):
    assert_rejected(check_linear_to_conv, wrong, message)


def test_linear_to_conv_compares_conv_with_fc_on_a_larger_input():
    """Right weights but a padded conv: the window check notices."""

    def padded(fc, conv):
        head_reshape(fc, conv)
        conv.padding = (1, 1)

    assert_rejected(check_linear_to_conv, padded, r"conv\(features\) is not fc\(features.flatten\(1\)\)")

    def strided(fc, conv):
        head_reshape(fc, conv)
        conv.stride = (2, 2)

    assert_rejected(
        check_linear_to_conv,
        strided,
        r"on an input of shape \(2, 3, 5, 4\), conv\(features\) is not fc "
        r"applied to every 2x2 window, of shape \(2, 4, 4, 3\)",
    )
