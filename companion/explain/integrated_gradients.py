"""Integrated gradients (Sundararajan et al., 2017) on captum, with its completeness error."""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import IntegratedGradients

from companion._validation import check_choice, check_float, check_int, message
from companion.explain._common import (
    Attributions,
    Target,
    check_attribution_arguments,
    completeness_error,
    target_scores,
)

__all__ = ["integrated_gradients", "METHODS"]

METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def integrated_gradients(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    *,
    target: Target,
    baselines: Any = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
    max_error: float | None = None,
    max_steps: int = 1600,
) -> Attributions:
    """Integrated gradients of ``model``'s ``target`` output, with the approximation error.

    The attribution of feature ``i`` is ``(x_i - b_i)`` times the average gradient of
    the output along the straight path from the baseline ``b`` to ``x``. The exact
    integral satisfies *completeness*: attributions sum to ``f(x) - f(b)``; the
    quadrature with ``n_steps`` points does so only approximately, and the relative
    gap is reported as ``error``. Gradients come from captum's
    :class:`~captum.attr.IntegratedGradients`.

    Args:
        model: a differentiable model mapping ``(N, ...)`` to ``(N, C)`` or ``(N,)``.
            Call ``model.eval()`` first if it has dropout or batch norm.
        inputs: a float batch ``(N, ...)`` on the model's device.
        target: the output to explain: an int class, a ``(N,)`` tensor of classes,
            or ``None`` for a model with a single output.
        baselines: the reference input: ``None`` (zeros), a number, or a tensor
            broadcastable to ``inputs``.
        n_steps: quadrature points on the path, an int >= 2.
        method: captum's quadrature rule, one of ``METHODS``.
        internal_batch_size: how many path points go through the model at once
            (``None``: all ``N * n_steps``).
        max_error: if given, double ``n_steps`` until every example's error is below
            it (a float > 0, e.g. ``0.05``) or ``n_steps`` would pass ``max_steps``.
        max_steps: the most steps ``max_error`` may ask for, an int >= ``n_steps``.

    Returns:
        :class:`Attributions` with ``attributions`` shaped like ``inputs``, the
        per-example relative ``error`` ``(N,)`` and the ``n_steps`` used.

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> x = torch.tensor([[1.0, 2.0, 3.0]])
        >>> result = integrated_gradients(model, x, target=None)
        >>> torch.allclose(result.attributions, model.weight * x)
        True
    """
    model, inputs, target, baselines = check_attribution_arguments(model, inputs, target, baselines)
    n_steps = check_int("n_steps", n_steps, low=2)
    method = check_choice("method", method, METHODS)
    if internal_batch_size is not None:
        internal_batch_size = check_int("internal_batch_size", internal_batch_size, low=1)
    if max_error is not None:
        max_error = check_float("max_error", max_error, low=0, low_open=True)
        max_steps = check_int("max_steps", max_steps, low=n_steps)

    with torch.enable_grad():  # captum needs the output to depend on the input through autograd
        if not model(inputs[:1].detach().requires_grad_()).requires_grad:
            raise ValueError(message("model", "differentiable: its output computed from `inputs` by autograd", model))
    scores = target_scores(model, inputs, target)
    baseline_scores = target_scores(model, baselines, target)
    explainer = IntegratedGradients(model)
    while True:
        attributions = explainer.attribute(
            inputs,
            baselines=baselines,
            target=target,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
        )
        error = completeness_error(attributions, scores, baseline_scores)
        if max_error is None or bool((error < max_error).all()) or 2 * n_steps > max_steps:
            return Attributions(attributions.detach(), error, n_steps)
        n_steps *= 2
