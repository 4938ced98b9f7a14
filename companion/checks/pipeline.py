"""Unit tests of a training pipeline: does the code train at all, before any tuning?

Four checks, each run before spending compute on real training:
:func:`check_training_step` (one gradient step runs and moves every parameter),
:func:`check_overfits_small_batch` (the model can drive the loss on ten examples
near zero), :func:`check_learns_leaked_label` (with the label among the features,
training must succeed) and :func:`check_reproducible` (same seed, same result).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
from sklearn.metrics import r2_score
from torch import nn

from companion._validation import (
    as_tensor,
    check_callable,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.checks._report import failure, shape_of
from companion.inference import accuracy_from_logits, predict_logits
from companion.utils import model_device, seed_everything

__all__ = [
    "check_training_step",
    "check_overfits_small_batch",
    "check_learns_leaked_label",
    "check_reproducible",
]


def check_training_step(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    example_input: torch.Tensor,
    example_target: torch.Tensor,
    *,
    lr: float = 1e-3,
) -> float:
    """Run one gradient step on a copy of ``model``: the API/spec test.

    Feed random data of the right shape (``torch.randn`` for features, random
    class indices for labels): the step must run without errors, give a finite
    scalar loss, send a non-zero gradient to every trainable parameter, and
    change every one of them. ``model`` itself is not modified.

    Args:
        model: the network to test.
        loss_fn: ``loss_fn(model(example_input), example_target)`` -> scalar tensor.
        example_input: a batch of inputs, e.g. ``torch.randn(8, n_features)``.
        example_target: the matching targets.
        lr: step size of the plain SGD step, a float > 0.

    Returns:
        The loss before the step.

    Raises:
        ModelCheckError: naming the stage (forward, loss, backward, step) or the
            parameters that failed.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> loss = check_training_step(model, nn.CrossEntropyLoss(), torch.randn(8, 3), torch.randint(0, 2, (8,)))
        >>> loss > 0
        True
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_callable("loss_fn", loss_fn)
    lr = check_float("lr", lr, low=0, low_open=True)
    trial = copy.deepcopy(model).train()
    params = {n: p for n, p in trial.named_parameters() if p.requires_grad}
    if not params:
        raise failure("check_training_step", "the model has no trainable parameters",
                      type(model).__name__, "check requires_grad: were all layers frozen?")
    device = model_device(trial)
    x, y = example_input.to(device), example_target.to(device)
    before = {n: p.detach().clone() for n, p in params.items()}
    optimizer = torch.optim.SGD(params.values(), lr=lr)
    try:
        output = trial(x)
    except Exception as error:
        raise failure("check_training_step", f"the forward pass raised {type(error).__name__}: {error}",
                      f"model(example_input) with input shape {shape_of(x)}",
                      "make the input's shape and dtype match the first layer") from error
    try:
        loss = loss_fn(output, y)
    except Exception as error:
        raise failure("check_training_step", f"the loss raised {type(error).__name__}: {error}",
                      f"loss_fn(output of shape {shape_of(output)}, target of shape {shape_of(y)})",
                      "match output and target: CrossEntropyLoss wants logits (N, C) and int64 "
                      "labels (N,), MSELoss wants equal shapes") from error
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise failure("check_training_step", f"the loss is not a scalar (shape {shape_of(loss)})",
                      "loss_fn's return value", "reduce the loss with .mean() or reduction='mean'")
    if not torch.isfinite(loss):
        raise failure("check_training_step", f"the loss is {float(loss.detach())}", "loss_fn on the first batch",
                      "look for log(0), division by zero or NaN inputs; use logits with "
                      "CrossEntropyLoss/BCEWithLogitsLoss rather than probabilities")
    optimizer.zero_grad()
    loss.backward()
    no_grad = [n for n, p in params.items() if p.grad is None]
    if no_grad:
        raise failure("check_training_step", "some parameters received no gradient",
                      f"parameters {no_grad}",
                      "make sure forward uses them and nothing detaches the graph "
                      "(.detach(), .item(), torch.no_grad, numpy round-trips)")
    zero = [n for n, p in params.items() if not bool(p.grad.any())]
    if zero:
        raise failure("check_training_step", "some parameters received a gradient of zero everywhere",
                      f"parameters {zero}",
                      "look for dead activations (all-negative ReLU inputs), a saturated "
                      "sigmoid, or an output that does not depend on these layers")
    optimizer.step()
    unchanged = [n for n, p in params.items() if torch.equal(p.detach(), before[n])]
    if unchanged:
        raise failure("check_training_step", "the optimizer step left some parameters unchanged",
                      f"parameters {unchanged}", "check that the optimizer holds these parameters")
    return float(loss.detach())


def _default_loss(y: torch.Tensor) -> Callable[..., torch.Tensor]:
    return nn.MSELoss() if y.is_floating_point() else nn.CrossEntropyLoss()


def check_overfits_small_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 500,
    lr: float = 0.1,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    max_loss: float | None = None,
) -> float:
    """Train ``model`` in place on a handful of examples with plain gradient descent.

    A working model and training loop drive the loss on ~10 easy examples close to
    zero. If they cannot, something is broken before any question of data size or
    tuning arises. Plain full-batch gradient descent (``torch.optim.SGD`` without
    momentum) keeps the optimizer out of the list of suspects.

    Args:
        model: the network (trained in place).
        x: inputs ``(N, ...)``, typically N = 10.
        y: targets ``(N, ...)``: float for regression, int64 labels for classification.
        steps: gradient steps, an int >= 1.
        lr: learning rate, a float > 0.
        loss_fn: defaults to ``MSELoss`` for float ``y`` and ``CrossEntropyLoss``
            for integer ``y``.
        max_loss: when given, raise if the final loss is above it.

    Returns:
        The loss of the final weights on ``(x, y)``.

    Raises:
        ModelCheckError: if the loss turns NaN/Inf or ends above ``max_loss``.

    Example:
        >>> _ = torch.manual_seed(0); x = torch.randn(10, 2); y = x @ torch.tensor([1.0, -2.0])
        >>> final = check_overfits_small_batch(nn.Linear(2, 1), x, y.unsqueeze(1), steps=300, lr=0.1)
        >>> final < 1e-6
        True
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("x", x)
    check_tensor("y", y)
    check_same_length("x", x, "y", y)
    steps = check_int("steps", steps, low=1)
    lr = check_float("lr", lr, low=0, low_open=True)
    if max_loss is not None:
        max_loss = check_float("max_loss", max_loss, low=0)
    loss_fn = check_callable("loss_fn", loss_fn) if loss_fn is not None else _default_loss(y)
    device = model_device(model)
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    model.train()
    for step in range(1, steps + 1):
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise failure("check_overfits_small_batch", f"the loss became {float(loss.detach())} at step {step}",
                          f"gradient descent with lr={lr}",
                          "lower the learning rate; check inputs for NaN; use logits with "
                          "CrossEntropyLoss")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = float(loss_fn(model(x), y))
    if max_loss is not None and not final <= max_loss:
        raise failure("check_overfits_small_batch",
                      f"the loss on {len(x)} examples is {final:.4g} after {steps} steps "
                      f"(must be <= {max_loss:g})",
                      f"{type(model).__name__} trained with plain gradient descent, lr={lr}",
                      "check that labels line up with inputs and the loss matches the output "
                      "(logits vs probabilities); raise steps or lr; give the model more capacity")
    return final


def _label_columns(y: torch.Tensor, num_classes: int | None) -> torch.Tensor:
    if y.is_floating_point():
        if num_classes is not None:
            raise ValueError(message("num_classes", "None for real-valued targets", num_classes))
        return y.reshape(len(y), -1).float()
    if num_classes is None:
        raise ValueError(message("num_classes", "the number of classes (an int >= 2) for class "
                                 "labels, which a batch may not all contain", None))
    num_classes = check_int("num_classes", num_classes, low=2)
    if bool((y < 0).any()) or bool((y >= num_classes).any()):
        raise ValueError(message("y", f"class labels in [0, {num_classes - 1}]", y,
                                 found=f"labels from {int(y.min())} to {int(y.max())}"))
    return nn.functional.one_hot(y.long(), num_classes).float()


def _score(y: torch.Tensor, output: torch.Tensor) -> float:
    """Accuracy for class labels (output: logits), R² for real-valued targets."""
    if not y.is_floating_point():
        return accuracy_from_logits(y, output)
    target = y.reshape(len(y), -1).double().numpy()
    return float(r2_score(target, output.reshape(target.shape).double().numpy(),
                          multioutput="variance_weighted"))


def check_learns_leaked_label(
    train_fn: Callable[[torch.Tensor, torch.Tensor], Callable[[torch.Tensor], torch.Tensor]],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    num_classes: int | None = None,
    min_score: float = 0.95,
) -> float:
    """The label-in-the-features sanity check: with the answer given, training must succeed.

    Appends the label to the features (``num_classes`` one-hot columns for class
    labels, the value itself for regression targets), trains with ``train_fn`` and
    scores the result on those same rows. Any working pipeline learns to copy the
    label and reaches a near-perfect score; if it does not, there is a bug in the
    model, the loss, the training loop or the data plumbing (e.g. labels shuffled
    apart from their rows).

    Args:
        train_fn: ``train_fn(X_leaky, y)`` trains a fresh model and returns it (or
            any callable mapping inputs to logits or values). ``X_leaky`` has more
            columns than ``X``, so build the model from ``X_leaky.shape[1]``.
        X: features ``(N, F)``.
        y: labels ``(N,)`` (int64 classes) or real targets ``(N,)``/``(N, K)``.
        num_classes: the number of classes, an int >= 2, required for class labels
            (the highest class may be absent from ``y``); ``None`` for real targets.
        min_score: accuracy (classes) or R² (regression, from
            :func:`sklearn.metrics.r2_score`) to reach, in (0, 1].

    Returns:
        The score reached with the leaked label.

    Raises:
        ModelCheckError: if the score is below ``min_score``.

    Example:
        >>> def train(X, y):
        ...     model = nn.Linear(X.shape[1], 3)
        ...     check_overfits_small_batch(model, X, y, steps=200, lr=0.5)
        ...     return model
        >>> X = torch.randn(40, 3); y = torch.randint(0, 2, (40,))  # class 2 absent here
        >>> check_learns_leaked_label(train, X, y, num_classes=3)
        1.0
    """
    check_callable("train_fn", train_fn)
    check_tensor("X", X, ndim=2, floating=True)
    check_tensor("y", y, ndim=(1, 2))
    check_same_length("X", X, "y", y)
    min_score = check_float("min_score", min_score, low=0, high=1, low_open=True)
    leaky = torch.cat([X, _label_columns(y, num_classes).to(X.device)], dim=1)
    model = check_callable("train_fn's return value", train_fn(leaky, y))
    score = _score(y.cpu(), predict_logits(model, leaky))
    kind = "R²" if y.is_floating_point() else "accuracy"
    if not score >= min_score:
        raise failure("check_learns_leaked_label",
                      f"with the label among its features the model only reached {kind} "
                      f"{score:.3f} (must be >= {min_score:g}), so the pipeline has a bug",
                      f"train_fn on {leaky.shape[1]} columns, the last {leaky.shape[1] - X.shape[1]}"
                      " being the label",
                      "check that labels stay aligned with rows through shuffling and batching, "
                      "that the optimizer steps and zeroes gradients, and that the loss matches "
                      "the output (logits vs probabilities)")
    return score


def _as_state(name: str, result: Any) -> dict[str, torch.Tensor]:
    if isinstance(result, nn.Module):
        return dict(result.state_dict())
    if isinstance(result, torch.Tensor):
        return {"output": result}
    if isinstance(result, Mapping):
        return {str(k): as_tensor(f"{name}[{k!r}]", v) for k, v in result.items()}
    raise TypeError(message(name, "an nn.Module, a tensor or a mapping of tensors", result))


def check_reproducible(
    train_fn: Callable[[], Any], seed: int = 0, *, atol: float = 0.0
) -> Any:
    """Train twice from the same seed and require the same result.

    Calls :func:`companion.utils.seed_everything` with ``seed`` before each of two
    runs of ``train_fn`` and compares every tensor of the results. On a CPU a
    properly seeded run repeats bit for bit, so the default tolerance is zero.

    Args:
        train_fn: trains from scratch and returns an ``nn.Module`` (compared by its
            ``state_dict``), a tensor (e.g. predictions) or a mapping of tensors.
        seed: the seed, an int >= 0.
        atol: largest allowed absolute difference, a float >= 0 (raise it on GPUs
            with non-deterministic kernels).

    Returns:
        The first run's result.

    Raises:
        ModelCheckError: naming the first tensor that differs and by how much.

    Example:
        >>> def train():
        ...     model = nn.Linear(2, 1)
        ...     check_overfits_small_batch(model, torch.randn(8, 2), torch.randn(8, 1), steps=5)
        ...     return model
        >>> isinstance(check_reproducible(train, seed=3), nn.Module)
        True
    """
    check_callable("train_fn", train_fn)
    seed = check_int("seed", seed, low=0, high=2**32 - 1)
    atol = check_float("atol", atol, low=0)
    seed_everything(seed)
    first = train_fn()
    seed_everything(seed)
    second = train_fn()
    a, b = _as_state("train_fn's result", first), _as_state("train_fn's result", second)
    fix = ("draw all randomness from generators seeded by seed_everything (or from `seed`): "
           "DataLoader shuffles, weight init, dropout, data splits; avoid time- or "
           "os.urandom-based seeds; on GPU set torch.use_deterministic_algorithms(True)")
    if a.keys() != b.keys():
        raise failure("check_reproducible", "the two runs returned different sets of tensors",
                      f"keys only in one run: {sorted(a.keys() ^ b.keys())}", fix)
    for key in a:
        x, y = a[key].detach().cpu(), b[key].detach().cpu()
        if x.shape != y.shape:
            raise failure("check_reproducible", f"the two runs gave shapes {tuple(x.shape)} "
                          f"and {tuple(y.shape)}", f"tensor `{key}`", fix)
        if x.is_floating_point():
            gap = float((x - y).abs().max()) if x.numel() else 0.0
            same = gap <= atol or (gap != gap and torch.equal(x.isnan(), y.isnan()))
        else:
            gap, same = float((x != y).sum()), torch.equal(x, y)
        if not same:
            raise failure("check_reproducible",
                          f"two runs with seed {seed} differ by up to {gap:.3g} (allowed {atol:g})",
                          f"tensor `{key}` (the first that differs)", fix)
    return first
