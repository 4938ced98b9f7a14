"""Deciding whether to redeploy: a candidate model against the current one, on the same data.

:func:`compare_models` runs both models on the same ``(X, y)``, scores them with one
metric and decides whether the candidate's gain is large enough to deploy it.
Named metrics come from :mod:`companion.metrics`; the model outputs are turned into
what each metric needs (labels or scores) by :func:`logits_to_labels` and
:func:`logits_to_scores`, which follow the course's convention that models return
logits: ``(N,)`` or ``(N, 1)`` for a binary classifier, ``(N, C)`` for ``C`` classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from companion import metrics as M
from companion._validation import (
    as_tensor,
    check_callable,
    check_choice,
    check_float,
    check_instance,
    check_same_length,
    check_tensor,
    message,
)
from companion.inference import logits_to_labels, logits_to_scores, predict_logits

__all__ = [
    "METRICS",
    "ModelComparison",
    "compare_models",
]


@dataclass(frozen=True)
class _Metric:
    fn: Callable[[Any, Any], float]
    higher_is_better: bool
    convert: Callable[[torch.Tensor], torch.Tensor]


METRICS: dict[str, _Metric] = {
    "accuracy": _Metric(M.accuracy, True, logits_to_labels),
    "precision": _Metric(M.precision, True, logits_to_labels),
    "recall": _Metric(M.recall, True, logits_to_labels),
    "f1": _Metric(M.f1, True, logits_to_labels),
    "roc_auc": _Metric(M.roc_auc, True, logits_to_scores),
    "pr_auc": _Metric(M.pr_auc, True, logits_to_scores),
}
"""Metrics :func:`compare_models` knows by name; all of them are "higher is better"."""


@dataclass(frozen=True)
class ModelComparison:
    """The outcome of :func:`compare_models`.

    Attributes:
        metric: the metric's name.
        candidate_score: the candidate's score on the data.
        current_score: the current (deployed) model's score on the same data.
        gain: how much better the candidate is, in the metric's units (positive =
            better, whichever direction the metric improves in).
        min_gain: the gain the candidate had to reach.
        higher_is_better: the metric's direction.
        deploy: ``True`` when ``gain >= min_gain`` (and both scores are defined).
        reason: one line that explains the decision.
    """

    metric: str
    candidate_score: float
    current_score: float
    gain: float
    min_gain: float
    higher_is_better: bool
    deploy: bool
    reason: str


def compare_models(
    candidate: Callable[[torch.Tensor], torch.Tensor],
    current: Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    *,
    metric: str | Callable[[torch.Tensor, torch.Tensor], float],
    min_gain: float = 0.0,
    higher_is_better: bool | None = None,
) -> ModelComparison:
    """Evaluate a candidate and the current model on the same data and decide whether to deploy.

    Both models see exactly the same ``X``; comparing scores computed on different
    data (say, each model's own validation split) would mix the models' quality with
    the data's difficulty. The candidate is deployed when it beats the current model
    by at least ``min_gain``; a ``nan`` score never deploys.

    Args:
        candidate: the new model, a callable ``X -> output`` (e.g. an ``nn.Module``).
        current: the model in production, same contract.
        data: ``(X, y)`` (a tuple or :class:`companion.data.TensorData`), ``X`` of
            shape ``(N, ...)`` and ``y`` of shape ``(N,)``.
        metric: a name in :data:`METRICS` (``"accuracy"``, ``"precision"``,
            ``"recall"``, ``"f1"``, ``"roc_auc"``, ``"pr_auc"``), whose model output
            is converted to labels or scores for you (outputs are logits), or a
            callable ``metric(y, output) -> float`` that receives the raw outputs.
        min_gain: the least improvement worth a redeploy, a float (negative values
            tolerate a small loss, e.g. for a cheaper model).
        higher_is_better: the metric's direction; required for a callable metric,
            and must agree with the table for a named one.

    Returns:
        A :class:`ModelComparison`.

    Example:
        >>> X = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]]); y = torch.tensor([0, 0, 1, 1])
        >>> good, bad = (lambda x: x[:, 0]), (lambda x: -x[:, 0])
        >>> result = compare_models(good, bad, (X, y), metric="accuracy", min_gain=0.05)
        >>> result.deploy, result.gain
        (True, 1.0)
    """
    check_callable("candidate", candidate)
    check_callable("current", current)
    try:
        X, y = data
    except (TypeError, ValueError):
        raise TypeError(message("data", "a pair (X, y)", data)) from None
    X = check_tensor("X", as_tensor("X", X))
    y = check_tensor("y", as_tensor("y", y), ndim=1)
    check_same_length("X", X, "y", y)
    min_gain = check_float("min_gain", min_gain)
    if higher_is_better is not None:
        check_instance("higher_is_better", higher_is_better, bool, "a bool")

    if isinstance(metric, str):
        spec = METRICS[check_choice("metric", metric, tuple(METRICS))]
        if higher_is_better is not None and higher_is_better != spec.higher_is_better:
            raise ValueError(
                message("higher_is_better", f"{spec.higher_is_better} for {metric!r}", higher_is_better)
            )
        name, direction = metric, spec.higher_is_better

        def score(model: Callable[[torch.Tensor], torch.Tensor]) -> float:
            return spec.fn(y, spec.convert(predict_logits(model, X)))
    else:
        check_callable("metric", metric)
        if higher_is_better is None:
            raise ValueError(message("higher_is_better", "True or False for a callable metric", None))
        name = getattr(metric, "__name__", type(metric).__name__)
        direction = higher_is_better

        def score(model: Callable[[torch.Tensor], torch.Tensor]) -> float:
            return float(metric(y, predict_logits(model, X)))

    candidate_score, current_score = score(candidate), score(current)
    gain = candidate_score - current_score if direction else current_score - candidate_score
    if math.isnan(gain):
        deploy, reason = False, f"keep the current model: {name} is undefined (nan) on these data"
    elif gain >= min_gain:
        deploy = True
        reason = (f"deploy: candidate {name} {candidate_score:.4g} vs current "
                  f"{current_score:.4g}, gain {gain:+.4g} >= min_gain {min_gain:.4g}")
    else:
        deploy = False
        reason = (f"keep the current model: candidate {name} {candidate_score:.4g} vs current "
                  f"{current_score:.4g}, gain {gain:+.4g} < min_gain {min_gain:.4g}")
    return ModelComparison(
        name, candidate_score, current_score, gain, min_gain, direction, deploy, reason
    )
