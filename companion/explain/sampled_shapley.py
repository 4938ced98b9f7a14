"""Sampled Shapley values (Castro et al., 2009) on captum, with their efficiency error."""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import ShapleyValueSampling

from companion._validation import check_int, check_tensor, message
from companion.explain._common import (
    Attributions,
    Target,
    check_attribution_arguments,
    completeness_error,
    target_scores,
)

__all__ = ["sampled_shapley"]


def sampled_shapley(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    *,
    target: Target,
    feature_mask: torch.Tensor | None = None,
    n_samples: int = 25,
    baselines: Any = None,
    perturbations_per_eval: int = 1,
) -> Attributions:
    """Shapley values estimated from ``n_samples`` random feature orderings.

    For each random ordering of the features (or feature groups), features are
    switched from the baseline to their input value one at a time and each is
    credited with the change of the output it causes; the credits are averaged over
    orderings. Each ordering's credits sum exactly to ``f(x) - f(b)`` (*efficiency*),
    so ``error`` is float round-off; the sampling error lies in how the total is
    shared among features, and shrinks as ``n_samples`` grows. Works for any model,
    differentiable or not, at ``n_samples * n_features`` forward passes per example.
    Built on captum's :class:`~captum.attr.ShapleyValueSampling`.

    Args:
        model: maps ``(N, ...)`` to ``(N, C)`` or ``(N,)``; need not be differentiable.
        inputs: a float batch ``(N, ...)``.
        target: an int class, a ``(N,)`` tensor of classes, or ``None`` for a model
            with a single output.
        feature_mask: integer tensor broadcastable to ``inputs`` giving each input
            element its feature group (``0 .. G-1``); ``None``: every element is its
            own feature.
        n_samples: random orderings, an int >= 1.
        baselines: ``None`` (zeros), a number, or a tensor broadcastable to ``inputs``.
        perturbations_per_eval: perturbed copies evaluated per forward pass, an int >= 1.

    Returns:
        :class:`Attributions` shaped like ``inputs`` (features of a group share its
        value), the relative efficiency ``error`` ``(N,)`` and ``n_steps = n_samples``.

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> x = torch.tensor([[1.0, 2.0, 3.0]])
        >>> result = sampled_shapley(model, x, target=None, n_samples=5)
        >>> torch.allclose(result.attributions, model.weight * x, atol=1e-6)
        True
    """
    model, inputs, target, baselines = check_attribution_arguments(model, inputs, target, baselines)
    n_samples = check_int("n_samples", n_samples, low=1)
    perturbations_per_eval = check_int("perturbations_per_eval", perturbations_per_eval, low=1)
    if feature_mask is not None:
        check_tensor("feature_mask", feature_mask)
        if feature_mask.is_floating_point():
            raise TypeError(message("feature_mask", "an integer tensor", feature_mask))
        try:
            torch.broadcast_shapes(feature_mask.shape, inputs.shape)
        except RuntimeError:
            raise ValueError(
                message("feature_mask", f"a tensor broadcastable to {tuple(inputs.shape)}", feature_mask)
            ) from None
        feature_mask = feature_mask.to(inputs.device)

    with torch.no_grad():
        attributions = ShapleyValueSampling(model).attribute(
            inputs,
            baselines=baselines,
            target=target,
            feature_mask=feature_mask,
            n_samples=n_samples,
            perturbations_per_eval=perturbations_per_eval,
        )
    scores = target_scores(model, inputs, target)
    baseline_scores = target_scores(model, baselines, target)
    if feature_mask is not None:  # captum gives every element of a group the group's value
        attributions_per_group = _group_totals(attributions, feature_mask)
        error = completeness_error(attributions_per_group, scores, baseline_scores)
    else:
        error = completeness_error(attributions, scores, baseline_scores)
    return Attributions(attributions, error, n_samples)


def _group_totals(attributions: torch.Tensor, feature_mask: torch.Tensor) -> torch.Tensor:
    """Sum of the attributions with one value per (example, group), shape ``(N, G)``."""
    n = len(attributions)
    groups = torch.broadcast_to(feature_mask, attributions.shape).reshape(n, -1).long()
    n_groups = int(groups.max()) + 1
    flat = attributions.reshape(n, -1)
    # mean over a group's elements (they all carry the group's value), then one per group
    sums = torch.zeros(n, n_groups, dtype=flat.dtype, device=flat.device).scatter_add_(1, groups, flat)
    counts = torch.zeros(n, n_groups, dtype=flat.dtype, device=flat.device).scatter_add_(
        1, groups, torch.ones_like(flat)
    )
    return sums / counts.clamp_min(1)
