"""Model tests: checks that a model, its training code and its serving path are sound.

Each check either passes quietly (returning what it measured) or raises
:class:`ModelCheckError` with a message in three parts: what failed, where
(which parameter, layer, feature or file), and what to try. ``ModelCheckError``
subclasses :class:`AssertionError`, so the checks read naturally inside pytest.
Bad *arguments* still raise ``ValueError``/``TypeError`` with the package's one
message template (see :mod:`companion._validation`).

Before training (does the code work at all?):
    :func:`smoke_step`, :func:`overfit_small_batch`, :func:`label_leak_check`,
    :func:`check_reproducible`.
Before serving (is this model fit to ship, and will the server run it?):
    :func:`quality_gate`, :func:`check_export_roundtrip`.
In production (is it still healthy?):
    :func:`training_serving_skew`, :func:`model_age` with :class:`ModelCard`,
    :func:`assert_finite`, :func:`alive_fraction`/:func:`assert_alive`,
    :func:`monitor_live_quality`.
"""

from __future__ import annotations

import copy
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
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
from companion.evaluation import ModelComparison, compare_models
from companion.utils import seed_everything

__all__ = [
    "ModelCheckError",
    "StaleModelWarning",
    "smoke_step",
    "overfit_small_batch",
    "label_leak_check",
    "check_reproducible",
    "assert_finite",
    "alive_fraction",
    "assert_alive",
    "SkewReport",
    "population_stability_index",
    "training_serving_skew",
    "ModelCard",
    "ModelAge",
    "model_age",
    "quality_gate",
    "check_export_roundtrip",
    "monitor_live_quality",
]


class ModelCheckError(AssertionError):
    """A model check failed. The message says what failed, where, and what to try."""


class StaleModelWarning(UserWarning):
    """The model's training data is older than the allowed age: retrain it."""


def _failure(check: str, what: str, where: str, fix: str) -> ModelCheckError:
    return ModelCheckError(f"{check} failed: {what}\n  Where: {where}\n  Try: {fix}")


def _module(name: str, model: Any) -> nn.Module:
    return check_instance(name, model, nn.Module, "a torch.nn.Module")


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _name(obj: Any) -> str:
    return type(obj).__name__ if isinstance(obj, nn.Module) else getattr(obj, "__qualname__", type(obj).__name__)


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


# ---------------------------------------------------------------- before training


def smoke_step(
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
        >>> loss = smoke_step(model, nn.CrossEntropyLoss(), torch.randn(8, 3), torch.randint(0, 2, (8,)))
        >>> loss > 0
        True
    """
    _module("model", model)
    check_callable("loss_fn", loss_fn)
    lr = check_float("lr", lr, low=0, low_open=True)
    trial = copy.deepcopy(model).train()
    params = {n: p for n, p in trial.named_parameters() if p.requires_grad}
    if not params:
        raise _failure("smoke_step", "the model has no trainable parameters",
                       type(model).__name__, "check requires_grad: were all layers frozen?")
    device = _device_of(trial)
    x, y = example_input.to(device), example_target.to(device)
    before = {n: p.detach().clone() for n, p in params.items()}
    optimizer = torch.optim.SGD(params.values(), lr=lr)
    try:
        output = trial(x)
    except Exception as error:
        raise _failure("smoke_step", f"the forward pass raised {type(error).__name__}: {error}",
                       f"model(example_input) with input shape {_shape(x)}",
                       "make the input's shape and dtype match the first layer") from error
    try:
        loss = loss_fn(output, y)
    except Exception as error:
        raise _failure("smoke_step", f"the loss raised {type(error).__name__}: {error}",
                       f"loss_fn(output of shape {_shape(output)}, target of shape {_shape(y)})",
                       "match output and target: CrossEntropyLoss wants logits (N, C) and int64 "
                       "labels (N,), MSELoss wants equal shapes") from error
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise _failure("smoke_step", f"the loss is not a scalar (shape {_shape(loss)})",
                       "loss_fn's return value", "reduce the loss with .mean() or reduction='mean'")
    if not torch.isfinite(loss):
        raise _failure("smoke_step", f"the loss is {float(loss.detach())}", "loss_fn on the first batch",
                       "look for log(0), division by zero or NaN inputs; use logits with "
                       "CrossEntropyLoss/BCEWithLogitsLoss rather than probabilities")
    optimizer.zero_grad()
    loss.backward()
    no_grad = [n for n, p in params.items() if p.grad is None]
    if no_grad:
        raise _failure("smoke_step", "some parameters received no gradient",
                       f"parameters {no_grad}",
                       "make sure forward uses them and nothing detaches the graph "
                       "(.detach(), .item(), torch.no_grad, numpy round-trips)")
    zero = [n for n, p in params.items() if not bool(p.grad.any())]
    if zero:
        raise _failure("smoke_step", "some parameters received a gradient of zero everywhere",
                       f"parameters {zero}",
                       "look for dead activations (all-negative ReLU inputs), a saturated "
                       "sigmoid, or an output that does not depend on these layers")
    optimizer.step()
    unchanged = [n for n, p in params.items() if torch.equal(p.detach(), before[n])]
    if unchanged:
        raise _failure("smoke_step", "the optimizer step left some parameters unchanged",
                       f"parameters {unchanged}", "check that the optimizer holds these parameters")
    return float(loss.detach())


def _default_loss(y: torch.Tensor) -> Callable[..., torch.Tensor]:
    return nn.MSELoss() if y.is_floating_point() else nn.CrossEntropyLoss()


def overfit_small_batch(
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
        >>> final = overfit_small_batch(nn.Linear(2, 1), x, y.unsqueeze(1), steps=300, lr=0.1)
        >>> final < 1e-6
        True
    """
    _module("model", model)
    check_tensor("x", x)
    check_tensor("y", y)
    check_same_length("x", x, "y", y)
    steps = check_int("steps", steps, low=1)
    lr = check_float("lr", lr, low=0, low_open=True)
    if max_loss is not None:
        max_loss = check_float("max_loss", max_loss, low=0)
    loss_fn = check_callable("loss_fn", loss_fn) if loss_fn is not None else _default_loss(y)
    device = _device_of(model)
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    model.train()
    for step in range(1, steps + 1):
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise _failure("overfit_small_batch", f"the loss became {float(loss.detach())} at step {step}",
                           f"gradient descent with lr={lr}",
                           "lower the learning rate; check inputs for NaN; use logits with "
                           "CrossEntropyLoss")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = float(loss_fn(model(x), y))
    if max_loss is not None and not final <= max_loss:
        raise _failure("overfit_small_batch",
                       f"the loss on {len(x)} examples is {final:.4g} after {steps} steps "
                       f"(must be <= {max_loss:g})",
                       f"{type(model).__name__} trained with plain gradient descent, lr={lr}",
                       "check that labels line up with inputs and the loss matches the output "
                       "(logits vs probabilities); raise steps or lr; give the model more capacity")
    return final


def _label_columns(y: torch.Tensor) -> torch.Tensor:
    if y.is_floating_point():
        return y.reshape(len(y), -1).float()
    return nn.functional.one_hot(y.long(), int(y.max()) + 1).float()


def _score(y: torch.Tensor, output: torch.Tensor) -> float:
    """Accuracy for integer labels, R² for real-valued targets."""
    if not y.is_floating_point():
        if output.ndim == 1 or output.shape[-1] == 1:
            predicted = (output.reshape(-1) > 0).long()
        else:
            predicted = output.argmax(dim=-1)
        return float((predicted == y).float().mean())
    target = y.reshape(len(y), -1).float()
    residual = ((output.reshape(target.shape) - target) ** 2).sum()
    total = ((target - target.mean(dim=0)) ** 2).sum()
    return float(1 - residual / total) if total > 0 else float(residual == 0)


def label_leak_check(
    train_fn: Callable[[torch.Tensor, torch.Tensor], Callable[[torch.Tensor], torch.Tensor]],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    min_score: float = 0.95,
) -> float:
    """The label-in-the-features sanity check: with the answer given, training must succeed.

    Appends the label to the features (one-hot columns for class labels, the value
    itself for regression targets), trains with ``train_fn`` and scores the
    result on those same rows. Any working pipeline learns to copy the label and
    reaches a near-perfect score; if it does not, there is a bug in the model, the
    loss, the training loop or the data plumbing (e.g. labels shuffled apart from
    their rows).

    Args:
        train_fn: ``train_fn(X_leaky, y)`` trains a fresh model and returns it (or
            any callable mapping inputs to outputs). ``X_leaky`` has more columns
            than ``X``, so build the model from ``X_leaky.shape[1]``.
        X: features ``(N, F)``.
        y: labels ``(N,)`` (int64 classes) or real targets ``(N,)``/``(N, K)``.
        min_score: accuracy (classes) or R² (regression) to reach, in (0, 1].

    Returns:
        The score reached with the leaked label.

    Raises:
        ModelCheckError: if the score is below ``min_score``.

    Example:
        >>> def train(X, y):
        ...     model = nn.Linear(X.shape[1], 2)
        ...     overfit_small_batch(model, X, y, steps=200, lr=0.5)
        ...     return model
        >>> X = torch.randn(40, 3); y = torch.randint(0, 2, (40,))
        >>> label_leak_check(train, X, y)
        1.0
    """
    check_callable("train_fn", train_fn)
    check_tensor("X", X, ndim=2, floating=True)
    check_tensor("y", y, ndim=(1, 2))
    check_same_length("X", X, "y", y)
    min_score = check_float("min_score", min_score, low=0, high=1, low_open=True)
    leaky = torch.cat([X, _label_columns(y)], dim=1)
    model = train_fn(leaky, y)
    check_callable("train_fn's return value", model)
    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.eval()
        leaky = leaky.to(_device_of(model))
    with torch.no_grad():
        output = model(leaky).cpu()
    if was_training:
        model.train()
    score = _score(y, output)
    kind = "R²" if y.is_floating_point() else "accuracy"
    if not score >= min_score:
        raise _failure("label_leak_check",
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
        ...     overfit_small_batch(model, torch.randn(8, 2), torch.randn(8, 1), steps=5)
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
        raise _failure("check_reproducible", "the two runs returned different sets of tensors",
                       f"keys only in one run: {sorted(a.keys() ^ b.keys())}", fix)
    for key in a:
        x, y = a[key].detach().cpu(), b[key].detach().cpu()
        if x.shape != y.shape:
            raise _failure("check_reproducible", f"the two runs gave shapes {tuple(x.shape)} "
                           f"and {tuple(y.shape)}", f"tensor `{key}`", fix)
        if x.is_floating_point():
            gap = float((x - y).abs().max()) if x.numel() else 0.0
            same = gap <= atol or (gap != gap and torch.equal(x.isnan(), y.isnan()))
        else:
            gap, same = float((x != y).sum()), torch.equal(x, y)
        if not same:
            raise _failure("check_reproducible",
                           f"two runs with seed {seed} differ by up to {gap:.3g} (allowed {atol:g})",
                           f"tensor `{key}` (the first that differs)", fix)
    return first


# ---------------------------------------------------------------- numerical health


@contextmanager
def _recorded_outputs(model: nn.Module) -> Iterator[list[tuple[str, nn.Module, Any]]]:
    """Record every submodule's output, in the order the forward pass finishes them.

    The hooks are removed on exit, even if the forward pass raised.
    """
    records: list[tuple[str, nn.Module, Any]] = []
    handles = []
    for name, module in model.named_modules():
        def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
            records.append((name or "<model>", mod, out))
        handles.append(module.register_forward_hook(hook))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def _tensors(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    if isinstance(output, Mapping):
        return [t for item in output.values() for t in _tensors(item)]
    return []


def _forward_recorded(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, Any]]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _recorded_outputs(model) as records:
            model(x.to(_device_of(model)))
    finally:
        model.train(was_training)
    return records


def _non_finite(tensor: torch.Tensor) -> str | None:
    """None if finite, else 'k NaN and m Inf among n values; first at index (..)'."""
    if not tensor.is_floating_point() and not tensor.is_complex():
        return None
    bad = ~torch.isfinite(tensor)
    if not bool(bad.any()):
        return None
    first = tuple(int(i) for i in bad.nonzero()[0].tolist())
    nan, inf = int(tensor.isnan().sum()), int(tensor.isinf().sum())
    return f"{nan} NaN and {inf} Inf among {tensor.numel()} values; the first at index {first}"


_FINITE_FIX = ("lower the learning rate or clip gradients (clip_grad_norm_), check the inputs "
               "for NaN/Inf, guard log/sqrt/division against 0, and restore the last good checkpoint")


def assert_finite(
    model_or_tensor: nn.Module | torch.Tensor,
    x: torch.Tensor | None = None,
    *,
    name: str = "model",
) -> None:
    """Fail if a tensor, or a model's weights, gradients or layer outputs hold NaN/Inf.

    For a model, every parameter, buffer and existing gradient is checked, and the
    first one holding NaN or Inf is named. With an input batch ``x``, the model
    also runs forward (in eval mode, without gradients) with a forward hook on
    every submodule; the first layer whose output is not finite is named. The
    hooks are removed afterwards.

    Args:
        model_or_tensor: an ``nn.Module`` or a tensor.
        x: an input batch for the layer-output check (models only).
        name: what to call the object in the message.

    Raises:
        ModelCheckError: naming the parameter, buffer, gradient or layer, with the
            NaN and Inf counts and the index of the first bad value.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> assert_finite(model, torch.randn(4, 2))  # passes silently
        >>> with torch.no_grad(): model[0].bias[1] = float("nan")
        >>> assert_finite(model)
        Traceback (most recent call last):
        ...
        companion.checks.ModelCheckError: assert_finite failed: parameter `0.bias` holds 1 NaN ...
    """
    check_instance("name", name, str, "a string")
    if isinstance(model_or_tensor, torch.Tensor):
        found = _non_finite(model_or_tensor)
        if found:
            raise _failure("assert_finite", f"`{name}` holds {found}",
                           f"tensor `{name}` of shape {tuple(model_or_tensor.shape)}", _FINITE_FIX)
        return
    model = check_instance("model_or_tensor", model_or_tensor, (nn.Module, torch.Tensor),
                           "an nn.Module or a tensor")
    tensors = [("parameter", n, p) for n, p in model.named_parameters()]
    tensors += [("buffer", n, b) for n, b in model.named_buffers()]
    tensors += [("gradient of", n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    for kind, pname, tensor in tensors:
        found = _non_finite(tensor.detach())
        if found:
            raise _failure("assert_finite", f"{kind} `{pname}` holds {found}",
                           f"{name}.{pname}", _FINITE_FIX)
    if x is None:
        return
    check_tensor("x", x)
    found = _non_finite(x)
    if found:
        raise _failure("assert_finite", f"the input holds {found}", "the input batch `x`",
                       "clean the data: impute or drop missing values before the model")
    for layer, module, output in _forward_recorded(model, x):
        for tensor in _tensors(output):
            found = _non_finite(tensor)
            if found:
                raise _failure("assert_finite",
                               f"the output of layer `{layer}` ({type(module).__name__}) holds "
                               f"{found}; it is the first layer to output non-finite values and "
                               "its weights are finite, so its operation overflowed or divided by 0",
                               f"{name}, layer `{layer}`", _FINITE_FIX)


def alive_fraction(
    model: nn.Module,
    x: torch.Tensor,
    *,
    layer_types: type | tuple[type, ...] | None = None,
    per: str = "unit",
) -> dict[str, float]:
    """Share of each layer's outputs that are non-zero on the batch ``x``.

    A "layer" is a leaf submodule (one without children), e.g. each ``nn.Linear``
    and each ``nn.ReLU``; activations called as functions inside a ``forward``
    count as part of their module. The model runs in eval mode without
    gradients; the forward hooks that record the outputs are removed afterwards.

    Two readings of "outputs", chosen by ``per``:

    - ``"unit"`` (default): an output is one unit of the layer (for images, one
      channel at one position); it counts as non-zero when it is non-zero for at
      least one example of the batch. A healthy ReLU layer scores near 1 and the
      share falls by exactly the units that died (they output 0 for every input).
    - ``"value"``: every output value of every example counts, so the result is
      the share of non-zero entries of the ``(N, units)`` output. A healthy ReLU
      unit is off for about half its inputs, so a healthy ReLU layer scores near
      0.5 on this reading, and dead units pull it further down.

    Args:
        model: the network.
        x: an input batch ``(N, ...)``.
        layer_types: only report layers of these types (e.g. ``nn.ReLU``).
        per: ``"unit"`` or ``"value"``, as above.

    Returns:
        ``{layer name: fraction of non-zero outputs in [0, 1]}`` in forward order.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        >>> with torch.no_grad(): _ = model[0].bias.fill_(-100.0)
        >>> alive_fraction(model, torch.randn(8, 3), layer_types=nn.ReLU)
        {'1': 0.0}
        >>> with torch.no_grad(): _ = model[0].weight.zero_(); _ = model[0].bias.copy_(torch.tensor([1., 1., 1., -1.]))
        >>> alive_fraction(model, torch.randn(8, 3), layer_types=nn.ReLU, per="value")
        {'1': 0.75}
    """
    _module("model", model)
    check_tensor("x", x)
    if per not in ("unit", "value"):
        raise ValueError(message("per", "'unit' or 'value'", per))
    if layer_types is not None and not (
        isinstance(layer_types, type) or
        (isinstance(layer_types, tuple) and all(isinstance(t, type) for t in layer_types))
    ):
        raise TypeError(message("layer_types", "a type or a tuple of types", layer_types))
    fractions: dict[str, float] = {}
    for layer, module, output in _forward_recorded(model, x):
        if any(True for _ in module.children()):
            continue
        if layer_types is not None and not isinstance(module, layer_types):
            continue
        if per == "value":
            units = [t != 0 for t in _tensors(output)]
        else:
            units = [(t != 0).reshape(len(t), -1).any(dim=0) if t.ndim >= 2 else t != 0
                     for t in _tensors(output)]
        count = sum(u.numel() for u in units)
        if count:
            fractions[layer] = sum(int(u.sum()) for u in units) / count
    return fractions


def assert_alive(
    model: nn.Module,
    x: torch.Tensor,
    *,
    min_fraction: float = 0.5,
    layer_types: type | tuple[type, ...] | None = None,
    per: str = "unit",
) -> dict[str, float]:
    """Fail unless more than ``min_fraction`` of every layer's outputs are non-zero.

    A layer whose outputs are mostly exactly zero (typically ReLUs whose inputs
    went negative for good) passes no signal forward and no gradient back.

    Args:
        model: the network.
        x: an input batch ``(N, ...)``, representative of real data.
        min_fraction: the share of non-zero outputs a layer must exceed, in [0, 1).
        layer_types: only check layers of these types (see :func:`alive_fraction`).
        per: ``"unit"`` (a unit counts if non-zero for some example) or ``"value"``
            (every output value counts); see :func:`alive_fraction`. On the
            ``"value"`` reading a healthy ReLU layer sits near 0.5, so lower
            ``min_fraction`` well below 0.5 with it.

    Returns:
        The fractions from :func:`alive_fraction`.

    Raises:
        ModelCheckError: naming every layer at or below ``min_fraction``.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 8), nn.ReLU())
        >>> with torch.no_grad(): _ = model[0].bias.fill_(5.0)
        >>> assert_alive(model, torch.randn(16, 3))["1"]
        1.0
    """
    min_fraction = check_float("min_fraction", min_fraction, low=0, high=1, high_open=True)
    fractions = alive_fraction(model, x, layer_types=layer_types, per=per)
    dead = {k: v for k, v in fractions.items() if not v > min_fraction}
    if dead:
        listed = ", ".join(f"`{k}` {v:.0%}" for k, v in dead.items())
        what = "non-zero outputs" if per == "unit" else "non-zero output values"
        raise _failure("assert_alive",
                       f"{len(dead)} layer(s) have at most {min_fraction:.0%} {what}: {listed}",
                       f"{type(model).__name__}, layers {list(dead)}",
                       "lower the learning rate (dead ReLUs), use He (kaiming) initialisation, "
                       "LeakyReLU or batch norm before the activation, and check the input scaling")
    return fractions


# ---------------------------------------------------------------- training-serving skew


def population_stability_index(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, *, eps: float = 1e-4
) -> float:
    """PSI between two histograms: ``sum((a - e) * ln(a / e))`` over bins.

    Both inputs are counts or shares per bin (normalised here). Shares are floored
    at ``eps`` so an empty bin does not give an infinite value. Rules of thumb:
    below 0.1 no real shift, 0.1–0.2 a moderate shift, above 0.2 a significant one.

    Example:
        >>> round(population_stability_index([50, 50], [50, 50]), 6)
        0.0
        >>> round(population_stability_index([50, 50], [80, 20]), 4)
        0.4159
    """
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.ndim != 1 or e.sum() <= 0 or a.sum() <= 0 or (e < 0).any() or (a < 0).any():
        raise ValueError(message("expected/actual", "two non-negative histograms of equal length",
                                 (e.shape, a.shape)))
    e = np.clip(e / e.sum(), eps, None)
    a = np.clip(a / a.sum(), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _as_frame(name: str, data: Any, feature_names: Sequence[str] | None) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame({str(k): np.asarray(v) for k, v in data.items()})
    array = as_tensor(name, data).detach().cpu().numpy() if not isinstance(data, np.ndarray) else data
    if array.ndim != 2:
        raise ValueError(message(name, "a table: a DataFrame, a mapping of columns or a 2-D array", data))
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ValueError(message("feature_names", f"{array.shape[1]} names", names))
    return pd.DataFrame(array, columns=names)


@dataclass
class SkewReport:
    """Per-feature result of :func:`training_serving_skew`.

    Attributes:
        table: one row per feature: ``kind`` (numeric/categorical), ``schema`` (the
            schema problem or ""), ``psi``, ``distance`` (KS statistic for numeric
            features, L-infinity distance of category shares for categorical ones),
            ``p_value`` (of the KS test), ``skewed`` and ``reason``.
        psi_threshold: PSI above which a feature counts as skewed.
        distance_threshold: KS / L-infinity distance above which it counts as skewed.
        alpha: KS p-value below which a numeric feature's distance counts.
    """

    table: pd.DataFrame
    psi_threshold: float
    distance_threshold: float
    alpha: float

    @property
    def skewed(self) -> list[str]:
        """Names of the features with a schema or distribution problem."""
        return self.table.index[self.table["skewed"]].tolist()

    @property
    def ok(self) -> bool:
        """True when no feature is skewed."""
        return not self.skewed

    def check(self) -> None:
        """Raise :class:`ModelCheckError` listing every skewed feature with its reason."""
        if self.ok:
            return
        reasons = "; ".join(f"`{f}`: {self.table.loc[f, 'reason']}" for f in self.skewed)
        raise _failure("training_serving_skew", f"{len(self.skewed)} feature(s) differ between "
                       f"training and serving: {reasons}", f"features {self.skewed}",
                       "compare the serving transform with the training one for these features "
                       "(same code, same fitted statistics, same units and encodings); if the world "
                       "changed instead, retrain on recent data")

    def __str__(self) -> str:
        head = "no skew" if self.ok else f"skewed features: {self.skewed}"
        return f"SkewReport({head})\n{self.table.to_string()}"

    def _repr_html_(self) -> str:
        return self.table.to_html(float_format=lambda v: f"{v:.3g}")


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _compare_feature(
    train: pd.Series, serving: pd.Series, bins: int, missing_tolerance: float,
    unseen_tolerance: float,
) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    row: dict[str, Any] = {"kind": "numeric" if _numeric(train) else "categorical", "schema": "",
                           "psi": math.nan, "distance": math.nan, "p_value": math.nan}
    if _numeric(train) != _numeric(serving):
        row["schema"] = f"type: {train.dtype} in training, {serving.dtype} in serving"
        return row
    extra_missing = serving.isna().mean() - train.isna().mean()
    if extra_missing > missing_tolerance:
        row["schema"] = f"missing values: {extra_missing:.1%} more in serving"
    t, s = train.dropna(), serving.dropna()
    if len(t) == 0 or len(s) == 0:
        row["schema"] = row["schema"] or "no non-missing values to compare"
        return row
    if row["kind"] == "numeric":
        t, s = t.to_numpy(float), s.to_numpy(float)
        edges = np.unique(np.quantile(t, np.linspace(0, 1, bins + 1)[1:-1]))
        cuts = np.concatenate([[-np.inf], edges, [np.inf]])
        e_counts = np.histogram(t, cuts)[0]
        a_counts = np.histogram(s, cuts)[0]
        row["psi"] = population_stability_index(e_counts, a_counts)
        result = ks_2samp(t, s)
        row["distance"], row["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        t_share = t.astype(str).value_counts(normalize=True)
        s_share = s.astype(str).value_counts(normalize=True)
        unseen = float(s_share.drop(t_share.index, errors="ignore").sum())
        if unseen > unseen_tolerance and not row["schema"]:
            row["schema"] = f"domain: {unseen:.1%} of serving values never seen in training"
        shares = pd.concat([t_share, s_share], axis=1).fillna(0.0).to_numpy()
        row["psi"] = population_stability_index(shares[:, 0], shares[:, 1])
        row["distance"] = float(np.abs(shares[:, 0] - shares[:, 1]).max())
    return row


def training_serving_skew(
    train: Any,
    serving: Any,
    *,
    feature_names: Sequence[str] | None = None,
    psi_threshold: float = 0.2,
    distance_threshold: float = 0.1,
    alpha: float = 0.01,
    bins: int = 10,
    missing_tolerance: float = 0.01,
    unseen_tolerance: float = 0.01,
) -> SkewReport:
    """Compare the features a model was trained on with the features it is served.

    Schema checks, per feature: present in both (a training feature missing from
    serving, or a serving column training never had, is skew); same kind (numeric
    vs categorical); no more than ``missing_tolerance`` extra share of missing
    values; for categorical features no more than ``unseen_tolerance`` of serving
    values outside the training domain.

    Distribution checks, per feature present in both:

    - PSI (population stability index) over ``bins`` training-quantile bins for
      numeric features, over categories for categorical ones. Flagged above
      ``psi_threshold``: the usual reading is < 0.1 stable, 0.1–0.2 moderate
      shift, > 0.2 significant shift.
    - numeric: the two-sample Kolmogorov–Smirnov statistic (largest gap between
      the two empirical CDFs, from :func:`scipy.stats.ks_2samp`, whose p-value is
      reported too); categorical: the L-infinity distance between category
      shares (the largest change of any category's share; TFDV's skew measure).
      Flagged above ``distance_threshold`` (0.1: some value range or category
      gained or lost 10 % of the traffic). A numeric feature is flagged by KS
      only when the p-value is also below ``alpha``: the distance alone
      flags sampling noise in small serving windows, the p-value alone flags
      tiny, harmless shifts in large ones.

    Args:
        train: training features: a DataFrame, a mapping of columns, or a 2-D
            array/tensor (named by ``feature_names``).
        serving: serving features, in the same form.
        feature_names: column names for array/tensor inputs.
        psi_threshold: a float > 0.
        distance_threshold: a float in (0, 1].
        alpha: significance level of the KS test, a float in (0, 1).
        bins: quantile bins for numeric PSI, an int >= 2.
        missing_tolerance: allowed increase of the missing-value share, in [0, 1].
        unseen_tolerance: allowed share of unseen categories, in [0, 1].

    Returns:
        A :class:`SkewReport`; call ``.check()`` to raise on skew.

    Example:
        >>> g = np.random.default_rng(0)
        >>> train = {"age": g.normal(40, 10, 2000), "country": g.choice(["fr", "de"], 2000)}
        >>> serving = {"age": g.normal(40, 10, 500) / 10, "country": g.choice(["fr", "de"], 500)}
        >>> training_serving_skew(train, serving).skewed
        ['age']
    """
    psi_threshold = check_float("psi_threshold", psi_threshold, low=0, low_open=True)
    distance_threshold = check_float("distance_threshold", distance_threshold, low=0, high=1, low_open=True)
    alpha = check_float("alpha", alpha, low=0, high=1, low_open=True, high_open=True)
    bins = check_int("bins", bins, low=2)
    missing_tolerance = check_float("missing_tolerance", missing_tolerance, low=0, high=1)
    unseen_tolerance = check_float("unseen_tolerance", unseen_tolerance, low=0, high=1)
    t_frame = _as_frame("train", train, feature_names)
    s_frame = _as_frame("serving", serving, feature_names)
    rows = {}
    for feature in list(t_frame.columns) + [c for c in s_frame.columns if c not in t_frame.columns]:
        if feature not in s_frame.columns or feature not in t_frame.columns:
            where = "serving" if feature not in s_frame.columns else "training"
            frame = t_frame if feature in t_frame.columns else s_frame
            rows[feature] = {"kind": "numeric" if _numeric(frame[feature]) else "categorical",
                             "schema": f"presence: missing in {where}", "psi": math.nan,
                             "distance": math.nan, "p_value": math.nan}
            continue
        rows[feature] = _compare_feature(t_frame[feature], s_frame[feature], bins,
                                         missing_tolerance, unseen_tolerance)
    table = pd.DataFrame.from_dict(rows, orient="index")
    reasons = []
    for _, row in table.iterrows():
        parts = [row["schema"]] if row["schema"] else []
        if row["psi"] > psi_threshold:
            parts.append(f"PSI {row['psi']:.3g} > {psi_threshold:g}")
        significant = row["kind"] == "categorical" or row["p_value"] < alpha
        if row["distance"] > distance_threshold and significant:
            label = "KS" if row["kind"] == "numeric" else "L-inf"
            parts.append(f"{label} distance {row['distance']:.3g} > {distance_threshold:g}")
        reasons.append("; ".join(parts))
    table["reason"] = reasons
    table["skewed"] = table["reason"] != ""
    table.index.name = "feature"
    return SkewReport(table[["kind", "schema", "psi", "distance", "p_value", "skewed", "reason"]],
                      psi_threshold, distance_threshold, alpha)


# ---------------------------------------------------------------- model age


def _aware(name: str, value: Any) -> datetime:
    check_instance(name, value, datetime, "a datetime")
    if value.tzinfo is None:
        raise ValueError(message(name, "a timezone-aware datetime (e.g. tzinfo=timezone.utc)", value))
    return value


@dataclass(frozen=True)
class ModelCard:
    """What a model carries through the pipeline so its age can be checked anywhere.

    Store ``card.to_dict()`` with the weights (e.g. in
    :func:`companion.training.save_checkpoint`'s ``extra``) and rebuild it with
    :meth:`from_dict` wherever the model is loaded.

    Attributes:
        name: the model's name.
        trained_at: when training finished (timezone-aware).
        data_start: the earliest time covered by the training data.
        data_end: the latest time covered by the training data (the model knows
            nothing newer).
        metrics: evaluation results at training time.

    Example:
        >>> card = ModelCard("churn", datetime(2024, 2, 1, tzinfo=timezone.utc),
        ...                  datetime(2023, 1, 1, tzinfo=timezone.utc),
        ...                  datetime(2024, 1, 31, tzinfo=timezone.utc))
        >>> ModelCard.from_dict(card.to_dict()) == card
        True
    """

    name: str
    trained_at: datetime
    data_start: datetime
    data_end: datetime
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_instance("name", self.name, str, "a string")
        for key in ("trained_at", "data_start", "data_end"):
            _aware(key, getattr(self, key))
        if self.data_start > self.data_end:
            raise ValueError(message("data_end", f"on or after data_start {self.data_start}", self.data_end))
        if self.data_end > self.trained_at:
            raise ValueError(message("trained_at", f"on or after data_end {self.data_end}", self.trained_at))

    def to_dict(self) -> dict[str, Any]:
        """Plain strings and numbers (ISO 8601 times), safe for JSON and checkpoints."""
        return {"name": self.name, "trained_at": self.trained_at.isoformat(),
                "data_start": self.data_start.isoformat(), "data_end": self.data_end.isoformat(),
                "metrics": {k: float(v) for k, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Rebuild a card from :meth:`to_dict`'s output."""
        check_instance("data", data, Mapping, "a mapping from ModelCard.to_dict()")
        return cls(str(data["name"]), datetime.fromisoformat(data["trained_at"]),
                   datetime.fromisoformat(data["data_start"]),
                   datetime.fromisoformat(data["data_end"]), dict(data.get("metrics", {})))


@dataclass(frozen=True)
class ModelAge:
    """How old a model is at some moment (see :func:`model_age`).

    Attributes:
        since_training: time since ``trained_at``.
        since_data: time since ``data_end``: how out of date the model's knowledge is.
        stale: ``since_data`` is above the allowed age.
    """

    since_training: timedelta
    since_data: timedelta
    stale: bool


def model_age(
    card: ModelCard, *, now: datetime | None = None, max_age: timedelta = timedelta(days=30)
) -> ModelAge:
    """Age of a model at ``now``; warns with :class:`StaleModelWarning` if it is stale.

    Staleness is measured from the end of the training data window, not from the
    training run: a model retrained yesterday on year-old data knows nothing of
    the past year. How old is too old depends on how fast the world changes; the
    ML Test Score paper suggests measuring how quality decays with age to choose
    ``max_age``.

    Args:
        card: the model's :class:`ModelCard`.
        now: the moment to measure at (timezone-aware); the current time by default.
        max_age: the largest allowed ``now - card.data_end``, a positive timedelta.

    Returns:
        A :class:`ModelAge`.

    Example:
        >>> card = ModelCard("m", datetime(2024, 1, 2, tzinfo=timezone.utc),
        ...                  datetime(2023, 1, 1, tzinfo=timezone.utc),
        ...                  datetime(2024, 1, 1, tzinfo=timezone.utc))
        >>> model_age(card, now=datetime(2024, 1, 11, tzinfo=timezone.utc)).since_data.days
        10
    """
    check_instance("card", card, ModelCard, "a ModelCard")
    check_instance("max_age", max_age, timedelta, "a timedelta")
    if max_age <= timedelta(0):
        raise ValueError(message("max_age", "a positive timedelta", str(max_age)))
    now = datetime.now(timezone.utc) if now is None else _aware("now", now)
    if now < card.trained_at:
        raise ValueError(message("now", f"on or after trained_at {card.trained_at}", now))
    age = ModelAge(now - card.trained_at, now - card.data_end, now - card.data_end > max_age)
    if age.stale:
        warnings.warn(
            f"model_age: model `{card.name}` is stale: its newest training data "
            f"({card.data_end:%Y-%m-%d}) is {age.since_data.days} days old, more than the "
            f"allowed {max_age.days} days.\n  Where: ModelCard of `{card.name}`, trained "
            f"{card.trained_at:%Y-%m-%d}.\n  Try: retrain on recent data (and check the "
            "retraining schedule runs), or raise max_age if quality is shown to decay slowly.",
            StaleModelWarning,
            stacklevel=2,
        )
    return age


# ---------------------------------------------------------------- before serving


def quality_gate(
    candidate: Callable[[torch.Tensor], torch.Tensor],
    baseline: Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    *,
    metric: str | Callable[[torch.Tensor, torch.Tensor], float],
    min_gain: float = 0.0,
    min_score: float | None = None,
    higher_is_better: bool | None = None,
) -> ModelComparison:
    """Block a candidate model from serving unless it beats the baseline on the same data.

    Built on :func:`companion.evaluation.compare_models`: both models are scored on
    the same held-out ``data``; the candidate passes when its gain over
    ``baseline`` (the model in production, or a simple baseline for a first
    model) is at least ``min_gain`` and, if given, its own score reaches
    ``min_score`` (an absolute floor, in the metric's direction).

    Args:
        candidate: the model that wants to ship, a callable ``X -> output``.
        baseline: the model to beat, same contract.
        data: held-out ``(X, y)`` neither model trained on.
        metric: a name known to :func:`~companion.evaluation.compare_models`
            (e.g. ``"accuracy"``, ``"roc_auc"``) or a callable ``metric(y, output)``.
        min_gain: the least improvement to ship, a float.
        min_score: the worst acceptable candidate score, or ``None``.
        higher_is_better: the metric's direction (needed for a callable metric).

    Returns:
        The :class:`~companion.evaluation.ModelComparison`, when the gate passes.

    Raises:
        ModelCheckError: with the comparison's reason, when the gate blocks.

    Example:
        >>> X = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]]); y = torch.tensor([0, 0, 1, 1])
        >>> quality_gate(lambda x: x[:, 0], lambda x: -x[:, 0], (X, y), metric="accuracy").gain
        1.0
    """
    result = compare_models(candidate, baseline, data, metric=metric, min_gain=min_gain,
                            higher_is_better=higher_is_better)
    if min_score is not None:
        min_score = check_float("min_score", min_score)
        short = (result.candidate_score < min_score if result.higher_is_better
                 else result.candidate_score > min_score)
        if short or math.isnan(result.candidate_score):
            raise _failure("quality_gate", f"the candidate's {result.metric} "
                           f"{result.candidate_score:.4g} misses the floor {min_score:.4g}",
                           f"candidate {_name(candidate)} on {len(data[1])} held-out examples",
                           "find what the model gets wrong (per-slice metrics, errors by class) "
                           "before shipping; do not lower the floor to pass")
    if not result.deploy:
        raise _failure("quality_gate", result.reason,
                       f"candidate {_name(candidate)} vs baseline {_name(baseline)}, "
                       f"{len(data[1])} held-out examples",
                       "keep serving the baseline; improve the candidate (features, capacity, "
                       "tuning) or check it was trained and exported from the right run")
    return result


def check_export_roundtrip(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    path: str | Path | None = None,
    dynamic_batch: bool = True,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Export the model as a serving system would load it, reload it, compare outputs.

    The model is exported with :func:`torch.export.export` (the batch dimension
    dynamic unless ``dynamic_batch=False``), saved to a ``.pt2`` file, loaded
    back with :func:`torch.export.load`, and run on ``example_input`` and on its
    first row (a batch of one, as online serving sends). Outputs must match the
    original model's in eval mode. (TorchScript, the older route, is deprecated in
    recent PyTorch.)

    Args:
        model: the network (put in eval mode for the check, then restored).
        example_input: a batch ``(N, ...)`` with N >= 2.
        path: where to write the ``.pt2`` file; a temporary file by default.
        dynamic_batch: export with a dynamic batch dimension.
        atol: absolute tolerance of the comparison, a float >= 0.
        rtol: relative tolerance of the comparison, a float >= 0.

    Returns:
        The reloaded model as a callable module.

    Raises:
        ModelCheckError: if export, saving or loading fails, or outputs differ.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> served = check_export_roundtrip(model, torch.randn(5, 3))
        >>> tuple(served(torch.randn(2, 3)).shape)
        (2, 1)
    """
    _module("model", model)
    check_tensor("example_input", example_input)
    if len(example_input) < 2:
        raise ValueError(message("example_input", "a batch of at least 2 rows", example_input))
    atol = check_float("atol", atol, low=0)
    rtol = check_float("rtol", rtol, low=0)
    x = example_input.to(_device_of(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = [model(x)]
            try:
                expected.append(model(x[:1]) if dynamic_batch else expected[0])
            except Exception as error:
                raise _failure("check_export_roundtrip",
                               f"the model itself fails on a batch of one row: {error}",
                               f"{type(model).__name__}.forward with input shape {_shape(x[:1])}",
                               "do not hard-code the batch size (use x.shape[0] or -1)") from error
        shapes = ({0: torch.export.Dim.DYNAMIC},) if dynamic_batch else None
        try:
            program = torch.export.export(model, (x,), dynamic_shapes=shapes)
        except Exception as error:
            raise _failure("check_export_roundtrip",
                           f"torch.export could not capture the model: {type(error).__name__}: "
                           f"{str(error).splitlines()[0]}",
                           f"{type(model).__name__}.forward with input shape {_shape(x)}",
                           "remove Python control flow that depends on tensor values (use "
                           "torch.where/torch.cond) and shapes hard-coded to the batch size "
                           "(use x.shape[0] or -1)") from error
        with tempfile.TemporaryDirectory() as folder:
            file = Path(path) if path is not None else Path(folder) / "model.pt2"
            torch.export.save(program, file)
            served = torch.export.load(file).module()
        with torch.no_grad():
            actual = [served(x), served(x[:1]) if dynamic_batch else served(x)]
    finally:
        model.train(was_training)
    for batch, want, got in zip(("the example batch", "a batch of one row"), expected, actual, strict=True):
        for i, (w, g) in enumerate(zip(_tensors(want), _tensors(got), strict=True)):
            if w.shape != g.shape or not torch.allclose(w, g, atol=atol, rtol=rtol, equal_nan=True):
                gap = float((w - g).abs().max()) if w.shape == g.shape else math.inf
                raise _failure("check_export_roundtrip",
                               f"the reloaded model's output {i} differs from the original's by up "
                               f"to {gap:.3g} (atol={atol:g}, rtol={rtol:g})",
                               f"{batch}, input shape {_shape(x if batch[0] == 't' else x[:1])}",
                               "make forward deterministic in eval mode (no random draws, dropout "
                               "off) and keep all state in parameters or registered buffers")
    return served


# ---------------------------------------------------------------- in production


def monitor_live_quality(
    y_true: Any,
    y_pred: Any,
    *,
    metric: Callable[[torch.Tensor, torch.Tensor], float],
    window: int,
    min_value: float,
) -> pd.DataFrame:
    """Score a served model on consecutive windows of logged traffic, flagging bad windows.

    In production the labels arrive after the predictions (a click, a payment, a
    human review). Joining them to the prediction log and scoring each window of
    ``window`` requests shows quality as it is *now*, which offline test sets
    cannot: drift in the world shows up as windows falling below ``min_value``.

    Args:
        y_true: labels in serving order, shape ``(N,)``.
        y_pred: the logged predictions, shape ``(N, ...)``.
        metric: ``metric(y_true_window, y_pred_window) -> float``, higher is better
            (negate an error to use it).
        window: requests per window, an int >= 1 (a last partial window is dropped).
        min_value: the alert threshold.

    Returns:
        A DataFrame with one row per window: ``start``, ``stop``, ``value`` and
        ``alert`` (value below ``min_value``).

    Example:
        >>> accuracy = lambda t, p: float((t == p).float().mean())
        >>> y = torch.tensor([1, 1, 0, 0, 1, 0]); p = torch.tensor([1, 1, 0, 1, 0, 1])
        >>> monitor_live_quality(y, p, metric=accuracy, window=3, min_value=0.5)["alert"].tolist()
        [False, True]
    """
    t, p = as_tensor("y_true", y_true), as_tensor("y_pred", y_pred)
    n = check_same_length("y_true", t, "y_pred", p)
    check_callable("metric", metric)
    window = check_int("window", window, low=1, high=n)
    min_value = check_float("min_value", min_value)
    rows = []
    for start in range(0, n - window + 1, window):
        value = float(metric(t[start:start + window], p[start:start + window]))
        rows.append({"start": start, "stop": start + window, "value": value,
                     "alert": value < min_value})
    return pd.DataFrame(rows)
