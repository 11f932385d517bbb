"""What every self-check shares: SelfCheckError, traceback hiding, and running and judging learner code.

Tracebacks. IPython (8 and later) leaves out of a traceback every frame whose locals hold
`__tracebackhide__ = True`, but always shows the innermost frame, the one that raised, even when
it is marked (`ultratb.VerboseTB.format_exception_as_a_whole`: `i != lastrecord`). So:

* every function in this package that raises a `SelfCheckError`, or calls one that does, sets
  `__tracebackhide__ = True` (pytest honours it too, and IPython's debugger);
* `SelfCheckError._render_traceback_`, IPython's hook for an exception's own traceback, formats
  the traceback without those frames, the raising one included. In Jupyter the learner sees
  their own cell's line and then `SelfCheckError: <message>`, nothing from `course_utils`.

Errors raised *inside* the learner's code become a SelfCheckError too (`_Exercise.run`: "... your
code raised IndexError: ...", chained `from None`), so the learner's traceback is not chained.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable

import torch
import torch.nn as nn

from ..i18n import language, tr

#: The English message for an exercise still raising NotImplementedError (what the tests match);
#: the message shown is `_not_written()`, in the course's language.
NOT_WRITTEN = "not written yet: replace `raise NotImplementedError` with your code."


def _not_written() -> str:
    """NOT_WRITTEN in the current language."""
    return tr("not written yet: replace `raise NotImplementedError` with your code.")


# =========================================================================== errors and tracebacks


class SelfCheckError(AssertionError):
    """The learner's answer is wrong; the message says how."""

    def _render_traceback_(self) -> list[str]:
        """The traceback IPython shows: the learner's frames only (see the module docstring)."""
        try:
            from IPython import get_ipython

            visible = _without_hidden_frames(self.__traceback__)
            return get_ipython().InteractiveTB.structured_traceback(type(self), self, visible, tb_offset=0)
        except Exception:  # never let the formatting hide the message itself
            return [f"{type(self).__name__}: {self}"]


def _without_hidden_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """A copy of the traceback chain without the frames that set `__tracebackhide__`."""
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_locals.get("__tracebackhide__"):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


# =========================================================================== shared helpers


def _ordinal(index: int) -> str:
    """0 -> '1st', 1 -> '2nd', 10 -> '11th' (in Korean '1번째', '2번째', '11번째')."""
    number = index + 1
    if language() == "ko":
        return f"{number}번째"
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _shape(shape) -> str:
    return str(tuple(shape))


def _describe(value) -> str:
    """What came back, for a message: its type and its shape or value."""
    if value is None:
        return "None"
    kind = type(value)
    if isinstance(value, torch.Tensor):
        return tr("a torch.Tensor of shape {shape}", shape=_shape(value.shape))
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a NumPy (or other) array
        return tr(
            "a {type} of shape {shape}",
            type=f"{kind.__module__.split('.')[0]}.{kind.__name__}",
            shape=_shape(value.shape),
        )
    if isinstance(value, nn.Module):
        return tr("an nn.Module ({type})", type=kind.__name__)
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    vowel = kind.__name__[0] in "aeiou"  # English: "an int", "a list"
    if isinstance(value, (list, tuple, dict)):
        if vowel:
            return tr("an {type} of {count} items {value}", type=kind.__name__, count=len(value), value=text)
        return tr("a {type} of {count} items {value}", type=kind.__name__, count=len(value), value=text)
    if vowel:
        return tr("an {type} {value}", type=kind.__name__, value=text)
    return tr("a {type} {value}", type=kind.__name__, value=text)


def _make_a_tensor_hint(value) -> str:
    """How to turn what came back into a tensor."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return tr("use torch operations (or torch.as_tensor)")
    if isinstance(value, (list, tuple)):
        return tr("build a tensor, e.g. torch.tensor([...]) or torch.stack([...])")
    return tr("return a torch.Tensor")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


class _Exercise:
    """One exercise's name, and the helpers every check uses to run and judge the learner's code."""

    def __init__(self, name: str):
        self.name = name

    def error(self, message: str) -> SelfCheckError:
        return SelfCheckError(f"{self.name}: {message}")

    def passed(self, detail: str) -> None:
        print(tr("✓ {exercise}: {detail}", exercise=self.name, detail=detail))

    def crash(self, case: str, error: Exception, hint: str | None = None) -> SelfCheckError:
        """The error to raise when the learner's code raised `error` for `case`."""
        if isinstance(error, NotImplementedError):
            return self.error(_not_written())
        return self.error(
            tr(
                "{case}, your code raised {error}: {detail}",
                case=case,
                error=type(error).__name__,
                detail=_first_line(error),
            )
            + (f" ({hint})" if hint else "")
        )

    def run(self, case: str, function: Callable, *args, explain: Callable[[Exception], str | None] | None = None):
        """function(*args), with any error it raises turned into a SelfCheckError about `case`.

        explain(error) may return a hint naming the mistake behind that error. The SelfCheckError
        is raised after the `except` block, `from None`: the learner's traceback is not chained.
        """
        __tracebackhide__ = True
        try:
            return function(*args)
        except Exception as error:  # the learner's code crashed: say where, not how deep
            crash = error
        hint = None if isinstance(crash, NotImplementedError) or explain is None else explain(crash)
        raise self.crash(case, crash, hint) from None

    def expect_returned(self, case: str, got) -> None:
        """Raise if `got` is None: the learner's function forgot its `return`."""
        __tracebackhide__ = True
        if got is None:
            raise self.error(tr("{case}, your function returned None: did you forget `return`?", case=case))

    def expect_tensor(
        self, case: str, got, shape, *, why: str = "", shape_hint: Callable[[tuple], str | None] | None = None
    ) -> torch.Tensor:
        """Raise unless `got` is a torch.Tensor of `shape`; shape_hint(wrong shape) may name a mistake."""
        __tracebackhide__ = True
        shape = tuple(shape)
        self.expect_returned(case, got)
        if not isinstance(got, torch.Tensor):
            raise self.error(
                tr(
                    "{case}, expected a torch.Tensor of shape {shape}, got {got}: {hint}{why}",
                    case=case,
                    shape=_shape(shape),
                    got=_describe(got),
                    hint=_make_a_tensor_hint(got),
                    why=why,
                )
            )
        if tuple(got.shape) != shape:
            hint = shape_hint(tuple(got.shape)) if shape_hint else None
            raise self.error(
                tr(
                    "{case}, expected a torch.Tensor of shape {expected}, got shape {got}",
                    case=case,
                    expected=_shape(shape),
                    got=_shape(got.shape),
                )
                + (f": {hint}" if hint else "")
            )
        return got

    def expect_gradients(
        self,
        case: str,
        output: torch.Tensor,
        upstream: torch.Tensor,
        inputs: dict[str, torch.Tensor],
        expected: dict[str, torch.Tensor],
        consequence: str,
    ) -> None:
        """Raise unless the gradients of (output * upstream).sum() reach `inputs` and equal `expected`."""
        __tracebackhide__ = True
        got = _gradients(output, upstream, list(inputs.values()))
        if isinstance(got, Exception):
            raise self.error(
                tr(
                    "{case}, backpropagating through your result raised {error}: {detail}",
                    case=case,
                    error=type(got).__name__,
                    detail=_first_line(got),
                )
            )
        missing = [name for name, grad in zip(inputs, got) if grad is None]
        if missing:
            raise self.error(
                tr(
                    "{case}, no gradient reaches {names}: the result was computed under "
                    "torch.no_grad(), or from .detach() or .data, so {consequence}",
                    case=case,
                    names=_join(missing),
                    consequence=consequence,
                )
            )
        for name, grad in zip(inputs, got):
            if not torch.allclose(grad, expected[name], rtol=1e-4, atol=1e-5):
                raise self.error(
                    tr(
                        "{case}, the gradient reaching {name} differs from the reference's by up to {difference:.3g}",
                        case=case,
                        name=name,
                        difference=(grad - expected[name]).abs().max().item(),
                    )
                )


def _gradients(output: torch.Tensor, upstream: torch.Tensor, inputs: list[torch.Tensor]):
    """d(output * upstream).sum() / d(input) for each input (None where none reaches it), or the error."""
    if not output.requires_grad:
        return [None] * len(inputs)
    try:
        return torch.autograd.grad(output, inputs, upstream, allow_unused=True)
    except Exception as error:  # e.g. an in-place change that autograd refuses
        return error


def _join(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return tr("{names} and {last}", names=", ".join(names[:-1]), last=names[-1])


def _first_match(got: torch.Tensor, candidates, atol: float = 1e-5) -> str | None:
    """The hint of the first (tensor, hint) candidate that `got` equals, if any."""
    for tensor, hint in candidates:
        if tensor.shape == got.shape and torch.allclose(got.double(), tensor.double(), rtol=1e-4, atol=atol):
            return hint
    return None


def _self_check(check: Callable) -> Callable:
    """Decorate a check_* function: it leaves the learner's random number generator as it was.

    (The checks seed their own test data; the notebook's next cells must not notice.)
    """

    @functools.wraps(check)
    def run_check(*args, **kwargs):
        __tracebackhide__ = True
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)

    return run_check
