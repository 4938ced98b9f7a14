"""Static versus dynamic training on a data stream, with progressive validation and guards.

A *static* model is trained once (:func:`train_static`) and then only predicts
(:func:`evaluate_stream`); when the data drift it goes stale. A *dynamic* model
(:class:`DynamicTrainer`) is updated on every batch as it arrives. It is validated
progressively: each batch is first predicted, and scored, by the model that has
not seen it yet, and only then used for training, so every example serves as test
data once, on the model that was live at the time, without a fixed test split.

Training on live data needs guards (:class:`Guard`): a batch with broken inputs
is quarantined before training; a batch whose update makes the model worse on the
last good batch is quarantined and the model rolled back to its last good version.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    check_tensor,
    message,
)
from companion.data import TensorData, make_loader
from companion.inference import accuracy_from_logits, predict_logits
from companion.metrics import Metric
from companion.training import History, fit
from companion.utils import model_device

__all__ = [
    "BatchRecord",
    "StreamLog",
    "Guard",
    "DynamicTrainer",
    "train_static",
    "evaluate_stream",
]


def _unpack(batch: Any, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        X, y = batch
    except (TypeError, ValueError):
        raise TypeError(message(f"stream[{index}]", "a pair (X, y)", batch)) from None
    check_tensor(f"stream[{index}].X", X)
    check_tensor(f"stream[{index}].y", y)
    if len(X) != len(y):
        raise ValueError(message(f"stream[{index}]", "X and y of the same length", (len(X), len(y))))
    return X, y


def evaluate_stream(model: Callable[[torch.Tensor], torch.Tensor], stream: Iterable[Any], *,
                    metric: Metric = accuracy_from_logits) -> list[float]:
    """Score a fixed (static) model on each batch of a stream, without training.

    Args:
        model: callable ``X -> output``.
        stream: batches ``(X, y)`` such as :func:`companion.data.make_drifting_stream` yields.
        metric: ``metric(y, output) -> float``; accuracy of logits by default.

    Returns:
        One score per batch.

    Example:
        >>> from companion.data import make_drifting_stream
        >>> scores = evaluate_stream(lambda x: x[:, 0], make_drifting_stream(3, 200, drift=1.5))
        >>> scores[0] > 0.8 > scores[2]
        True
    """
    check_callable("model", model)
    check_callable("metric", metric)
    scores = []
    for i, batch in enumerate(stream):
        X, y = _unpack(batch, i)
        scores.append(float(metric(y, predict_logits(model, X))))
    return scores


def train_static(
    model: nn.Module,
    batches: Sequence[Any],
    *,
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int = 32,
    seed: int = 0,
) -> History:
    """Train a static model once, offline, on the batches collected so far.

    The batches are pooled and passed to :func:`companion.training.fit` for
    ``epochs`` epochs; afterwards the model is frozen in time.

    Args:
        model: the network.
        batches: ``(X, y)`` pairs to pool, at least one.
        loss_fn: ``loss_fn(model(X), y)``.
        optimizer: over ``model``'s parameters.
        epochs: an int >= 1.
        batch_size: mini-batch size, an int >= 1.
        seed: seed of the mini-batch shuffle.

    Returns:
        The :class:`~companion.training.History` of the run.

    Example:
        >>> from companion.data import make_drifting_stream
        >>> model = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
        >>> history = train_static(model, make_drifting_stream(2, 50), loss_fn=nn.BCEWithLogitsLoss(),
        ...     optimizer=torch.optim.SGD(model.parameters(), lr=0.5), epochs=2)
        >>> len(history.train_loss)
        2
    """
    if len(batches) == 0:
        raise ValueError(message("batches", "at least one batch", batches))
    pairs = [_unpack(b, i) for i, b in enumerate(batches)]
    X = torch.cat([p[0] for p in pairs])
    y = torch.cat([p[1] for p in pairs])
    loader = make_loader(X, y, batch_size=batch_size, seed=seed)
    return fit(model, loader, loss_fn=loss_fn, optimizer=optimizer, epochs=epochs, progress=False)


@dataclass(frozen=True)
class Guard:
    """What the dynamic trainer checks before and after each update.

    Attributes:
        max_drop: roll back an update that lowers the metric on the last accepted
            batch by more than this (a float > 0), or ``None`` for no check.
        max_score_drop: quarantine, before training, a batch on which the live
            model scores more than this below its mean progressive score over the
            last ``window`` accepted batches (a float > 0; a sudden collapse points
            at bad labels rather than drift), or ``None`` for no check.
        max_label_shift: quarantine a batch whose positive-label rate differs from
            the running rate of accepted batches by more than this (a float in
            ``(0, 1]``), or ``None`` for no check.
        window: how many recent accepted batches ``max_score_drop`` compares with.

    Batches with non-finite features or labels are always quarantined.
    """

    max_drop: float | None = 0.1
    max_score_drop: float | None = None
    max_label_shift: float | None = None
    window: int = 5

    def __post_init__(self) -> None:
        for name in ("max_drop", "max_score_drop"):
            value = getattr(self, name)
            if value is not None:
                check_float(name, value, low=0, low_open=True)
        check_int("window", self.window, low=1)
        if self.max_label_shift is not None:
            check_float("max_label_shift", self.max_label_shift, low=0, high=1, low_open=True)


@dataclass(frozen=True)
class BatchRecord:
    """What happened to one batch of the stream.

    Attributes:
        index: position in the stream.
        score: progressive-validation score: the live model's metric on the batch
            *before* training on it (``nan`` for a batch with broken inputs).
        status: ``"trained"``, ``"quarantined"`` (never trained on) or
            ``"rolled back"`` (trained on, then undone and quarantined).
        version: the model version live after this batch (starts at 0).
        reason: why a batch was quarantined or rolled back; empty when trained.
    """

    index: int
    score: float
    status: str
    version: int
    reason: str = ""


@dataclass
class StreamLog:
    """The records of a :meth:`DynamicTrainer.run`."""

    records: list[BatchRecord] = field(default_factory=list)

    @property
    def scores(self) -> list[float]:
        """Progressive-validation score of every batch, in stream order."""
        return [r.score for r in self.records]

    @property
    def quarantined(self) -> list[int]:
        """Indices of batches that were not kept for training."""
        return [r.index for r in self.records if r.status != "trained"]

    def progressive_score(self) -> float:
        """Mean progressive-validation score over the batches that had one."""
        values = [s for s in self.scores if not math.isnan(s)]
        return sum(values) / len(values) if values else float("nan")


class DynamicTrainer:
    """Update a model on each batch of a stream: predict first, then train, under guards.

    For each batch: (1) quarantine it if its inputs are broken; (2) score the live
    model on it (progressive validation) and quarantine it if that score collapsed
    or its label rate jumped (see :class:`Guard`); (3) save a
    snapshot and take ``steps`` full-batch optimizer steps on it; (4) if the model
    now scores more than ``guard.max_drop`` worse on the last accepted batch, restore
    the snapshot (rollback) and quarantine the batch. Each accepted update makes a
    new version. Quarantined batches are kept in :attr:`quarantine` for inspection.

    Args:
        model: the network; trained in place.
        loss_fn: ``loss_fn(model(X), y)``.
        optimizer: over ``model``'s parameters (its state is rolled back too).
        metric: ``metric(y, output) -> float``, higher is better; accuracy of logits by default.
        steps: optimizer steps per batch, an int >= 1.
        guard: the checks, or ``None`` for none (a trainer that believes every batch).

    Example:
        >>> from companion.data import make_drifting_stream
        >>> model = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
        >>> trainer = DynamicTrainer(model, loss_fn=nn.BCEWithLogitsLoss(),
        ...                          optimizer=torch.optim.SGD(model.parameters(), lr=0.5))
        >>> log = trainer.run(make_drifting_stream(5, 100))
        >>> len(log.records), trainer.version
        (5, 5)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        loss_fn: Callable[..., torch.Tensor],
        optimizer: torch.optim.Optimizer,
        metric: Metric = accuracy_from_logits,
        steps: int = 1,
        guard: Guard | None = Guard(),
    ) -> None:
        self.model = check_instance("model", model, nn.Module, "a torch.nn.Module")
        self.loss_fn = check_callable("loss_fn", loss_fn)
        self.optimizer = check_instance(
            "optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer"
        )
        self.metric = check_callable("metric", metric)
        self.steps = check_int("steps", steps, low=1)
        if guard is not None:
            check_instance("guard", guard, Guard, "a Guard or None")
        self.guard = guard
        self.version = 0
        self.quarantine: list[TensorData] = []
        self._last_good: tuple[torch.Tensor, torch.Tensor] | None = None
        self._positives = 0.0
        self._seen = 0
        self._recent_scores: list[float] = []

    def _score(self, X: torch.Tensor, y: torch.Tensor) -> float:
        return float(self.metric(y, predict_logits(self.model, X)))

    def _snapshot(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict())

    def _restore(self, snapshot: tuple[dict[str, Any], dict[str, Any]]) -> None:
        self.model.load_state_dict(snapshot[0])
        self.optimizer.load_state_dict(snapshot[1])

    def _reject(self, index: int, X: torch.Tensor, y: torch.Tensor, score: float, status: str,
                reason: str) -> BatchRecord:
        self.quarantine.append(TensorData(X, y))
        return BatchRecord(index, score, status, self.version, reason)

    def step(self, batch: Any, index: int = 0) -> BatchRecord:
        """Process one batch ``(X, y)``: validate, score, train, check; see the class docs."""
        X, y = _unpack(batch, index)
        guard = self.guard
        if guard is not None and not (torch.isfinite(X).all() and torch.isfinite(y.float()).all()):
            return self._reject(index, X, y, float("nan"), "quarantined", "non-finite inputs")
        score = self._score(X, y)  # progressive validation: the model has not seen this batch
        rate = float(y.float().mean())
        if guard is not None and guard.max_label_shift is not None and self._seen:
            running = self._positives / self._seen
            if abs(rate - running) > guard.max_label_shift:
                return self._reject(index, X, y, score, "quarantined",
                                    f"label rate {rate:.2f} vs running {running:.2f}")
        recent = self._recent_scores[-guard.window:] if guard is not None else []
        if guard is not None and guard.max_score_drop is not None and recent:
            typical = sum(recent) / len(recent)
            if score < typical - guard.max_score_drop:
                return self._reject(index, X, y, score, "quarantined",
                                    f"score {score:.3f} vs recent {typical:.3f}")
        check_before = self._score(*self._last_good) if self._last_good is not None else None
        snapshot = self._snapshot()
        device = model_device(self.model)
        Xd, yd = X.to(device), y.to(device)
        self.model.train()
        for _ in range(self.steps):
            self.optimizer.zero_grad(set_to_none=True)
            self.loss_fn(self.model(Xd), yd).backward()
            self.optimizer.step()
        if guard is not None and guard.max_drop is not None and check_before is not None:
            check_after = self._score(*self._last_good)
            if check_after < check_before - guard.max_drop:
                self._restore(snapshot)
                return self._reject(
                    index, X, y, score, "rolled back",
                    f"last good batch's score fell from {check_before:.3f} to {check_after:.3f}",
                )
        self.version += 1
        self._last_good = (X, y)
        self._positives += rate * len(y)
        self._seen += len(y)
        self._recent_scores.append(score)
        return BatchRecord(index, score, "trained", self.version)

    def run(self, stream: Iterable[Any]) -> StreamLog:
        """Process every batch of ``stream`` in order; return the :class:`StreamLog`."""
        log = StreamLog()
        for i, batch in enumerate(stream):
            log.records.append(self.step(batch, i))
        return log
