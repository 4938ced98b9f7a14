"""Deciding whether to redeploy: a candidate model against the current one, on the same data.

:func:`compare_models` runs both models on the same ``(X, y)``, scores them with one
metric and decides whether the candidate's gain is large enough to deploy it.
Named metrics come from :mod:`companion.metrics`; the model outputs are turned into
what each metric needs (labels or scores) by :func:`output_to_labels` and
:func:`output_to_scores`, which follow the course's convention that models return
logits: ``(N,)`` or ``(N, 1)`` for a binary classifier, ``(N, C)`` for ``C`` classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

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

__all__ = [
    "METRICS",
    "ModelComparison",
    "compare_models",
    "predict",
    "output_to_labels",
    "output_to_scores",
    "accuracy_from_logits",
]


def output_to_labels(output: torch.Tensor) -> torch.Tensor:
    """Predicted labels from logits: ``logit > 0`` for ``(N,)``/``(N, 1)``, argmax for ``(N, C)``.

    Example:
        >>> output_to_labels(torch.tensor([-1.0, 2.0])).tolist()
        [0, 1]
    """
    check_tensor("output", output, ndim=(1, 2))
    if output.ndim == 2 and output.shape[1] > 1:
        return output.argmax(dim=1)
    return (output.reshape(-1) > 0).long()


def output_to_scores(output: torch.Tensor) -> torch.Tensor:
    """Probability of the positive class from binary logits: ``(N,)``, ``(N, 1)`` or ``(N, 2)``.

    Example:
        >>> output_to_scores(torch.tensor([0.0])).tolist()
        [0.5]
    """
    check_tensor("output", output, ndim=(1, 2), floating=True)
    if output.ndim == 2 and output.shape[1] == 2:
        return torch.softmax(output, dim=1)[:, 1]
    if output.ndim == 2 and output.shape[1] != 1:
        raise ValueError(message("output", "binary logits of shape (N,), (N, 1) or (N, 2)", output))
    return torch.sigmoid(output.reshape(-1))


def accuracy_from_logits(y_true: Any, output: torch.Tensor) -> float:
    """Accuracy of a model's raw output (logits), for ``fit(metrics=...)`` and streams.

    Example:
        >>> accuracy_from_logits(torch.tensor([1, 0]), torch.tensor([[2.0], [-1.0]]))
        1.0
    """
    return M.accuracy(y_true, output_to_labels(output))


@dataclass(frozen=True)
class _Metric:
    fn: Callable[[Any, Any], float]
    higher_is_better: bool
    convert: Callable[[torch.Tensor], torch.Tensor]


METRICS: dict[str, _Metric] = {
    "accuracy": _Metric(M.accuracy, True, output_to_labels),
    "precision": _Metric(M.precision, True, output_to_labels),
    "recall": _Metric(M.recall, True, output_to_labels),
    "f1": _Metric(M.f1, True, output_to_labels),
    "roc_auc": _Metric(M.roc_auc, True, output_to_scores),
    "pr_auc": _Metric(M.pr_auc, True, output_to_scores),
}
"""Metrics :func:`compare_models` knows by name; all of them are "higher is better"."""


def predict(model: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``X`` without gradients, in eval mode, on the model's device.

    A :class:`torch.nn.Module` is put in eval mode for the call and then back in its
    previous mode; any other callable is just called. The output comes back on the CPU.

    Example:
        >>> predict(torch.nn.Identity(), torch.ones(2)).tolist()
        [1.0, 1.0]
    """
    check_callable("model", model)
    if isinstance(model, nn.Module):
        parameter = next(model.parameters(), None)
        if parameter is not None:
            X = X.to(parameter.device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(X)
        finally:
            model.train(was_training)
    else:
        with torch.no_grad():
            out = model(X)
    return as_tensor("model(X)", out).detach().cpu()


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
            return spec.fn(y, spec.convert(predict(model, X)))
    else:
        check_callable("metric", metric)
        if higher_is_better is None:
            raise ValueError(message("higher_is_better", "True or False for a callable metric", None))
        name = getattr(metric, "__name__", type(metric).__name__)
        direction = higher_is_better

        def score(model: Callable[[torch.Tensor], torch.Tensor]) -> float:
            return float(metric(y, predict(model, X)))

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
