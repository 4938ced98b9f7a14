"""Large global batches: scale the learning rate with the batch, and warm it up.

Adding data-parallel workers grows the global batch: ``k`` times the batch means ``k``
times fewer steps per epoch. Each step averages ``k`` times more examples, so its
gradient is about as long but less noisy; with the same learning rate an epoch then
moves the weights about ``k`` times less far. The **linear scaling rule** multiplies
the rate by ``k`` (:func:`scaled_lr`); because a large rate from the first step can
throw a fresh network far off, it is reached by a **warm-up**, a ramp over the
first steps (:func:`warmup_factor`, :func:`linear_warmup`). :func:`train_sgd` trains
with both, on the global batches of a distributed job.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from companion._validation import (
    check_callable,
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
)
from companion.distributed.roles import global_batches

__all__ = ["SGDRun", "linear_warmup", "scaled_lr", "train_sgd", "warmup_factor"]

_RULES = ("linear", "sqrt", "none")


def scaled_lr(base_lr: float, *, base_batch_size: int, batch_size: int, rule: str = "linear") -> float:
    """The learning rate for ``batch_size``, given one that works at ``base_batch_size``.

    Args:
        base_lr: the rate tuned at ``base_batch_size``, a float > 0.
        base_batch_size: the batch size it was tuned at, an int >= 1.
        batch_size: the new (global) batch size, an int >= 1.
        rule: ``"linear"`` (``base_lr * k`` with ``k = batch_size / base_batch_size``,
            the rule for SGD), ``"sqrt"`` (``base_lr * sqrt(k)``, often used with Adam)
            or ``"none"`` (``base_lr`` unchanged).

    Returns:
        The scaled rate, a float.

    Example:
        >>> scaled_lr(0.1, base_batch_size=32, batch_size=256)
        0.8
        >>> scaled_lr(0.1, base_batch_size=32, batch_size=32)  # nothing to scale
        0.1
    """
    base_lr = check_float("base_lr", base_lr, low=0, low_open=True)
    base_batch_size = check_int("base_batch_size", base_batch_size, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    rule = check_choice("rule", rule, _RULES)
    k = batch_size / base_batch_size
    factor = {"linear": k, "sqrt": math.sqrt(k), "none": 1.0}[rule]
    return base_lr * factor


def warmup_factor(step: int, *, warmup_steps: int) -> float:
    """The share of the full learning rate at ``step`` (from 0) of a linear warm-up.

    The rate rises in equal steps, ``(step + 1) / warmup_steps``, and reaches the full
    rate at step ``warmup_steps - 1``; ``warmup_steps=0`` means no warm-up.

    Args:
        step: the optimizer step, from 0, an int >= 0.
        warmup_steps: steps of the ramp, an int >= 0.

    Returns:
        A float in (0, 1].

    Example:
        >>> [warmup_factor(step, warmup_steps=4) for step in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """
    step = check_int("step", step, low=0)
    warmup_steps = check_int("warmup_steps", warmup_steps, low=0)
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def linear_warmup(optimizer: torch.optim.Optimizer, *, warmup_steps: int) -> LambdaLR:
    """A scheduler that ramps ``optimizer``'s rates up over ``warmup_steps`` steps (:func:`warmup_factor`).

    Call its ``step()`` after every ``optimizer.step()``.

    Example:
        >>> optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.8)
        >>> scheduler = linear_warmup(optimizer, warmup_steps=4)
        >>> rates = []
        >>> for _ in range(5):
        ...     rates.append(round(optimizer.param_groups[0]["lr"], 3))
        ...     optimizer.step()
        ...     scheduler.step()
        >>> rates
        [0.2, 0.4, 0.6, 0.8, 0.8]
    """
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    warmup_steps = check_int("warmup_steps", warmup_steps, low=0)
    return LambdaLR(optimizer, lambda step: warmup_factor(step, warmup_steps=warmup_steps))


@dataclass
class SGDRun:
    """The record of a :func:`train_sgd` run.

    Attributes:
        losses: mean training loss of each epoch (over its batches).
        lrs: the learning rate of every step.
        state_dict: the final weights.
    """

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)


def train_sgd(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    warmup_steps: int = 0,
    momentum: float = 0.0,
    seed: int = 0,
) -> SGDRun:
    """SGD with a linear warm-up, on the global batches a distributed job of any size takes.

    The batches are :func:`~companion.distributed.roles.global_batches` (the last
    incomplete one dropped): the steps that data-parallel workers sharing a global
    batch of ``batch_size`` take together (:func:`~companion.distributed.ddp.train_ddp`),
    here in one process.

    Args:
        model: the initial model; it is copied, not changed.
        X: training features ``(N, ...)``, a float tensor.
        y: training targets ``(N, ...)``.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar mean loss.
        epochs: passes over the data, an int >= 1.
        batch_size: rows per global batch, an int in [1, N].
        lr: the full learning rate, a float > 0.
        warmup_steps: steps of the linear ramp up to ``lr`` (:func:`warmup_factor`),
            an int >= 0.
        momentum: SGD momentum, a float in [0, 1).
        seed: seeds the batches' order, an int >= 0.

    Returns:
        An :class:`SGDRun`: loss per epoch, rate per step, final weights.

    Example:
        >>> from companion.data import make_regression
        >>> X, y = make_regression(64, 3)
        >>> run = train_sgd(nn.Linear(3, 1), X, y.unsqueeze(1), loss_fn=nn.MSELoss(), epochs=2,
        ...                 batch_size=16, lr=0.2, warmup_steps=4)
        >>> [round(lr, 2) for lr in run.lrs]
        [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.2, 0.2]
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("X", X, floating=True)
    check_tensor("y", y)
    check_same_length("X", X, "y", y)
    check_callable("loss_fn", loss_fn)
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1, high=len(X))
    lr = check_float("lr", lr, low=0, low_open=True)
    momentum = check_float("momentum", momentum, low=0, high=1, high_open=True)
    seed = check_int("seed", seed, low=0)

    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    scheduler = linear_warmup(optimizer, warmup_steps=warmup_steps)
    run = SGDRun()
    for epoch in range(1, epochs + 1):
        total = 0.0
        batches = global_batches(len(X), batch_size=batch_size, epoch=epoch, seed=seed)
        for rows in batches:
            loss = loss_fn(model(X[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
        run.losses.append(total / len(batches))
    run.state_dict = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return run
