"""Notebook 3: check_training_step, one training step (train_step) and one evaluation pass (evaluate).

Both run on a tiny classifier with BatchNorm (5 classes, not the notebook's 7) and seeded random
data, next to the reference. What the learner's code did is recorded, not read: a pre-hook on
each BatchNorm layer (train or eval mode? gradients on?), a hook on each parameter (backward ran)
and a step pre-hook on the optimizer (step ran, and whether it had gradients to apply). These
records only name a mistake; what decides is the behaviour: the returned number, the parameters
and BatchNorm's running statistics after each call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..i18n import tr
from ._common import _describe, _Exercise, _ordinal, _self_check

_CLASSES = 5  # not the notebook's 7
_LOSS_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def _tiny_classifier(seed: int) -> nn.Sequential:
    """(N, 3, H, W) images -> (N, 5) scores: conv, BatchNorm, ReLU, global average, linear."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, _CLASSES),
    )


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum: a stale gradient keeps moving the weights, so a missing zero_grad shows."""
    return torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer (BatchNorm's running statistics), by name."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _largest_difference(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> tuple[str, float] | None:
    """(name, largest difference) of the first entry that differs, or None when all match."""
    for name, value in expected.items():
        if not torch.allclose(got[name].double(), value.double(), rtol=1e-4, atol=1e-6):
            return name, (got[name].double() - value.double()).abs().max().item()
    return None


class _Recorder:
    """What happened while the learner's code ran: BatchNorm forwards, backward passes, optimizer steps.

    forwards: (batch size, BatchNorm in training mode, gradients enabled) per call of the first
    BatchNorm layer; events: "backward" and "step" in the order they happened; step_had_gradients:
    for each step, whether any parameter had a nonzero gradient to apply.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None):
        self.forwards: list[tuple[int, bool, bool]] = []
        self.events: list[str] = []
        self.step_had_gradients: list[bool] = []
        norm = next(m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
        self._handles = [norm.register_forward_pre_hook(self._forward)]
        self._handles += [p.register_hook(self._backward) for p in model.parameters()]
        if optimizer is not None:
            self._parameters = list(model.parameters())
            self._handles.append(optimizer.register_step_pre_hook(self._step))

    def _forward(self, module: nn.Module, inputs: tuple) -> None:
        self.forwards.append((len(inputs[0]), module.training, torch.is_grad_enabled()))

    def _backward(self, grad: torch.Tensor) -> None:
        if not self.events or self.events[-1] != "backward":
            self.events.append("backward")

    def _step(self, optimizer, args, kwargs) -> None:
        self.events.append("step")
        self.step_had_gradients.append(any(p.grad is not None and bool(p.grad.any()) for p in self._parameters))

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()


# =========================================================================== train_step


def _reference_step(model: nn.Module, optimizer: torch.optim.Optimizer, images, labels, zero_grad=True) -> float:
    model.train()
    if zero_grad:
        optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two batches, (6, 3, 6, 6) and (5, 3, 6, 6) images with their labels (0 to 4)."""
    generator = torch.Generator().manual_seed(3)
    return [
        (torch.randn(size, 3, 6, 6, generator=generator), torch.randint(0, _CLASSES, (size,), generator=generator))
        for size in (6, 5)
    ]


def _loss_mistakes(before: nn.Module, after: nn.Module, images, labels) -> list[tuple[float, str]]:
    """(loss, hint) of typical wrong losses; before/after: copies of the reference model around its step."""
    with torch.no_grad():
        before.train()
        scores = before(images)
        after.eval()
        recomputed_eval = F.cross_entropy(after(images), labels).item()
        after.train()  # after the eval-mode run: a train-mode run moves the running statistics
        recomputed_train = F.cross_entropy(after(images), labels).item()
    after_step = tr(
        "that is the loss *after* optimizer.step(), recomputed: return loss.item() of the loss you "
        "backpropagated, the batch's loss before the step"
    )
    nll = tr(
        "F.nll_loss expects log-probabilities (it only picks -input[label]): use F.cross_entropy on the raw "
        "scores, which applies log-softmax itself"
    )
    return [
        (
            F.cross_entropy(scores.softmax(dim=1), labels).item(),
            tr("softmax before F.cross_entropy: it already applies log-softmax, so give it the raw scores"),
        ),
        (F.nll_loss(scores, labels).item(), nll),
        (F.nll_loss(scores.softmax(dim=1), labels).item(), nll),
        (
            F.cross_entropy(scores, labels, reduction="sum").item(),
            tr("the loss is summed over the batch: use the mean (F.cross_entropy's default)"),
        ),
        (recomputed_train, after_step),
        (recomputed_eval, after_step),
    ]


def _device_hint() -> str:
    """The hint for a tensor put on a fixed device (a function: the text is in the course's language of the moment)."""
    return tr(
        "this check runs on the CPU: move tensors to the model's device, next(model.parameters()).device, not to a "
        "fixed one"
    )


def _train_error_hint(error: Exception) -> str | None:
    text = str(error)
    if "same device" in text:
        return _device_hint()
    if "does not require grad" in text:
        return tr(
            "the loss has no graph to backpropagate: compute scores = model(images) outside torch.no_grad(), "
            "and call .item() only on the returned value, after loss.backward()"
        )
    if "has no attribute 'backward'" in text:
        return tr("call loss.backward() on the loss tensor, and .item() only for the returned number")
    if "backward through the graph a second time" in text:
        return tr("call loss.backward() once per step, on a loss computed in this step")
    return None


def _check_returned_loss(exercise: _Exercise, case: str, got) -> None:
    """The step must return a Python float."""
    __tracebackhide__ = True
    exercise.expect_returned(case, got)
    if isinstance(got, torch.Tensor):
        why = (
            tr(
                "a tensor that requires grad keeps the step's whole graph alive: appended to a history list, "
                "it keeps every step's graph in memory"
            )
            if got.requires_grad
            else tr("a tensor, even detached, is not a number: a history list of tensors needs converting to plot")
        )
        raise exercise.error(
            tr(
                "{case}, expected a Python float, the batch's loss, got {got}: return loss.item() ({why}; "
                ".item() gives the number)",
                case=case,
                got=_describe(got),
                why=why,
            )
        )
    if callable(got):
        raise exercise.error(
            tr("{case}, expected a Python float, got {got}: call it, loss.item()", case=case, got=_describe(got))
        )
    if not isinstance(got, float):
        raise exercise.error(
            tr(
                "{case}, expected a Python float, the batch's loss, got {got}: loss.item()",
                case=case,
                got=_describe(got),
            )
        )


def _check_train_mode(exercise: _Exercise, case: str, record: _Recorder) -> None:
    __tracebackhide__ = True
    if not record.forwards:
        raise exercise.error(tr("{case}, the model was never called: compute scores = model(images)", case=case))
    if not any(training for _, training, _ in record.forwards):
        raise exercise.error(
            tr(
                "{case}, the model ran in eval mode (it was given in eval mode, as after an evaluation): "
                "BatchNorm normalised with its running statistics instead of the batch's, and those statistics "
                "did not move: call model.train() first",
                case=case,
            )
        )


def _check_loss_value(exercise: _Exercise, case: str, got: float, expected: float, mistakes) -> None:
    __tracebackhide__ = True
    if torch.isclose(torch.tensor(got), torch.tensor(expected), **_LOSS_TOLERANCE):
        return
    hints = [hint for value, hint in mistakes if abs(got - value) <= 1e-5 + 1e-5 * abs(value)]
    if hints:
        raise exercise.error(
            tr(
                "{case}, expected the loss F.cross_entropy(model(images), labels) = {expected:.5f}, got {got:.5f} "
                "({hint})",
                case=case,
                expected=expected,
                got=got,
                hint=hints[0],
            )
        )
    raise exercise.error(
        tr(
            "{case}, expected the loss F.cross_entropy(model(images), labels) = {expected:.5f}, got {got:.5f}",
            case=case,
            expected=expected,
            got=got,
        )
    )


def _check_backward_and_step(exercise: _Exercise, case: str, record: _Recorder) -> None:
    """Named from the records, once the parameters are known to be wrong."""
    __tracebackhide__ = True
    if "backward" not in record.events:
        raise exercise.error(
            tr(
                "{case}, the parameters are wrong and no gradient was computed: call loss.backward() before "
                "optimizer.step()",
                case=case,
            )
        )
    if "step" not in record.events:
        raise exercise.error(
            tr(
                "{case}, the parameters did not follow the reference step: the optimizer you were given never "
                "stepped, call optimizer.step() after loss.backward()",
                case=case,
            )
        )
    if not any(record.step_had_gradients):
        if record.events.index("step") < record.events.index("backward"):
            raise exercise.error(
                tr(
                    "{case}, optimizer.step() ran before loss.backward(): it applied no gradient (or the previous "
                    "batch's); the order is zero_grad, forward, loss, backward, step",
                    case=case,
                )
            )
        raise exercise.error(
            tr(
                "{case}, optimizer.step() found no gradient to apply: the gradients were zeroed between "
                "loss.backward() and optimizer.step(); zero them before the backward (or after the step)",
                case=case,
            )
        )


def _check_model_state(
    exercise: _Exercise, case: str, got: dict, expected: dict, no_zero_grad: dict, record: _Recorder
) -> None:
    __tracebackhide__ = True
    difference = _largest_difference(got, expected)
    if difference is None:
        return
    name, size = difference
    if "running" not in name and "num_batches" not in name:
        _check_backward_and_step(exercise, case, record)
        if _largest_difference(got, no_zero_grad) is None:
            raise exercise.error(
                tr(
                    "{case}, the parameters differ from the reference's by up to {difference:.3g}: the gradients "
                    "accumulated over both calls (backward *adds* to .grad); call optimizer.zero_grad() each step",
                    case=case,
                    difference=size,
                )
            )
        raise exercise.error(
            tr(
                "{case}, parameter {name} differs from the reference step's by up to {difference:.3g}",
                case=case,
                name=name,
                difference=size,
            )
        )
    runs = sum(training for _, training, _ in record.forwards)
    if runs > 1:
        raise exercise.error(
            tr(
                "{case}, the model ran {runs} times in train mode, and each run moved BatchNorm's "
                "running statistics ({name} differs by up to {difference:.3g}): compute the scores once",
                case=case,
                runs=runs,
                name=name,
                difference=size,
            )
        )
    raise exercise.error(
        tr(
            "{case}, BatchNorm's {name} differs from the reference step's by up to {difference:.3g}",
            case=case,
            name=name,
            difference=size,
        )
    )


def _check_train_step(train_step: Callable) -> None:
    """train_step(model, optimizer, images (N, 3, H, W), labels (N,)) -> the batch's loss, a float; called twice."""
    __tracebackhide__ = True
    exercise = _Exercise("train_step")
    model = _tiny_classifier(seed=11).eval()  # as after an evaluation: train_step must call model.train()
    mine, reference, no_zero_grad = (copy.deepcopy(model) for _ in range(3))
    my_optimizer, reference_optimizer, no_zero_grad_optimizer = map(_optimizer, (mine, reference, no_zero_grad))
    for call, (images, labels) in enumerate(_batches()):
        case = tr(
            "on the {ordinal} call (a batch of {count} images, {classes} classes, SGD with momentum)",
            ordinal=_ordinal(call),
            count=len(images),
            classes=_CLASSES,
        )
        before = copy.deepcopy(reference)
        expected = _reference_step(reference, reference_optimizer, images, labels)
        _reference_step(no_zero_grad, no_zero_grad_optimizer, images, labels, zero_grad=False)
        with _Recorder(mine, my_optimizer) as record:
            got = exercise.run(
                case, train_step, mine, my_optimizer, images.clone(), labels.clone(), explain=_train_error_hint
            )
        _check_returned_loss(exercise, case, got)
        _check_train_mode(exercise, case, record)
        mistakes = _loss_mistakes(before, copy.deepcopy(reference), images, labels)
        _check_loss_value(exercise, case, got, expected, mistakes)
        _check_model_state(exercise, case, _state(mine), _state(reference), _state(no_zero_grad), record)


# =========================================================================== evaluate


def _evaluation_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor, int]:
    """A model in train mode (as after training), 13 images (3, 6, 6), labels with 6 of 13 predicted right."""
    model = _tiny_classifier(seed=12)
    generator = torch.Generator().manual_seed(5)
    norm = model[1]
    with torch.no_grad():  # running statistics unlike a fresh layer's, so that train and eval mode differ
        norm.running_mean.copy_(torch.randn(4, generator=generator) * 0.5)
        norm.running_var.copy_(torch.rand(4, generator=generator) + 0.5)
        images = torch.randn(13, 3, 6, 6, generator=generator)
        predictions = model.eval()(images).argmax(dim=1)
    right = 6
    wrong_by = torch.randint(1, _CLASSES, (13,), generator=generator)
    labels = torch.where(torch.arange(13) < right, predictions, (predictions + wrong_by) % _CLASSES)
    return model.train(), images, labels, right


def _evaluate_error_hint(error: Exception) -> str | None:
    if "same device" in str(error):
        return _device_hint()
    if "Bool" in str(error):
        return tr("turn the booleans into numbers first: (predictions == labels).float().mean()")
    return None


def _accuracy_mistakes(model: nn.Module, images, labels, right: int, record: _Recorder) -> list[tuple[float, str]]:
    """(value, hint) of typical wrong results."""
    count = len(labels)
    with torch.no_grad():
        scores = copy.deepcopy(model).eval()(images)
    loss, hits = F.cross_entropy(scores, labels).item(), scores.argmax(dim=1) == labels
    mistakes = [
        (100 * right / count, tr("that is a percentage: return the fraction, between 0 and 1")),
        (right, tr("that is the number of right answers: divide by the number of images, {count}", count=count)),
        (
            1 - right / count,
            tr("that is the error rate: the accuracy counts the images whose top score is the label"),
        ),
        (
            loss,
            tr("that is the cross-entropy loss: the accuracy is the fraction of images whose top score is the label"),
        ),
    ]
    sizes = [size for size, _, _ in record.forwards]
    if len(sizes) > 1 and sum(sizes) == count:
        chunks = hits.split(sizes)
        mistakes.append(
            (
                sum(chunk.float().mean().item() for chunk in chunks) / len(chunks),
                tr(
                    "you averaged the accuracies of the chunks, so the last, smaller chunk counts as much as a full "
                    "one: add up the right answers of all chunks, then divide by the number of images"
                ),
            )
        )
    return mistakes


def _check_evaluation_mode(exercise: _Exercise, case: str, record: _Recorder, changed: tuple | None) -> None:
    __tracebackhide__ = True
    if any(training for _, training, _ in record.forwards):
        raise exercise.error(
            tr(
                "{case}, the model ran in train mode (it was given in train mode, as after training): BatchNorm "
                "normalised with each batch's own statistics, and its running statistics changed: call "
                "model.eval() first",
                case=case,
            )
        )
    if any(grad for _, _, grad in record.forwards):
        raise exercise.error(
            tr(
                "{case}, gradients were on: the forward built a graph for a backward that never comes, wasting "
                "memory; run it under `with torch.no_grad():` (or torch.inference_mode())",
                case=case,
            )
        )
    if changed is not None:
        raise exercise.error(
            tr(
                "{case}, the model's {name} changed: evaluating must leave the model as it was",
                case=case,
                name=changed[0],
            )
        )


def _check_accuracy(exercise: _Exercise, case: str, got, expected: float, mistakes) -> None:
    __tracebackhide__ = True
    exercise.expect_returned(case, got)
    if isinstance(got, torch.Tensor):
        raise exercise.error(
            tr(
                "{case}, expected a Python float, got {got}: return a number, e.g. with .item()",
                case=case,
                got=_describe(got),
            )
        )
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        raise exercise.error(tr("{case}, expected a Python float, got {got}", case=case, got=_describe(got)))
    if abs(got - expected) <= 1e-6:
        return
    hints = [hint for value, hint in mistakes if abs(got - value) <= 1e-5 + 1e-5 * abs(value)]
    if hints:
        raise exercise.error(
            tr(
                "{case}, expected the accuracy {expected:.4f}, got {got:.4g} ({hint})",
                case=case,
                expected=expected,
                got=got,
                hint=hints[0],
            )
        )
    raise exercise.error(
        tr("{case}, expected the accuracy {expected:.4f}, got {got:.4g}", case=case, expected=expected, got=got)
    )


def _check_evaluate(evaluate: Callable) -> None:
    """evaluate(model, images (N, 3, H, W), labels (N,)) -> the fraction of images whose argmax score is the label."""
    __tracebackhide__ = True
    exercise = _Exercise("evaluate")
    model, images, labels, right = _evaluation_case()
    case = tr(
        "for {count} images, {classes} classes, {right} predicted right",
        count=len(images),
        classes=_CLASSES,
        right=right,
    )
    before = _state(model)
    mine = copy.deepcopy(model)
    with _Recorder(mine) as record:
        got = exercise.run(case, evaluate, mine, images.clone(), labels.clone(), explain=_evaluate_error_hint)
    _check_evaluation_mode(exercise, case, record, _largest_difference(_state(mine), before))
    _check_accuracy(exercise, case, got, right / len(images), _accuracy_mistakes(model, images, labels, right, record))


@_self_check
def check_training_step(train_step: Callable, evaluate: Callable) -> None:
    """train_step(model, optimizer, images, labels) -> float loss; evaluate(model, images, labels) -> float accuracy."""
    __tracebackhide__ = True
    _check_train_step(train_step)
    _check_evaluate(evaluate)
    _Exercise(tr("train_step and evaluate")).passed(
        tr(
            "two steps match the reference (loss, parameters, BatchNorm statistics); the accuracy is right, "
            "in eval mode without gradients."
        )
    )
