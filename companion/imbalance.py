"""Training on imbalanced classes: downsample the majority, upweight what is kept, correct the prior.

With 1% positives most of a training epoch is spent on easy negatives. Google's
recipe keeps every minority example, keeps one majority example in ``factor``
(:func:`downsample_majority`), and gives each kept majority example the weight
``factor``, so that the weighted training set has the class balance of the
original and the model's probabilities stay calibrated. Without the weights the
model learns the prior of the downsampled data: its odds of the minority class
are ``factor`` times too high, which :func:`correct_downsampled_probability`
undoes in closed form (Bayes' rule).

:func:`companion.training.fit` calls ``loss_fn(model(x), y)``; to train with one
weight per example, :func:`weighted_loader` packs each label with its weight into
a target of shape ``(N, 2)`` and :class:`WeightedLoss` unpacks it, so ``fit``
needs no change.

Class weights come from :func:`sklearn.utils.class_weight.compute_class_weight`;
a threshold for a target precision from
``companion.metrics.threshold_for(..., target_precision=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

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

__all__ = ["downsample_majority", "correct_downsampled_probability", "weighted_loader", "WeightedLoss"]


def _labels(y: Any) -> torch.Tensor:
    y = check_tensor("y", as_tensor("y", y), ndim=1)
    if y.is_floating_point() and (~torch.isfinite(y) | (y != y.round())).any():
        raise ValueError(message("y", "integer class labels", y))
    if y.is_complex() or y.dtype == torch.bool:
        raise TypeError(message("y", "integer class labels", y))
    return y


def downsample_majority(
    X: Any, y: Any, *, factor: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep every example of the minority classes and one in ``factor`` of the majority class.

    The majority class is the most frequent label. ``round(n_majority / factor)``
    of its examples (at least one) are drawn at random without replacement; all
    other rows are kept, in their original order. The returned weights are
    ``factor`` for the kept majority rows and 1 elsewhere: weighting the loss
    by them ("upweighting") restores the original class balance, so a model
    trained on the smaller set predicts calibrated probabilities.

    Args:
        X: features ``(N, ...)`` (tensor or array).
        y: class labels ``(N,)``, integers, at least two classes.
        factor: how many majority examples each kept one stands for, a float >= 1
            (1 keeps everything).
        seed: seeds the draw, an int >= 0.

    Returns:
        ``(X_kept, y_kept, weights)``: the kept rows ``(M, ...)`` and ``(M,)``, and
        float32 weights ``(M,)``.

    Example:
        >>> X, y = torch.arange(12.0).unsqueeze(1), torch.tensor([0] * 10 + [1] * 2)
        >>> X_kept, y_kept, w = downsample_majority(X, y, factor=5, seed=0)
        >>> y_kept.tolist(), w.tolist()
        ([0, 0, 1, 1], [5.0, 5.0, 1.0, 1.0])
        >>> float(w[y_kept == 0].sum()) == float((y == 0).sum())  # the balance is restored
        True
    """
    X = as_tensor("X", X)
    if X.ndim == 0:
        raise ValueError(message("X", "a tensor with at least 1 dimension", X))
    y = _labels(y)
    check_same_length("X", X, "y", y)
    factor = check_float("factor", factor, low=1)
    seed = check_int("seed", seed, low=0)
    classes, counts = torch.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(message("y", "labels of at least two classes", y, found=f"only {classes.tolist()}"))
    majority = classes[counts.argmax()]
    rows = torch.nonzero(y == majority).flatten()
    keep_count = max(1, round(len(rows) / factor))
    drawn = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:keep_count]]
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[rows] = False
    keep[drawn] = True
    y_kept = y[keep]
    weights = torch.where(y_kept == majority, factor, 1.0).float()
    return X[keep], y_kept, weights


def correct_downsampled_probability(p: Any, *, factor: float) -> torch.Tensor:
    """Undo the prior shift of a model trained on downsampled negatives without weights.

    Keeping one negative in ``factor`` multiplies the odds of the positive class
    by ``factor``; Bayes' rule divides them back::

        p' = p / (p + (1 - p) * factor)

    Args:
        p: predicted positive-class probabilities ``(N,)`` (or any shape), in [0, 1].
        factor: the downsampling factor of the negatives, a float >= 1.

    Returns:
        The corrected probabilities, a floating-point tensor of ``p``'s shape.

    Example:
        >>> correct_downsampled_probability(torch.tensor([0.5, 0.0, 1.0]), factor=9).tolist()
        [0.10000000149011612, 0.0, 1.0]
    """
    p = as_tensor("p", p)
    if not p.is_floating_point():
        p = p.double()
    check_tensor("p", p, finite=True, non_empty=False)
    if ((p < 0) | (p > 1)).any():
        raise ValueError(message("p", "probabilities in [0, 1]", p))
    factor = check_float("factor", factor, low=1)
    return p / (p + (1 - p) * factor)


class _Batches:
    """Batches of ``(X, target)`` sliced from the tensors, reshuffled (seeded) on every pass."""

    def __init__(self, X: torch.Tensor, target: torch.Tensor, batch_size: int, shuffle: bool, seed: int) -> None:
        self.X, self.target, self.batch_size, self.shuffle = X, target, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.X)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                yield self.X[start:start + self.batch_size], self.target[start:start + self.batch_size]
            else:
                rows = order[start:start + self.batch_size]
                yield self.X[rows], self.target[rows]


def weighted_loader(
    X: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    *,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Batches whose targets carry one weight per example, for :class:`WeightedLoss`.

    Each batch is ``(x, target)`` with ``target[:, 0]`` the label (as a float) and
    ``target[:, 1]`` its weight, so :func:`companion.training.fit` passes both to
    the loss unchanged. Like :func:`companion.data.make_loader` it reshuffles on
    every pass (seeded) and has a ``len``; unlike it, it slices each batch out of
    the tensors in one indexing operation rather than one per example, so a large
    batch, even the whole data set, costs no more than copying its rows.

    Args:
        X: features ``(N, ...)``.
        y: labels ``(N,)``.
        weights: per-example weights ``(N,)``, finite and >= 0.
        batch_size: rows per batch, an int >= 1.
        shuffle: reshuffle every pass (else the rows' order).
        seed: seed of the shuffle, an int >= 0.

    Returns:
        An iterable of ``(x, target)`` batches, ``x`` ``(B, ...)`` and ``target`` ``(B, 2)``.

    Example:
        >>> loader = weighted_loader(torch.zeros(3, 2), torch.tensor([0, 1, 1]),
        ...                          torch.tensor([5.0, 1.0, 1.0]), batch_size=2, shuffle=False)
        >>> len(loader), next(iter(loader))[1].tolist()
        (2, [[0.0, 5.0], [1.0, 1.0]])
    """
    check_tensor("X", X)
    check_tensor("y", y, ndim=1)
    check_tensor("weights", weights, ndim=1, finite=True)
    check_same_length("X", X, "y", y)
    check_same_length("y", y, "weights", weights)
    if (weights < 0).any():
        raise ValueError(message("weights", "weights >= 0", weights))
    batch_size = check_int("batch_size", batch_size, low=1)
    check_instance("shuffle", shuffle, bool, "a bool")
    seed = check_int("seed", seed, low=0)
    target = torch.stack([y.float(), weights.float()], dim=1)
    return _Batches(X, target, batch_size, shuffle, seed)


class WeightedLoss:
    """Per-example weights for any loss that can return one value per example.

    ``WeightedLoss(loss_fn)(output, target)`` computes ``loss_fn(output, y)`` with
    ``y = target[:, 0]`` and returns ``mean(weights * per_example_loss)`` with
    ``weights = target[:, 1]`` (the targets :func:`weighted_loader` makes). The
    mean divides by the number of examples, not the sum of the weights, so a
    weight of 10 counts an example as 10 copies of itself. A 1-D ``target`` is
    plain labels, weighted 1 (for an unweighted validation loader).

    Args:
        loss_fn: ``loss_fn(output, y) -> (N,)`` per-example losses, e.g.
            ``torch.nn.BCEWithLogitsLoss(reduction="none")``. Labels arrive as
            floats: wrap a class-index loss as ``lambda out, y: ce(out, y.long())``.

    Example:
        >>> loss = WeightedLoss(torch.nn.BCEWithLogitsLoss(reduction="none"))
        >>> out, y = torch.zeros(2), torch.tensor([0.0, 1.0])
        >>> round(float(loss(out, torch.stack([y, torch.tensor([3.0, 1.0])], 1))), 4)  # 2 * log 2
        1.3863
        >>> round(float(loss(out, y)), 4)  # unweighted: log 2
        0.6931
    """

    def __init__(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.loss_fn = check_callable("loss_fn", loss_fn)

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_tensor("target", target, ndim=(1, 2))
        if target.ndim == 2 and target.shape[1] != 2:
            raise ValueError(message("target", "a tensor of shape (N, 2): labels and weights", target))
        y, weights = (target, None) if target.ndim == 1 else (target[:, 0], target[:, 1])
        per_example = self.loss_fn(output, y)
        if not isinstance(per_example, torch.Tensor) or per_example.shape != y.shape:
            raise ValueError(message("loss_fn", f"a loss returning one value per example, shape {tuple(y.shape)} "
                                     "(reduction='none')", per_example))
        return per_example.mean() if weights is None else (per_example * weights).mean()

    def __repr__(self) -> str:
        return f"WeightedLoss({self.loss_fn!r})"
