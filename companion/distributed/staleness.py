"""Stale gradients, as asynchronous parameter servers make them, simulated with a set staleness.

With asynchronous parameter servers a worker pulls the parameters, computes a gradient
and pushes it; meanwhile the other workers' gradients have been applied, so the
server applies a gradient computed on parameters ``s`` updates old (its *staleness*).
With ``W`` workers taking turns, ``s = W - 1``. :func:`train_stale_sgd` runs that in
one process, deterministically: update ``t`` applies the gradient taken at the
parameters of update ``t - s``. With ``staleness=0`` it is plain synchronous SGD, the
updates all-reduce data parallelism makes (:func:`~companion.distributed.ddp.train_ddp`
with ``momentum=0``). A real parameter server measures the staleness of every gradient
it applies (:func:`~companion.distributed.parameter_server.train_parameter_server`).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
)
from companion.distributed.roles import global_batches

__all__ = ["StaleRun", "train_stale_sgd"]


@dataclass
class StaleRun:
    """The record of a :func:`train_stale_sgd` run.

    Attributes:
        losses: the mean loss on the whole training set before the first update and
            after each update, ``steps + 1`` values.
        staleness: per update, how many updates old the parameters its gradient was
            computed on were (``min(t, s)`` for update ``t`` counted from 0).
        state_dict: the final weights.
    """

    losses: list[float] = field(default_factory=list)
    staleness: list[int] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)


def train_stale_sgd(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    staleness: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
) -> StaleRun:
    """SGD in which every gradient is ``staleness`` updates old, as under asynchronous parameter servers.

    The batches are the global batches of a distributed job (:func:`global_batches`,
    the same ``seed``), so ``staleness=0`` takes the same steps as
    :func:`~companion.distributed.ddp.train_ddp` with ``momentum=0``. Update ``t``
    (from 0) computes the gradient of batch ``t`` at the parameters after update
    ``max(0, t - staleness)`` and applies it to the current ones: ``p -= lr * g``.
    The first ``staleness`` updates are less stale, as at the start of a real job.

    Args:
        model: the initial model; it is copied, not changed.
        X: training features ``(N, ...)``, a float tensor.
        y: training targets ``(N, ...)``.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar mean loss.
        staleness: updates between the parameters a gradient is computed on and
            those it is applied to, an int >= 0 (``W - 1`` for ``W`` workers in turn).
        epochs: passes over the data, an int >= 1.
        batch_size: rows per batch, an int in [1, N].
        lr: the learning rate, a float > 0.
        seed: seeds the batches' order, an int >= 0.

    Returns:
        A :class:`StaleRun`: the training loss after each update, each update's
        staleness and the final weights.

    Example:
        >>> from companion.data import make_regression
        >>> X, y = make_regression(64, 3)
        >>> run = train_stale_sgd(nn.Linear(3, 1), X, y.unsqueeze(1), loss_fn=nn.MSELoss(),
        ...                       staleness=2, epochs=1, batch_size=16, lr=0.1)
        >>> run.staleness, len(run.losses)
        ([0, 1, 2, 2], 5)
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("X", X, floating=True)
    check_tensor("y", y)
    check_same_length("X", X, "y", y)
    check_callable("loss_fn", loss_fn)
    staleness = check_int("staleness", staleness, low=0)
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1, high=len(X))
    lr = check_float("lr", lr, low=0, low_open=True)
    seed = check_int("seed", seed, low=0)

    model = copy.deepcopy(model)
    params = list(model.parameters())
    current = parameters_to_vector(params).detach().clone()
    versions: deque[torch.Tensor] = deque([current], maxlen=staleness + 1)  # the last s + 1 versions
    run = StaleRun(losses=[_loss(model, X, y, loss_fn)])
    for epoch in range(1, epochs + 1):
        for rows in global_batches(len(X), batch_size=batch_size, epoch=epoch, seed=seed):
            step = len(run.staleness)
            vector_to_parameters(versions[0], params)  # the oldest kept: version max(0, step - s)
            loss = loss_fn(model(X[rows]), y[rows])
            model.zero_grad(set_to_none=True)
            loss.backward()
            grad = parameters_to_vector(p.grad for p in params)
            current = current - lr * grad
            versions.append(current)
            run.staleness.append(min(step, staleness))
            vector_to_parameters(current, params)
            run.losses.append(_loss(model, X, y, loss_fn))
    vector_to_parameters(current, params)
    run.state_dict = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return run


def _loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> float:
    with torch.no_grad():
        return float(loss_fn(model(X), y))
