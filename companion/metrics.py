"""Evaluation metrics for classifiers, vectorized in PyTorch and checked against scikit-learn.

Every function takes its arguments in scikit-learn's order, ``(y_true, y_pred)`` for
hard labels and ``(y_true, y_score)`` for scores, as tensors, NumPy arrays or lists.
Binary metrics expect labels in ``{0, 1}`` (any dtype) with 1 the positive class.

The curves are sort-based: one sort of the scores, cumulative sums of the labels,
and one point per distinct score, as in :func:`sklearn.metrics.roc_curve` with
``drop_intermediate=False`` and :func:`sklearn.metrics.precision_recall_curve`.

Undefined values follow scikit-learn: a precision with no predicted positives, or
a recall with no actual positives, is 0.0 with an :class:`UndefinedMetricWarning`;
an AUC whose curve is undefined (one class only) is ``nan`` with the same warning.
Inputs of different lengths raise a :class:`ValueError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import torch

from companion._validation import (
    as_tensor,
    check_float,
    check_same_length,
    check_tensor,
    message,
)

__all__ = [
    "Metric",
    "UndefinedMetricWarning",
    "ThresholdChoice",
    "accuracy",
    "confusion_matrix",
    "precision",
    "recall",
    "f1",
    "roc_curve",
    "roc_auc",
    "pr_curve",
    "pr_auc",
    "wilson_lower_bound",
    "threshold_for",
    "prediction_bias",
]


Metric = Callable[[torch.Tensor, torch.Tensor], float]
"""A metric of a model's output: ``metric(y_true, output) -> float`` (training, streams, slices)."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for these inputs (e.g. ROC AUC with one class only)."""


# --- validation -------------------------------------------------------------------


def _vector(name: str, value: Any) -> torch.Tensor:
    tensor = check_tensor(name, as_tensor(name, value), ndim=1, finite=True)
    if tensor.dtype == torch.bool:
        tensor = tensor.long()
    return tensor


def _pair(
    y_true: Any, y_other: Any, other_name: str, *, binary_true: bool, binary_other: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a ``(y_true, y_pred_or_score)`` pair: 1-D, finite, same length, labels."""
    true = _vector("y_true", y_true)
    other = _vector(other_name, y_other)
    check_same_length("y_true", true, other_name, other)
    if binary_true:
        _check_binary("y_true", true)
    if binary_other:
        _check_binary(other_name, other)
    return true, other.to(true.device)


def _check_binary(name: str, labels: torch.Tensor) -> None:
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError(message(name, "binary labels in {0, 1}", labels))


def _check_class_labels(name: str, labels: torch.Tensor) -> None:
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError(message(name, "integer class labels", labels))
    if (labels < 0).any():
        raise ValueError(message(name, "class labels >= 0", labels))


def _warn(text: str) -> None:
    warnings.warn(text, UndefinedMetricWarning, stacklevel=3)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor, what: str) -> float:
    if int(denominator) == 0:
        _warn(f"{what} is ill-defined (division by zero) and set to 0.0, as scikit-learn does.")
        return 0.0
    return float(numerator) / float(denominator)


# --- label metrics -----------------------------------------------------------------


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of predictions equal to the label.

    Args:
        y_true: labels, shape ``(N,)``.
        y_pred: predicted labels ``(N,)``, or scores ``(N, C)`` with ``C >= 2`` whose
            argmax is the prediction (so a classifier's logits can be passed directly).
            A single column ``(N, 1)`` is refused: its argmax is always class 0. For
            binary logits use :func:`companion.inference.accuracy_from_logits`.

    Returns:
        A float in ``[0, 1]``.

    Example:
        >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
        0.75
        >>> accuracy([1, 0], torch.tensor([[0.2, 0.8], [0.9, 0.1]]))
        1.0
    """
    pred = as_tensor("y_pred", y_pred)
    if pred.ndim == 2:
        if pred.shape[1] < 2:
            raise ValueError(message(
                "y_pred", "labels (N,) or class scores (N, C) with C >= 2 (for binary logits "
                "(N, 1) use companion.inference.accuracy_from_logits)", pred))
        pred = check_tensor("y_pred", pred, finite=True).argmax(dim=1)
    true, pred = _pair(y_true, pred, "y_pred", binary_true=False, binary_other=False)
    return float((true == pred).double().mean())


def confusion_matrix(y_true: Any, y_pred: Any, *, num_classes: int | None = None) -> torch.Tensor:
    """Counts of (true class, predicted class) pairs, as in scikit-learn.

    Args:
        y_true: class labels in ``[0, C)``, shape ``(N,)``.
        y_pred: predicted class labels in ``[0, C)``, shape ``(N,)``.
        num_classes: ``C``; by default one more than the largest label seen.

    Returns:
        An int64 tensor ``(C, C)``: row ``i``, column ``j`` counts examples of class
        ``i`` predicted as ``j``. For two classes it reads ``[[TN, FP], [FN, TP]]``.

    Example:
        >>> confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0]).tolist()
        [[2, 0], [1, 1]]
    """
    true, pred = _pair(y_true, y_pred, "y_pred", binary_true=False, binary_other=False)
    _check_class_labels("y_true", true)
    _check_class_labels("y_pred", pred)
    true, pred = true.long(), pred.long()
    seen = int(torch.maximum(true.max(), pred.max())) + 1
    if num_classes is None:
        num_classes = seen
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < seen:
        raise ValueError(message("num_classes", f"an int >= {seen} (the labels seen)", num_classes))
    counts = torch.bincount(true * num_classes + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def _binary_counts(y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    true, pred = _pair(y_true, y_pred, "y_pred", binary_true=True, binary_other=True)
    true, pred = true.bool(), pred.bool()
    return (true & pred).sum(), pred.sum(), true.sum()  # TP, predicted positives, actual positives


def precision(y_true: Any, y_pred: Any) -> float:
    """TP / predicted positives: when the model says "positive", how often is it right?

    Args:
        y_true: binary labels ``(N,)``.
        y_pred: binary predictions ``(N,)``.

    Returns:
        A float in ``[0, 1]``; 0.0 with an :class:`UndefinedMetricWarning` when
        nothing is predicted positive (as scikit-learn).

    Example:
        >>> precision([0, 1, 1, 0], [1, 1, 0, 0])
        0.5
    """
    tp, predicted, _ = _binary_counts(y_true, y_pred)
    return _ratio(tp, predicted, "Precision")


def recall(y_true: Any, y_pred: Any) -> float:
    """TP / actual positives: of all the positives, how many did the model find?

    Args:
        y_true: binary labels ``(N,)``.
        y_pred: binary predictions ``(N,)``.

    Returns:
        A float in ``[0, 1]``; 0.0 with an :class:`UndefinedMetricWarning` when
        there is no actual positive (as scikit-learn).

    Example:
        >>> recall([0, 1, 1, 0], [1, 1, 0, 0])
        0.5
    """
    tp, _, actual = _binary_counts(y_true, y_pred)
    return _ratio(tp, actual, "Recall")


def f1(y_true: Any, y_pred: Any) -> float:
    """Harmonic mean of precision and recall, ``2 TP / (predicted + actual positives)``.

    Returns 0.0 with an :class:`UndefinedMetricWarning` when there is neither a
    predicted nor an actual positive (as scikit-learn).

    Example:
        >>> round(f1([0, 1, 1, 0], [1, 1, 1, 0]), 4)
        0.8
    """
    tp, predicted, actual = _binary_counts(y_true, y_pred)
    return _ratio(2 * tp, predicted + actual, "F1")


# --- ranking metrics ---------------------------------------------------------------


def _binary_curve(y_true: Any, y_score: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cumulative (false positives, true positives) at each distinct score, highest first.

    Returns float64 ``fps``, ``tps`` and the distinct ``thresholds`` (decreasing).
    Predicting ``score >= thresholds[k]`` yields ``fps[k]`` false and ``tps[k]``
    true positives; tied scores are one point, so ties never depend on order.
    """
    true, score = _pair(y_true, y_score, "y_score", binary_true=True, binary_other=False)
    # ties are merged below, so the sort need not be stable
    score, order = torch.sort(score, descending=True)
    # last index of each run of equal scores: where the next score differs, plus the end
    last = torch.nonzero(score[1:] != score[:-1]).flatten()
    last = torch.cat([last, last.new_tensor([len(score) - 1])])
    tps = torch.cumsum(true[order], dim=0, dtype=torch.float64)[last]
    fps = (last + 1).double() - tps
    return fps, tps, score[last].double()


def roc_curve(y_true: Any, y_score: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ROC curve: true-positive rate against false-positive rate, one point per threshold.

    Args:
        y_true: binary labels ``(N,)``.
        y_score: scores ``(N,)``, higher meaning "more positive" (probabilities or logits).

    Returns:
        ``(fpr, tpr, thresholds)``, float64 tensors of length ``K + 1`` for ``K``
        distinct scores, from the origin (``thresholds[0] = inf``) to ``(1, 1)``.
        A rate whose class is absent is ``nan``, with an :class:`UndefinedMetricWarning`.
        Matches ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.

    Example:
        >>> fpr, tpr, _ = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    fps, tps, thresholds = _binary_curve(y_true, y_score)
    zero = fps.new_zeros(1)
    fps, tps = torch.cat([zero, fps]), torch.cat([zero, tps])
    thresholds = torch.cat([thresholds.new_tensor([float("inf")]), thresholds])
    if fps[-1] == 0:
        _warn("No negative samples in y_true: the false-positive rate is undefined (nan).")
    if tps[-1] == 0:
        _warn("No positive samples in y_true: the true-positive rate is undefined (nan).")
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve: the chance that a random positive outranks a random negative.

    Ties count one half. It weighs both classes equally, so on heavily imbalanced
    data it can look good while most predicted positives are false (see :func:`pr_auc`).

    Args:
        y_true: binary labels ``(N,)``.
        y_score: scores ``(N,)``.

    Returns:
        A float in ``[0, 1]``; ``nan`` with an :class:`UndefinedMetricWarning` when
        ``y_true`` holds one class only (as scikit-learn).

    Example:
        >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    fps, tps, _ = _binary_curve(y_true, y_score)
    if fps[-1] == 0 or tps[-1] == 0:
        _warn("Only one class is present in y_true: ROC AUC is undefined (nan).")
        return float("nan")
    fpr = torch.cat([fps.new_zeros(1), fps]) / fps[-1]
    tpr = torch.cat([tps.new_zeros(1), tps]) / tps[-1]
    return float(torch.trapezoid(tpr, fpr))


def pr_curve(y_true: Any, y_score: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The precision-recall curve, one point per distinct score.

    Args:
        y_true: binary labels ``(N,)``.
        y_score: scores ``(N,)``.

    Returns:
        ``(precision, recall, thresholds)`` as in
        ``sklearn.metrics.precision_recall_curve``: ``thresholds`` increasing
        (length ``K``), and ``precision``/``recall`` of length ``K + 1`` ending with
        the point ``(recall 0, precision 1)``. Without positives in ``y_true`` the
        recall is ``nan`` with an :class:`UndefinedMetricWarning` (scikit-learn sets it to 1).

    Example:
        >>> p, r, t = pr_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> p.tolist(), r.tolist()
        ([0.5, 0.6666666666666666, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.0])
    """
    fps, tps, thresholds = _binary_curve(y_true, y_score)
    prec = tps / (tps + fps)  # tps + fps >= 1 at every distinct score
    if tps[-1] == 0:
        _warn("No positive samples in y_true: recall is undefined (nan).")
    rec = tps / tps[-1]
    one, zero = prec.new_ones(1), prec.new_zeros(1)
    return torch.cat([prec.flip(0), one]), torch.cat([rec.flip(0), zero]), thresholds.flip(0)


def pr_auc(y_true: Any, y_score: Any) -> float:
    """Average precision: the area under the precision-recall curve, as a step function.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over thresholds, as
    ``sklearn.metrics.average_precision_score``. Its baseline is the positive rate,
    not 0.5, which makes it the honest summary for heavily imbalanced data.

    Args:
        y_true: binary labels ``(N,)``.
        y_score: scores ``(N,)``.

    Returns:
        A float in ``[0, 1]``; ``nan`` with an :class:`UndefinedMetricWarning` when
        ``y_true`` has no positive (scikit-learn returns 0.0 there).

    Example:
        >>> round(pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
        0.8333
    """
    fps, tps, _ = _binary_curve(y_true, y_score)
    if tps[-1] == 0:
        _warn("No positive samples in y_true: PR AUC is undefined (nan).")
        return float("nan")
    prec = tps / (tps + fps)
    rec = torch.cat([tps.new_zeros(1), tps / tps[-1]])
    return float((torch.diff(rec) * prec).sum())


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold and what it achieves on the data it was chosen on.

    Predict positive when ``score >= threshold``.
    """

    threshold: float
    precision: float
    recall: float


def wilson_lower_bound(successes: Any, trials: Any, *, confidence: float = 0.95) -> torch.Tensor:
    """Wilson's lower confidence bound on a proportion such as precision.

    A precision measured on a few predicted positives is noisy: 5 right out of 8 is
    0.625, but the true precision could easily be below 0.5. The Wilson score
    interval bounds the true proportion ``p`` given ``successes`` out of ``trials``;
    its lower end, at one-sided ``confidence``, is a value the true ``p`` lies above
    with about that probability. With ``z`` the standard normal quantile of
    ``confidence`` and ``q = successes / trials``::

        (q + z²/2n - z * sqrt(q(1-q)/n + z²/4n²)) / (1 + z²/n)

    ``confidence=0.5`` gives ``z = 0``, the plain proportion. Zero trials give 0
    (no evidence for any precision).

    Args:
        successes: counts ``(N,)`` or a scalar, integers in ``[0, trials]``.
        trials: counts of the same shape, integers >= 0.
        confidence: one-sided confidence level, a float in [0.5, 1).

    Returns:
        A float64 tensor of the shape of ``successes``, each bound in ``[0, q]``.

    Example:
        >>> round(float(wilson_lower_bound(5, 8, confidence=0.9)), 3)
        0.403
        >>> float(wilson_lower_bound(5, 8, confidence=0.5))
        0.625
    """
    confidence = check_float("confidence", confidence, low=0.5, high=1, high_open=True)
    k = as_tensor("successes", successes).double()
    n = as_tensor("trials", trials).double()
    if k.shape != n.shape:
        raise ValueError(message("trials", f"a tensor of shape {tuple(k.shape)} like `successes`",
                                 tuple(n.shape)))
    bad = ~torch.isfinite(k) | (k != k.round()) | (k < 0)
    if bad.any():
        raise ValueError(message("successes", "integer counts >= 0", k[bad].flatten()[0].item()))
    bad = ~torch.isfinite(n) | (n != n.round()) | (n < k)
    if bad.any():
        raise ValueError(message("trials", "integer counts >= `successes`", n[bad].flatten()[0].item()))
    z = NormalDist().inv_cdf(confidence)
    safe = n.clamp(min=1)
    q = k / safe
    centre = q + z * z / (2 * safe)
    spread = z * torch.sqrt(q * (1 - q) / safe + z * z / (4 * safe * safe))
    bound = ((centre - spread) / (1 + z * z / safe)).clamp(min=0.0)
    bound = torch.minimum(bound, q)  # rounding must not lift the bound above the estimate
    return torch.where(n > 0, bound, torch.zeros_like(bound))


def threshold_for(
    y_true: Any,
    y_score: Any,
    *,
    target_precision: float | None = None,
    target_recall: float | None = None,
    confidence: float | None = None,
) -> ThresholdChoice:
    """The decision threshold that meets a business target for precision or recall.

    Give exactly one target. For ``target_precision`` this is the lowest threshold
    (so the highest recall) whose precision reaches the target; for ``target_recall``
    the highest threshold (so the best precision) whose recall reaches it.

    The lowest threshold whose *measured* precision touches the target sits on the
    noisy edge: on new data its precision falls short of the target about as often
    as not, and more often when few examples are predicted positive. With
    ``confidence`` the rule asks more: the lowest threshold whose Wilson lower bound
    on precision (:func:`wilson_lower_bound`, ``TP`` successes out of ``TP + FP``
    predicted positives) reaches the target, a margin that shrinks as the
    evidence grows. Because the rule scans many thresholds and keeps the lowest that
    passes, the chosen one falls short of the target on new data somewhat more often
    than ``1 - confidence`` (13% at ``confidence=0.9`` against 57% for the plain rule, in
    ``tests/test_metrics.py``'s resampling test with 60 positives per validation set);
    a higher confidence misses less and more often finds no threshold at all.

    Args:
        y_true: binary labels ``(N,)`` with at least one positive.
        y_score: scores ``(N,)``.
        target_precision: a float in ``(0, 1]``.
        target_recall: a float in ``(0, 1]``.
        confidence: with ``target_precision`` only: one-sided confidence level of the
            lower bound, a float in [0.5, 1); ``None`` (or 0.5) uses the measured precision.

    Returns:
        A :class:`ThresholdChoice`; its ``precision`` is the measured one.

    Raises:
        ValueError: no threshold reaches ``target_precision`` (or, with ``confidence``,
            its lower bound) on these data.

    Example:
        >>> threshold_for([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], target_recall=1.0)
        ThresholdChoice(threshold=0.35, precision=0.6666666666666666, recall=1.0)
        >>> y, s = [0] * 2 + [1] * 8 + [0, 1] * 10, list(range(30, 0, -1))
        >>> threshold_for(y, s, target_precision=0.6).threshold
        1.0
        >>> threshold_for(y, s, target_precision=0.6, confidence=0.9).threshold
        21.0
    """
    if (target_precision is None) == (target_recall is None):
        raise ValueError(
            message("target_precision/target_recall", "exactly one target given",
                    (target_precision, target_recall))
        )
    if confidence is not None:
        if target_precision is None:
            raise ValueError(message("confidence", "None when `target_recall` is given", confidence))
        confidence = check_float("confidence", confidence, low=0.5, high=1, high_open=True)
    fps, tps, thresholds = _binary_curve(y_true, y_score)
    if tps[-1] == 0:
        raise ValueError(message("y_true", "labels with at least one positive", tps[-1].item()))
    prec, rec = tps / (tps + fps), tps / tps[-1]
    if target_precision is not None:
        target = check_float("target_precision", target_precision, low=0, high=1, low_open=True)
        evidence = prec if confidence is None else wilson_lower_bound(tps, tps + fps,
                                                                      confidence=confidence)
        ok = torch.nonzero(evidence >= target).flatten()
        if len(ok) == 0:
            best = float(evidence.max())
            what = "precision" if confidence is None else f"{confidence:g} lower bound on precision"
            raise ValueError(
                message("target_precision", f"reachable on these data (best {what} {best:.4g})",
                        target)
            )
        k = int(ok[-1])  # thresholds decrease with k: the last one is the lowest
    else:
        target = check_float("target_recall", target_recall, low=0, high=1, low_open=True)
        k = int(torch.nonzero(rec >= target).flatten()[0])  # recall reaches 1 at the end
    return ThresholdChoice(float(thresholds[k]), float(prec[k]), float(rec[k]))


def prediction_bias(y_true: Any, y_pred: Any) -> float:
    """Mean prediction minus mean label; near 0 for a calibrated model.

    A large bias in either direction means the model's predictions are off on
    average (a sign of a bug, skewed data or a stale model), although a zero
    bias alone does not prove the model is good.

    Args:
        y_true: labels or targets ``(N,)``.
        y_pred: predictions ``(N,)`` on the label's scale (probabilities for a classifier).

    Returns:
        A float.

    Example:
        >>> round(prediction_bias([0, 1, 1, 0], [0.2, 0.9, 0.7, 0.4]), 4)
        0.05
    """
    true, pred = _pair(y_true, y_pred, "y_pred", binary_true=False, binary_other=False)
    return float(pred.double().mean() - true.double().mean())
