"""check_training_step accepts every correct train_step and evaluate, and names each typical mistake."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.checks.training_step import check_training_step
from tests.test_checks import assert_passes, assert_rejected, not_written, returns_none

# ----------------------------------------------------------------------------- correct train_step


def step_zero_grad_first(model, optimizer, images, labels):
    model.train()
    optimizer.zero_grad()
    scores = model(images)
    loss = F.cross_entropy(scores, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_zero_grad_last(model, optimizer, images, labels):
    model.train()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def step_model_zero_grad(model, optimizer, images, labels):
    model.train()
    scores = model(images)
    model.zero_grad(set_to_none=False)
    loss = nn.CrossEntropyLoss()(scores, labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def step_log_softmax_nll(model, optimizer, images, labels):
    model.train(True)
    for parameter in model.parameters():
        parameter.grad = None
    loss = F.nll_loss(F.log_softmax(model(images), dim=1), labels)
    loss.backward()
    optimizer.step()
    return loss.detach().cpu().item()


def step_closure(model, optimizer, images, labels):
    model.train()
    losses = []

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        losses.append(loss.item())
        return loss

    optimizer.step(closure)
    return losses[0]


# ----------------------------------------------------------------------------- correct evaluate


def evaluate_all_at_once(model, images, labels):
    model.eval()
    with torch.no_grad():
        predictions = model(images).argmax(dim=1)
    return (predictions == labels).float().mean().item()


def evaluate_in_chunks(model, images, labels, chunk=4):
    model.eval()
    right = 0
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            scores = model(images[start : start + chunk])
            right += (scores.argmax(1) == labels[start : start + chunk]).sum().item()
    return right / len(images)


@torch.inference_mode()
def evaluate_inference_mode(model, images, labels):
    model.train(False)
    return float((model(images).max(dim=1).indices == labels).sum()) / labels.numel()


def evaluate_one_by_one(model, images, labels):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        hits = [int(model(image[None]).argmax() == label) for image, label in zip(images, labels)]
    model.train(was_training)
    return sum(hits) / len(hits)


SUCCESS = "train_step and evaluate: two steps match the reference"


@pytest.mark.parametrize(
    "train_step, evaluate",
    [
        (step_zero_grad_first, evaluate_all_at_once),
        (step_zero_grad_last, evaluate_in_chunks),
        (step_model_zero_grad, evaluate_inference_mode),
        (step_log_softmax_nll, evaluate_one_by_one),
        (step_closure, evaluate_all_at_once),
    ],
)
def test_training_step_accepts_every_correct_answer(train_step, evaluate, capsys):
    assert_passes(lambda _: check_training_step(train_step, evaluate), None, capsys, SUCCESS)


def test_training_step_leaves_the_learners_random_state_alone(capsys):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_training_step(step_zero_grad_first, evaluate_all_at_once)
    assert torch.equal(torch.rand(3), expected)
    assert capsys.readouterr().out.startswith("✓ train_step and evaluate: ")


# ----------------------------------------------------------------------------- wrong answers


def check_train_step(train_step):
    __tracebackhide__ = True
    check_training_step(train_step, evaluate_all_at_once)


def check_evaluate(evaluate):
    __tracebackhide__ = True
    check_training_step(step_zero_grad_first, evaluate)


def test_not_written():
    pattern = r"^{}: not written yet: replace `raise NotImplementedError` with your code\.$"
    assert_rejected(check_train_step, not_written, pattern.format("train_step"))
    assert_rejected(check_evaluate, not_written, pattern.format("evaluate"))


def test_forgotten_return():
    assert_rejected(check_train_step, returns_none, r"^train_step: .*returned None: did you forget `return`\?")
    assert_rejected(check_evaluate, returns_none, r"^evaluate: .*returned None: did you forget `return`\?")


def train_step_with(loss_of=None, zero_grad=True, train=True, backward=True, step=True, result="item"):
    """A learner's train_step with one thing changed."""

    def train_step(model, optimizer, images, labels):
        if train:
            model.train()
        if zero_grad:
            optimizer.zero_grad()
        scores = model(images)
        loss = (loss_of or F.cross_entropy)(scores, labels)
        if backward:
            loss.backward()
        if step:
            optimizer.step()
        return {"item": loss.item(), "tensor": loss, "detached": loss.detach()}[result]

    return train_step


def step_before_backward(model, optimizer, images, labels):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    optimizer.step()
    loss.backward()
    return loss.item()


def zero_grad_between(model, optimizer, images, labels):
    model.train()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def loss_after_step(model, optimizer, images, labels):
    step_zero_grad_first(model, optimizer, images, labels)
    return F.cross_entropy(model(images), labels).item()


def loss_after_step_in_eval(model, optimizer, images, labels):
    step_zero_grad_first(model, optimizer, images, labels)
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(images), labels).item()


def forward_twice(model, optimizer, images, labels):
    loss = step_zero_grad_first(model, optimizer, images, labels)
    with torch.no_grad():
        model(images)  # e.g. for the batch's accuracy, in train mode
    return loss


def new_optimizer(model, optimizer, images, labels):
    return step_zero_grad_first(model, torch.optim.SGD(model.parameters(), lr=0.01), images, labels)


def scores_under_no_grad(model, optimizer, images, labels):
    model.train()
    optimizer.zero_grad()
    with torch.no_grad():
        scores = model(images)
    loss = F.cross_entropy(scores, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def moves_to_the_gpu(model, optimizer, images, labels):
    """What torch raises when a learner sends the images to a fixed "cuda" while the check's model is on the CPU."""
    raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!")


FIRST = r"^train_step: on the 1st call \(a batch of 6 images, 5 classes, SGD with momentum\), "


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            train_step_with(zero_grad=False),
            r"^train_step: on the 2nd call .*the gradients accumulated over both calls \(backward \*adds\* to "
            r"\.grad\); call optimizer.zero_grad\(\) each step",
        ),
        (
            train_step_with(train=False),
            FIRST + r"the model ran in eval mode .*BatchNorm normalised with its running statistics .*call "
            r"model.train\(\) first",
        ),
        (train_step_with(backward=False), FIRST + r"the parameters are wrong and no gradient was computed: call loss"),
        (train_step_with(step=False), FIRST + r".*never stepped, call optimizer.step\(\) after loss.backward\(\)"),
        (new_optimizer, r"the optimizer you were given never stepped"),
        (step_before_backward, FIRST + r"optimizer.step\(\) ran before loss.backward\(\)"),
        (
            zero_grad_between,
            FIRST
            + r"optimizer.step\(\) found no gradient to apply: the gradients were zeroed between loss.backward\(\) and "
            r"optimizer.step\(\)",
        ),
        (
            train_step_with(result="tensor"),
            FIRST + r"expected a Python float, the batch's loss, got a torch.Tensor of shape \(\): return "
            r"loss.item\(\) \(a tensor that requires grad keeps the step's whole graph alive: appended to a history "
            r"list, it keeps every step's graph in memory",
        ),
        (train_step_with(result="detached"), FIRST + r"expected a Python float.*return loss.item\(\) \(a tensor, even"),
        (
            train_step_with(loss_of=lambda s, y: F.cross_entropy(s.softmax(dim=1), y)),
            FIRST + r"expected the loss .*\(softmax before F.cross_entropy: it already applies log-softmax",
        ),
        (train_step_with(loss_of=F.nll_loss), FIRST + r"expected the loss .*\(F.nll_loss expects log-probabilities"),
        (
            train_step_with(loss_of=lambda s, y: F.cross_entropy(s, y, reduction="sum")),
            r"\(the loss is summed over the batch: use the mean",
        ),
        (loss_after_step, FIRST + r"expected the loss .*\(that is the loss \*after\* optimizer.step\(\), recomputed"),
        (loss_after_step_in_eval, r"\(that is the loss \*after\* optimizer.step\(\), recomputed"),
        (forward_twice, FIRST + r"the model ran 2 times in train mode, and each run moved BatchNorm's running stat"),
        (
            scores_under_no_grad,
            FIRST + r"your code raised RuntimeError: .*\(the loss has no graph to backpropagate",
        ),
        (lambda model, optimizer, images, labels: 1.0, FIRST + r"the model was never called"),
        (moves_to_the_gpu, FIRST + r"your code raised RuntimeError: .*\(this check runs on the CPU: move tensors to"),
    ],
)
def test_train_step_names_each_mistake(wrong, message):
    assert_rejected(check_train_step, wrong, message)


def evaluate_with(eval_mode=True, no_grad=True, result=lambda hits: hits.float().mean().item()):
    """A learner's evaluate with one thing changed; result(hits) turns the booleans into the answer."""

    def evaluate(model, images, labels):
        if eval_mode:
            model.eval()
        with torch.set_grad_enabled(not no_grad):
            hits = model(images).argmax(dim=1) == labels
        return result(hits)

    return evaluate


def mean_of_chunk_accuracies(model, images, labels, chunk=4):
    model.eval()
    accuracies = []
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            hits = model(images[start : start + chunk]).argmax(1) == labels[start : start + chunk]
            accuracies.append(hits.float().mean().item())
    return sum(accuracies) / len(accuracies)


def evaluate_loss(model, images, labels):
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(images), labels).item()


EVAL = r"^evaluate: for 13 images, 5 classes, 6 predicted right, "


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            evaluate_with(eval_mode=False),
            EVAL + r"the model ran in train mode .*BatchNorm normalised with each batch's own statistics, and its "
            r"running statistics changed: call model.eval\(\) first",
        ),
        (
            evaluate_with(no_grad=False),
            EVAL + r"gradients were on: the forward built a graph .*`with torch.no_grad\(\):`",
        ),
        (
            evaluate_with(result=lambda hits: 100 * hits.float().mean().item()),
            EVAL + r"expected the accuracy 0.4615, got 46.15 \(that is a percentage: return the fraction",
        ),
        (
            evaluate_with(result=lambda hits: hits.sum().item()),
            EVAL + r"expected the accuracy 0.4615, got 6 \(that is the number of right answers: divide by .* 13",
        ),
        (
            evaluate_with(result=lambda hits: hits.float().mean()),
            EVAL + r"expected a Python float, got a torch.Tensor of shape \(\): return a number, e.g. with .item\(\)",
        ),
        (evaluate_with(result=lambda hits: 1 - hits.float().mean().item()), r"\(that is the error rate"),
        (evaluate_loss, EVAL + r"expected the accuracy 0.4615, got .*\(that is the cross-entropy loss"),
        (mean_of_chunk_accuracies, r"\(you averaged the accuracies of the chunks, so the last, smaller chunk"),
        (
            evaluate_with(result=lambda hits: hits.mean().item()),
            EVAL + r"your code raised RuntimeError: .*\(turn the booleans into numbers first",
        ),
    ],
)
def test_evaluate_names_each_mistake(wrong, message):
    assert_rejected(check_evaluate, wrong, message)
