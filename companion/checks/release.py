"""Should this model ship? Compare it with the model it would replace, and export it.

:func:`compare_models` scores a candidate and the current model on the same data
with one metric and decides whether the candidate's gain (and, optionally, its own
score) is enough to deploy it; :func:`check_beats_baseline` is the quality gate
that raises when it is not. :func:`check_export_roundtrip` exports the model as a
serving system loads it and checks the reloaded model gives the same outputs.

Named metrics come from :mod:`companion.metrics`; model outputs are logits, turned
into what each metric needs by :func:`~companion.inference.logits_to_labels` and
:func:`~companion.inference.logits_to_scores`: ``(N,)`` or ``(N, 1)`` for a binary
classifier, ``(N, C)`` for ``C`` classes.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
from companion.checks._report import failure, name_of, shape_of
from companion.inference import logits_to_labels, logits_to_scores, predict_logits
from companion.utils import eval_mode, model_device

__all__ = [
    "METRICS",
    "ModelComparison",
    "compare_models",
    "check_beats_baseline",
    "check_export_roundtrip",
]


@dataclass(frozen=True)
class _Metric:
    fn: M.Metric
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
        min_score: the worst score the candidate could have (a floor, or a ceiling
            for a lower-is-better metric), or ``None``.
        higher_is_better: the metric's direction.
        n_examples: the number of examples both models were scored on.
        deploy: ``True`` when both scores are defined, ``gain >= min_gain`` and the
            candidate's score is within ``min_score``.
        reason: one line that explains the decision.
    """

    metric: str
    candidate_score: float
    current_score: float
    gain: float
    min_gain: float
    min_score: float | None
    higher_is_better: bool
    n_examples: int
    deploy: bool
    reason: str


def compare_models(
    candidate: Callable[[torch.Tensor], torch.Tensor],
    current: Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    *,
    metric: str | M.Metric,
    min_gain: float = 0.0,
    min_score: float | None = None,
    higher_is_better: bool | None = None,
) -> ModelComparison:
    """Evaluate a candidate and the current model on the same data and decide whether to deploy.

    Both models see exactly the same ``X``; comparing scores computed on different
    data (say, each model's own validation split) would mix the models' quality with
    the data's difficulty. The candidate is deployed when it beats the current model
    by at least ``min_gain`` and, if ``min_score`` is given, its own score reaches
    that absolute floor (in the metric's direction); a ``nan`` score never deploys.

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
        min_score: the worst acceptable candidate score, a float, or ``None``.
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
    if min_score is not None:
        min_score = check_float("min_score", min_score)
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
    short = min_score is not None and not (
        candidate_score >= min_score if direction else candidate_score <= min_score)
    if math.isnan(gain):
        deploy, reason = False, f"keep the current model: {name} is undefined (nan) on these data"
    elif short:
        deploy = False
        reason = (f"keep the current model: candidate {name} {candidate_score:.4g} misses the "
                  f"{'floor' if direction else 'ceiling'} {min_score:.4g}")
    elif gain >= min_gain:
        deploy = True
        reason = (f"deploy: candidate {name} {candidate_score:.4g} vs current "
                  f"{current_score:.4g}, gain {gain:+.4g} >= min_gain {min_gain:.4g}")
    else:
        deploy = False
        reason = (f"keep the current model: candidate {name} {candidate_score:.4g} vs current "
                  f"{current_score:.4g}, gain {gain:+.4g} < min_gain {min_gain:.4g}")
    return ModelComparison(
        name, candidate_score, current_score, gain, min_gain, min_score, direction, len(y), deploy, reason
    )


def check_beats_baseline(
    candidate: Callable[[torch.Tensor], torch.Tensor],
    baseline: Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    *,
    metric: str | M.Metric,
    min_gain: float = 0.0,
    min_score: float | None = None,
    higher_is_better: bool | None = None,
) -> ModelComparison:
    """The quality gate: block a candidate from serving unless it beats the baseline.

    :func:`compare_models` scores both models on the same held-out ``data`` and
    decides; the gate passes when the decision is to deploy: the candidate's gain
    over ``baseline`` (the model in production, or a simple baseline for a first
    model) is at least ``min_gain`` and, if given, its own score reaches
    ``min_score``. Otherwise it raises with the comparison's reason.

    Args:
        candidate: the model that wants to ship, a callable ``X -> output`` (logits).
        baseline: the model to beat, same contract.
        data: held-out ``(X, y)`` neither model trained on (a tuple or
            :class:`companion.data.TensorData`).
        metric: a name in :data:`METRICS` (e.g. ``"accuracy"``, ``"roc_auc"``) or a
            callable ``metric(y, output)``.
        min_gain: the least improvement to ship, a float.
        min_score: the worst acceptable candidate score, or ``None``.
        higher_is_better: the metric's direction (needed for a callable metric).

    Returns:
        The :class:`ModelComparison`, when the gate passes.

    Raises:
        ModelCheckError: with the comparison's reason, when the gate blocks.

    Example:
        >>> X = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]]); y = torch.tensor([0, 0, 1, 1])
        >>> check_beats_baseline(lambda x: x[:, 0], lambda x: -x[:, 0], (X, y), metric="accuracy").gain
        1.0
    """
    result = compare_models(candidate, baseline, data, metric=metric, min_gain=min_gain,
                            min_score=min_score, higher_is_better=higher_is_better)
    if not result.deploy:
        raise failure("check_beats_baseline", result.reason,
                      f"candidate {name_of(candidate)} vs baseline {name_of(baseline)} on "
                      f"{result.n_examples} held-out examples",
                      "keep serving the baseline; find what the candidate gets wrong (per-slice "
                      "metrics, errors by class) and improve it (features, capacity, tuning), or "
                      "check it was trained and exported from the right run; do not lower the "
                      "bar to pass")
    return result


def check_export_roundtrip(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    path: str | Path | None = None,
    dynamic_batch: bool = True,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Export the model as a serving system would load it, reload it, compare outputs.

    The model is exported with :func:`torch.export.export` (the batch dimension
    dynamic unless ``dynamic_batch=False``), saved to a ``.pt2`` file, loaded
    back with :func:`torch.export.load`, and run on ``example_input`` and on its
    first row (a batch of one, as online serving sends). Outputs must match the
    original model's in eval mode, within ``atol + rtol * |expected|``
    (:func:`torch.testing.assert_close`). (TorchScript, the older route, is
    deprecated in recent PyTorch.)

    Args:
        model: the network (put in eval mode for the check, then each submodule's
            mode is restored).
        example_input: a batch ``(N, ...)`` with N >= 2.
        path: where to write the ``.pt2`` file; a temporary file by default.
        dynamic_batch: export with a dynamic batch dimension.
        atol: absolute tolerance of the comparison, a float >= 0.
        rtol: relative tolerance of the comparison, a float >= 0.

    Returns:
        The reloaded model as a callable module.

    Raises:
        ModelCheckError: if export, saving or loading fails, or outputs differ.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> served = check_export_roundtrip(model, torch.randn(5, 3))
        >>> tuple(served(torch.randn(2, 3)).shape)
        (2, 1)
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("example_input", example_input)
    if len(example_input) < 2:
        raise ValueError(message("example_input", "a batch of at least 2 rows", example_input))
    atol = check_float("atol", atol, low=0)
    rtol = check_float("rtol", rtol, low=0)
    x = example_input.to(model_device(model))
    batches = {"the example batch": x, "a batch of one row": x[:1] if dynamic_batch else x}
    with eval_mode(model):
        with torch.no_grad():
            expected = {"the example batch": model(x)}
            try:
                expected["a batch of one row"] = model(batches["a batch of one row"])
            except Exception as error:
                raise failure("check_export_roundtrip",
                              f"the model itself fails on a batch of one row: {error}",
                              f"{name_of(model)}.forward with input shape {shape_of(x[:1])}",
                              "do not hard-code the batch size (use x.shape[0] or -1)") from error
        shapes = ({0: torch.export.Dim.DYNAMIC},) if dynamic_batch else None
        try:
            program = torch.export.export(model, (x,), dynamic_shapes=shapes)
        except Exception as error:
            raise failure("check_export_roundtrip",
                          f"torch.export could not capture the model: {type(error).__name__}: "
                          f"{str(error).splitlines()[0]}",
                          f"{name_of(model)}.forward with input shape {shape_of(x)}",
                          "remove Python control flow that depends on tensor values (use "
                          "torch.where/torch.cond) and shapes hard-coded to the batch size "
                          "(use x.shape[0] or -1)") from error
        with tempfile.TemporaryDirectory() as folder:
            file = Path(path) if path is not None else Path(folder) / "model.pt2"
            torch.export.save(program, file)
            served = torch.export.load(file).module()
        with torch.no_grad():
            actual = {batch: served(inputs) for batch, inputs in batches.items()}
    for batch, inputs in batches.items():
        try:
            torch.testing.assert_close(actual[batch], expected[batch], atol=atol, rtol=rtol, equal_nan=True)
        except AssertionError as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            details = [line for line in lines if line.startswith(("Mismatched", "Greatest absolute"))]
            raise failure("check_export_roundtrip",
                          f"the reloaded model's output differs from the original's (atol={atol:g}, "
                          f"rtol={rtol:g}): {'; '.join(details or lines[:1])}",
                          f"{batch}, input shape {shape_of(inputs)}",
                          "make forward deterministic in eval mode (no random draws, dropout "
                          "off) and keep all state in parameters or registered buffers") from error
    return served
