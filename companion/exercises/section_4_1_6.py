"""Exercises of notebook 4.1.6 (choosing a model for the data): choosing confident pseudo-labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from companion.exercises._registry import exercise


def _pseudo_labels_solution(logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    confidence, predicted = torch.softmax(logits, dim=1).max(dim=1)  # per row: top probability, its class
    indices = (confidence >= threshold).nonzero().squeeze(1)  # ">=": a row exactly at the threshold counts
    return indices, predicted[indices]


def _pool() -> torch.Tensor:
    """Logits of a pool of 40 rows and 3 classes: some sure, some unsure, some with large raw logits."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 3, generator=g) * 2.0
    logits[:5] = torch.tensor([4.0, 3.9, 3.8])  # large logits, but the classes are nearly tied: unsure
    logits[5:8] = torch.tensor([-6.0, 0.0, -6.0])  # small logits, yet one class is sure
    return logits


def _as_pair(result: Any) -> tuple[torch.Tensor, torch.Tensor] | str:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return "return a pair (indices, labels): the positions of the confident rows and their predicted classes."
    indices, labels = result
    if not all(isinstance(t, torch.Tensor) for t in (indices, labels)):
        return "return two tensors, (indices, labels)."
    return indices, labels


@exercise(
    "4.1.6-pseudo-labels",
    "Write confident_pseudo_labels(logits, threshold): the positions of the rows whose largest softmax "
    "probability is at least threshold, in increasing order, and the predicted class of each.",
    solution=_pseudo_labels_solution,
)
def _grade_pseudo_labels(answer: Callable[[torch.Tensor, float], Any]) -> str | None:
    logits = _pool()
    threshold = 0.9
    pair = _as_pair(answer(logits.clone(), threshold))
    if isinstance(pair, str):
        return pair
    indices, labels = pair
    want_indices, want_labels = _pseudo_labels_solution(logits, threshold)
    if indices.dtype == torch.bool:
        return ("indices is a boolean mask; return the positions of the confident rows "
                "(mask.nonzero().squeeze(1)), which index the pool.")
    if indices.ndim != 1 or labels.ndim != 1:
        return f"return two 1-D tensors, but got shapes {tuple(indices.shape)} and {tuple(labels.shape)}."
    if indices.is_floating_point() or labels.is_floating_point():
        return ("return integer tensors: positions and class numbers, not probabilities "
                "(the class is the argmax, the confidence its probability).")
    if len(indices) != len(labels):
        return "return one label per kept row: indices and labels must have the same length."
    if len(indices) == len(logits) and len(want_indices) < len(logits):
        return "you kept every row: keep only those whose largest softmax probability reaches the threshold."
    by_logit = (logits.max(dim=1).values >= threshold).nonzero().squeeze(1)
    if len(indices) == len(by_logit) and torch.equal(indices.sort().values, by_logit):
        return ("you compared the largest logit with the threshold; logits are not probabilities: "
                "apply torch.softmax(logits, dim=1) first.")
    by_column = (torch.softmax(logits, dim=0).max(dim=1).values >= threshold).nonzero().squeeze(1)
    if len(indices) == len(by_column) and torch.equal(indices.sort().values, by_column):
        return "the softmax ran down the columns (dim=0); each row's probabilities must sum to 1: use dim=1."
    if set(indices.tolist()) == set(want_indices.tolist()) and not torch.equal(indices, want_indices):
        return "the right rows, but return their positions in increasing order."
    if not torch.equal(indices, want_indices):
        return (f"expected the {len(want_indices)} rows whose largest softmax probability is >= {threshold}, "
                f"but got {len(indices)} rows.")
    if not torch.equal(labels.long(), want_labels):
        return ("the right rows, but the labels are not each row's predicted class: the label of a kept row "
                "is the argmax of its probabilities (the pool's true labels are unknown).")
    # A row exactly at the threshold counts: probabilities (1, 0, 0) with threshold 1.0.
    edge = torch.tensor([[0.0, -float("inf"), -float("inf")], [0.0, 0.0, 0.0]])
    pair = _as_pair(answer(edge, 1.0))
    if isinstance(pair, str):
        return pair
    if pair[0].tolist() != [0]:
        return ("a row whose top probability equals the threshold exactly must be kept ('at least'): "
                "compare with >=, not >.")
    return None
