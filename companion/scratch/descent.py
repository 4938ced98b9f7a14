"""Gradient descent, stochastic gradient descent and mini-batch SGD as one loop.

The three differ only in how many examples each step's gradient is computed on:
all ``N`` (gradient descent), one (stochastic gradient descent) or ``b`` in
between (mini-batch SGD). :func:`minibatch_descent` runs any of them on a loss
written as ``loss_fn(params, X, y)``; :func:`gradient_noise` measures how far a
batch's gradient strays from the full-data gradient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from companion._validation import (
    check_callable,
    check_float,
    check_int,
    check_same_length,
    check_tensor,
    message,
)

__all__ = ["DescentRun", "LossFn", "minibatch_descent", "gradient_noise"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(params, X, y)`` returns the mean loss over the rows of ``X`` as a scalar tensor."""


@dataclass(frozen=True)
class DescentRun:
    """The record of one descent run.

    Attributes:
        batch_size: examples per step (``N`` for gradient descent, 1 for SGD).
        lr: the learning rate.
        params: the final parameters.
        loss: full-data loss before the first step and after every step.
        examples_seen: examples whose gradients were computed so far, aligned with ``loss``.
        seconds_per_step: mean wall-clock time of one step (gradient and update only).
    """

    batch_size: int
    lr: float
    params: torch.Tensor
    loss: list[float]
    examples_seen: list[int]
    seconds_per_step: float

    def loss_at_budget(self, examples: int) -> float:
        """Full-data loss after the last step that fits in a budget of ``examples``."""
        examples = check_int("examples", examples, low=0)
        last = max(i for i, seen in enumerate(self.examples_seen) if seen <= examples)
        return self.loss[last]


def _check_problem(loss_fn: LossFn, params: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> int:
    check_callable("loss_fn", loss_fn)
    check_tensor("params", params, ndim=1, floating=True, finite=True)
    check_tensor("X", X, floating=True)
    check_tensor("y", y)
    return check_same_length("X", X, "y", y)


def _gradient(loss_fn: LossFn, params: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = params.detach().requires_grad_(True)
    loss = loss_fn(p, X, y)
    if loss.ndim != 0:
        raise ValueError(message("loss_fn", "a function returning a scalar tensor", loss))
    (grad,) = torch.autograd.grad(loss, p)
    return grad


def minibatch_descent(
    loss_fn: LossFn,
    params: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    lr: float,
    epochs: int = 1,
    seed: int = 0,
) -> DescentRun:
    """Run descent with gradients from batches of ``batch_size`` shuffled examples.

    Each epoch shuffles the rows and takes ``ceil(N / batch_size)`` steps
    ``params -= lr * grad(batch)``. After every step the full-data loss is
    recorded (outside the timed part), so runs with different batch sizes can be
    compared at the same number of examples processed.

    Args:
        loss_fn: ``loss_fn(params, X, y)``, the mean loss as a scalar tensor.
        params: starting parameters, a 1-D float tensor (not modified).
        X: inputs ``(N, ...)``.
        y: targets ``(N, ...)``.
        batch_size: examples per step, an int in ``[1, N]``.
        lr: learning rate, a float > 0.
        epochs: passes over the data, an int >= 1.
        seed: seed of the shuffle.

    Returns:
        A :class:`DescentRun`.

    Example:
        >>> X = torch.randn(20, 1); y = 3 * X[:, 0]
        >>> mse = lambda w, X, y: ((X[:, 0] * w[0] - y) ** 2).mean()
        >>> run = minibatch_descent(mse, torch.zeros(1), X, y, batch_size=20, lr=0.5, epochs=20)
        >>> round(float(run.params[0]), 2)
        3.0
    """
    n = _check_problem(loss_fn, params, X, y)
    batch_size = check_int("batch_size", batch_size, low=1, high=n)
    lr = check_float("lr", lr, low=0, low_open=True)
    epochs = check_int("epochs", epochs, low=1)
    g = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    p = params.detach().clone()
    with torch.no_grad():
        losses = [float(loss_fn(p, X, y))]
    seen = [0]
    step_seconds = 0.0
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            tic = time.perf_counter()
            grad = _gradient(loss_fn, p, X[idx], y[idx])
            p = p - lr * grad
            step_seconds += time.perf_counter() - tic
            with torch.no_grad():
                losses.append(float(loss_fn(p, X, y)))
            seen.append(seen[-1] + len(idx))
    steps = len(losses) - 1
    return DescentRun(batch_size, lr, p, losses, seen, step_seconds / steps)


def gradient_noise(
    loss_fn: LossFn,
    params: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    n_batches: int = 200,
    seed: int = 0,
) -> float:
    """Mean squared distance between a batch's gradient and the full-data gradient.

    ``E ||g_batch - g_full||^2`` over ``n_batches`` random batches drawn without
    replacement. It is 0 for ``batch_size = N`` and, for independent examples,
    shrinks about as ``1 / batch_size``.

    Args:
        loss_fn: ``loss_fn(params, X, y)``, the mean loss as a scalar tensor.
        params: where to measure, a 1-D float tensor.
        X: inputs ``(N, ...)``.
        y: targets ``(N, ...)``.
        batch_size: examples per batch, an int in ``[1, N]``.
        n_batches: batches to average over, an int >= 1.
        seed: seed of the batch draws.

    Example:
        >>> X = torch.randn(50, 1); y = X[:, 0]
        >>> mse = lambda w, X, y: ((X[:, 0] * w[0] - y) ** 2).mean()
        >>> gradient_noise(mse, torch.zeros(1), X, y, batch_size=50)
        0.0
    """
    n = _check_problem(loss_fn, params, X, y)
    batch_size = check_int("batch_size", batch_size, low=1, high=n)
    n_batches = check_int("n_batches", n_batches, low=1)
    g = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    full = _gradient(loss_fn, params, X, y)
    if batch_size == n:
        return 0.0
    total = 0.0
    for _ in range(n_batches):
        idx = torch.randperm(n, generator=g)[:batch_size]
        total += float(((_gradient(loss_fn, params, X[idx], y[idx]) - full) ** 2).sum())
    return total / n_batches
