"""Training loop, history and callbacks.

:func:`fit` is the one training loop the course uses. It reports per-epoch
losses and metrics in a :class:`History`, shows a ``tqdm`` progress bar, and lets
callbacks (such as :class:`companion.regularization.EarlyStopping`) watch each
epoch and stop training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from companion._validation import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    message,
)
from companion.metrics import Metric
from companion.utils import get_device

__all__ = ["History", "TrainingState", "Callback", "fit"]


@dataclass
class History:
    """Per-epoch record of a training run.

    Attributes:
        train_loss: mean training loss of each epoch (averaged over examples).
        val_loss: mean validation loss of each epoch (empty without validation data).
        metrics: ``{"train_<name>": [...], "val_<name>": [...]}`` per epoch.
        stopped_epoch: the epoch a callback stopped training at, else ``None``.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    stopped_epoch: int | None = None

    @property
    def epochs(self) -> list[int]:
        """Epoch numbers, starting at 1."""
        return list(range(1, len(self.train_loss) + 1))

    def best_epoch(self, key: str = "val_loss", *, mode: str = "min") -> int:
        """Epoch (from 1) with the lowest (``mode="min"``) or highest value of ``key``."""
        values = self[key]
        if not values:
            raise ValueError(message("key", "a series with at least one epoch", key))
        mode = check_choice("mode", mode, ("min", "max"))
        pick = min if mode == "min" else max
        return values.index(pick(values)) + 1

    def __getitem__(self, key: str) -> list[float]:
        if key == "train_loss":
            return self.train_loss
        if key == "val_loss":
            return self.val_loss
        if key in self.metrics:
            return self.metrics[key]
        options = ("train_loss", "val_loss", *self.metrics)
        raise KeyError(message("key", f"one of {options}", key))


@dataclass
class TrainingState:
    """What callbacks see: the model, the optimizer, the epoch and the history so far.

    A callback sets ``stop = True`` to end training after the current epoch.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    stop: bool = False


@runtime_checkable
class Callback(Protocol):
    """Hooks :func:`fit` calls. Implement any of them; each receives the state."""

    def on_train_begin(self, state: TrainingState) -> None: ...

    def on_epoch_end(self, state: TrainingState) -> None: ...

    def on_train_end(self, state: TrainingState) -> None: ...


def _call(callbacks: Iterable[Any], hook: str, state: TrainingState) -> None:
    for cb in callbacks:
        method = getattr(cb, hook, None)
        if method is not None:
            method(state)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def _run_epoch(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable[..., torch.Tensor],
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
    keep_outputs: bool,
) -> tuple[float, torch.Tensor | None, torch.Tensor | None]:
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns mean loss."""
    training = optimizer is not None
    model.train(training)
    total, count = 0.0, 0
    outputs, targets = [], []
    with torch.set_grad_enabled(training):
        for batch in loader:
            x, y = _to_device(batch, device)
            out = model(x)
            loss = loss_fn(out, y)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            n = len(y)
            total += float(loss.detach()) * n
            count += n
            if keep_outputs:
                outputs.append(out.detach().cpu())
                targets.append(y.detach().cpu())
    if count == 0:
        raise ValueError(message("loader", "a loader that yields at least one batch", loader))
    if not keep_outputs:
        return total / count, None, None
    return total / count, torch.cat(targets), torch.cat(outputs)


def fit(
    model: nn.Module,
    train_loader: DataLoader | Iterable,
    *,
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    val_loader: DataLoader | Iterable | None = None,
    metrics: Mapping[str, Metric] | None = None,
    callbacks: Iterable[Any] = (),
    progress: bool = True,
    device: str | torch.device | None = None,
) -> History:
    """Train ``model`` for up to ``epochs`` epochs and return its :class:`History`.

    Each epoch makes one pass over ``train_loader`` (one optimizer step per batch),
    then evaluates on ``val_loader`` without gradients. The loss reported for an
    epoch is the mean over examples. Callbacks are called at the start, after each
    epoch (where they may set ``state.stop``) and at the end.

    Args:
        model: the network; it is moved to ``device``.
        train_loader: yields ``(x, y)`` batches.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar tensor.
        optimizer: an optimizer over ``model``'s parameters.
        epochs: maximum number of epochs, an int >= 1.
        val_loader: optional ``(x, y)`` batches for validation.
        metrics: ``{name: fn(y_true, output) -> float}`` computed on each epoch's
            outputs, on training data as ``train_<name>`` and on validation data as
            ``val_<name>``.
        callbacks: objects with any of ``on_train_begin``, ``on_epoch_end`` and
            ``on_train_end`` taking a :class:`TrainingState`.
        progress: show a ``tqdm`` progress bar over epochs.
        device: where to train; ``None`` picks :func:`companion.utils.get_device`.

    Returns:
        The run's :class:`History`.

    Example:
        >>> from companion.data import make_regression, make_loader
        >>> X, y = make_regression(64, 1)
        >>> model = torch.nn.Linear(1, 1)
        >>> history = fit(model, make_loader(X, y.unsqueeze(1)), loss_fn=torch.nn.MSELoss(),
        ...               optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=3,
        ...               progress=False, device="cpu")
        >>> len(history.train_loss)
        3
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_callable("loss_fn", loss_fn)
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    epochs = check_int("epochs", epochs, low=1)
    metrics = dict(metrics or {})
    for name, fn in metrics.items():
        check_callable(f"metrics[{name!r}]", fn)
    callbacks = tuple(callbacks)
    device = get_device(device)
    model.to(device)

    history = History()
    state = TrainingState(model=model, optimizer=optimizer, history=history)
    keep = bool(metrics)
    _call(callbacks, "on_train_begin", state)
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        state.epoch = epoch
        loss, y_true, out = _run_epoch(model, train_loader, loss_fn, device, optimizer, keep)
        history.train_loss.append(loss)
        for name, fn in metrics.items():
            history.metrics.setdefault(f"train_{name}", []).append(float(fn(y_true, out)))
        postfix = {"loss": f"{loss:.4f}"}
        if val_loader is not None:
            val_loss, y_true, out = _run_epoch(model, val_loader, loss_fn, device, None, keep)
            history.val_loss.append(val_loss)
            for name, fn in metrics.items():
                history.metrics.setdefault(f"val_{name}", []).append(float(fn(y_true, out)))
            postfix["val_loss"] = f"{val_loss:.4f}"
        bar.set_postfix(postfix)
        _call(callbacks, "on_epoch_end", state)
        if state.stop:
            history.stopped_epoch = epoch
            break
    bar.close()
    _call(callbacks, "on_train_end", state)
    return history
