"""Semi-supervised learning by self-training: a model labels the unlabelled data it is sure about.

When labels are few and unlabelled examples are many, :func:`self_train` trains a model on the
labelled rows, predicts the unlabelled pool, keeps the predictions whose confidence (the
largest softmax probability) reaches a threshold as *pseudo-labels*, and trains a fresh model
on the labelled rows plus the pseudo-labelled ones; it repeats this for a number of rounds.
A pseudo-label, once given, is kept (as scikit-learn's ``SelfTrainingClassifier`` does). The
function never sees a true label of the unlabelled pool: it takes the pool's inputs only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from companion.inference import predict_logits
from companion.training import fit
from companion.utils import get_device, seed_everything

__all__ = ["SelfTrainingRound", "self_train"]


@dataclass
class SelfTrainingRound:
    """What one round of :func:`self_train` trained on and what it added.

    Attributes:
        round: 0 for the model trained on the labelled rows alone, then 1, 2, ...
        n_labelled: rows with a true label that the round's model trained on.
        n_pseudo: pseudo-labelled rows that the round's model trained on.
        n_added: rows of the pool that reached the threshold under this round's model and were
            added for the next round (0 in the last round).
        score: ``evaluate(model)`` for this round's model, or ``None`` without ``evaluate``.
        pseudo_indices: positions in the unlabelled pool of the ``n_pseudo`` rows trained on.
        pseudo_labels: the labels given to them, in the same order.
        confidence: the confidence of each pool row under this round's model, ``(M,)`` (the
            largest softmax probability), from which the next round's rows were chosen.
    """

    round: int
    n_labelled: int
    n_pseudo: int
    n_added: int
    score: float | None
    pseudo_indices: torch.Tensor
    pseudo_labels: torch.Tensor
    confidence: torch.Tensor


def self_train(
    make_model: Callable[[], nn.Module],
    X_labelled: Any,
    y_labelled: Any,
    X_unlabelled: Any,
    *,
    threshold: float = 0.9,
    rounds: int = 3,
    epochs: int = 100,
    lr: float = 1e-2,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    evaluate: Callable[[nn.Module], float] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, list[SelfTrainingRound]]:
    """Self-training on confident pseudo-labels: train, label the sure part of the pool, retrain.

    Round 0 trains a model on the labelled rows alone. After each round the model predicts
    every pool row; rows not yet pseudo-labelled whose confidence (largest softmax
    probability) is at least ``threshold`` get the predicted class as their label, and the
    next round trains a fresh model (same initial weights: ``seed_everything(seed)`` before
    each ``make_model()``) on the labelled rows plus every pseudo-labelled row so far. Training
    stops after ``rounds`` rounds, or earlier when a round adds no row. Each round trains
    with :func:`companion.training.fit`, Adam and cross-entropy.

    ``threshold=0`` turns the confidence filter off: every pool row is pseudo-labelled after
    round 0, the wrong guesses included. ``threshold=1`` keeps only certain predictions.

    Args:
        make_model: returns a new, untrained model mapping ``(N, ...)`` inputs to ``(N, C)``
            logits, ``C >= 2``.
        X_labelled: labelled inputs ``(L, ...)``, floating point.
        y_labelled: their classes ``(L,)``, ints in ``[0, C)``.
        X_unlabelled: the unlabelled pool ``(M, ...)``, the same shape per row; inputs only.
        threshold: confidence a prediction needs to become a pseudo-label, a float in ``[0, 1]``.
        rounds: rounds after round 0, an int >= 0 (0 trains on the labelled rows only).
        epochs: epochs of each round's training, an int >= 1.
        lr: Adam's learning rate, a float > 0.
        batch_size: rows per step, an int >= 1; ``None`` uses every row in one batch.
        weight_decay: Adam's weight decay, a float >= 0.
        evaluate: optional ``evaluate(model) -> float``, called after each round's training
            (e.g. accuracy on a held-out set you keep in the closure); stored in the record.
        seed: seed of each round's initial weights and batch order, an int >= 0.
        device: where to train; ``None`` picks :func:`companion.utils.get_device`.

    Returns:
        ``(model, record)``: the last round's model, and one :class:`SelfTrainingRound` per round.

    Example:
        >>> from companion.models import MLP
        >>> X = torch.cat([torch.randn(40, 2) - 2, torch.randn(40, 2) + 2])
        >>> y = torch.cat([torch.zeros(40), torch.ones(40)]).long()
        >>> model, record = self_train(lambda: MLP(2, (8,), 2), X[::20], y[::20], X, rounds=2,
        ...                            epochs=50, device="cpu")
        >>> [r.n_pseudo for r in record][0], record[-1].n_pseudo > 40
        (0, True)
    """
    check_callable("make_model", make_model)
    X_labelled = check_tensor("X_labelled", as_tensor("X_labelled", X_labelled), floating=True, finite=True)
    y_labelled = check_tensor("y_labelled", as_tensor("y_labelled", y_labelled), ndim=1)
    if y_labelled.is_floating_point() or y_labelled.is_complex() or y_labelled.dtype == torch.bool:
        raise TypeError(message("y_labelled", "a tensor of integer classes", y_labelled))
    y_labelled = y_labelled.long()
    if int(y_labelled.min()) < 0:
        raise ValueError(message("y_labelled", "classes >= 0", y_labelled, found=f"{int(y_labelled.min())}"))
    check_same_length("X_labelled", X_labelled, "y_labelled", y_labelled)
    X_unlabelled = check_tensor("X_unlabelled", as_tensor("X_unlabelled", X_unlabelled), floating=True,
                                finite=True)
    if X_unlabelled.shape[1:] != X_labelled.shape[1:]:
        raise ValueError(message(("X_labelled", "X_unlabelled"), "the same shape per row",
                                 (X_labelled, X_unlabelled), verb="have"))
    threshold = check_float("threshold", threshold, low=0, high=1)
    rounds = check_int("rounds", rounds, low=0)
    epochs = check_int("epochs", epochs, low=1)
    lr = check_float("lr", lr, low=0, low_open=True)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1)
    weight_decay = check_float("weight_decay", weight_decay, low=0)
    if evaluate is not None:
        check_callable("evaluate", evaluate)
    seed = check_int("seed", seed, low=0)
    device = get_device(device)

    n_pool = len(X_unlabelled)
    taken = torch.zeros(n_pool, dtype=torch.bool)
    pseudo_indices = torch.empty(0, dtype=torch.long)
    pseudo_labels = torch.empty(0, dtype=torch.long)
    record: list[SelfTrainingRound] = []
    for r in range(rounds + 1):
        X = torch.cat([X_labelled, X_unlabelled[pseudo_indices]])
        y = torch.cat([y_labelled, pseudo_labels])
        seed_everything(seed)
        model = make_model()
        check_instance("make_model()", model, nn.Module, "a torch.nn.Module")
        if r == 0:  # before any training: does the model's output fit the labels?
            _check_output(predict_logits(model.to(device), X_labelled[:1]), y_labelled)
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
        step = batch_size or len(X)
        batches = [(X[idx], y[idx]) for idx in order.split(step)]
        fit(model, batches, loss_fn=nn.CrossEntropyLoss(),
            optimizer=torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay),
            epochs=epochs, progress=False, device=device)
        score = float(evaluate(model)) if evaluate is not None else None
        logits = predict_logits(model, X_unlabelled)
        confidence, predicted = torch.softmax(logits.double(), dim=1).max(dim=1)
        new = (confidence >= threshold) & ~taken if r < rounds else torch.zeros_like(taken)
        record.append(SelfTrainingRound(
            round=r, n_labelled=len(X_labelled), n_pseudo=len(pseudo_indices), n_added=int(new.sum()),
            score=score, pseudo_indices=pseudo_indices, pseudo_labels=pseudo_labels,
            confidence=confidence.float()))
        if not new.any():
            break
        added = new.nonzero().squeeze(1)
        taken |= new
        pseudo_indices = torch.cat([pseudo_indices, added])
        pseudo_labels = torch.cat([pseudo_labels, predicted[added]])
    return model, record


def _check_output(logits: torch.Tensor, y_labelled: torch.Tensor) -> None:
    """The model must return ``(N, C)`` logits, ``C >= 2``, with a column for every labelled class."""
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(message("make_model()", "a model whose output is (N, C) logits, C >= 2", logits))
    if int(y_labelled.max()) >= logits.shape[1]:
        raise ValueError(message("y_labelled", f"classes in [0, {logits.shape[1]}) (the model's output width)",
                                 y_labelled, found=f"{int(y_labelled.max())}"))
