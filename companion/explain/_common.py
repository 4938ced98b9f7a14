"""What the attribution methods share: their result type, target scores and argument checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from companion._validation import as_tensor, check_float, check_instance, check_tensor, message

__all__ = [
    "Target",
    "Attributions",
    "check_model",
    "check_attribution_arguments",
    "target_scores",
    "completeness_error",
    "top_fraction_mask",
]

Target = int | torch.Tensor | None
"""The output to explain: ``None`` for a model with one output per example, an int
class for every example, or a ``(N,)`` tensor of classes."""


@dataclass
class Attributions:
    """Per-feature attributions and how far they are from summing to the prediction change.

    Attributes:
        attributions: one value per input feature, the shape of ``inputs``: ``(N, ...)``.
        error: relative completeness (efficiency) error per example, shape ``(N,)``:
            ``|sum(attributions) - (f(x) - f(b))| / |f(x) - f(b)|``.
        n_steps: integration steps (integrated gradients) or permutations (sampled
            Shapley) that produced them.
    """

    attributions: torch.Tensor
    error: torch.Tensor
    n_steps: int


def check_model(model: Any) -> torch.nn.Module:
    """``model`` if it is an ``nn.Module``, else a TypeError."""
    return check_instance("model", model, torch.nn.Module, "a torch.nn.Module")


def check_attribution_arguments(
    model: Any, inputs: Any, target: Target, baselines: Any
) -> tuple[torch.nn.Module, torch.Tensor, Target, torch.Tensor]:
    """Check the arguments every attribution method takes; return them ready to use.

    ``inputs`` must be a finite float batch ``(N, ...)``; a tensor ``target`` moves to
    the inputs' device; ``baselines`` becomes a tensor shaped like ``inputs``.
    """
    model = check_model(model)
    inputs = _check_inputs(inputs)
    target = _check_target(target, len(inputs), inputs.device)
    return model, inputs, target, _check_baselines(baselines, inputs)


def _check_inputs(inputs: Any) -> torch.Tensor:
    """A finite float batch ``(N, ...)`` with at least 2 dimensions, or a ValueError/TypeError."""
    inputs = check_tensor("inputs", inputs, floating=True, finite=True)
    if inputs.ndim < 2:
        raise ValueError(message("inputs", "a batch of shape (N, ...) with at least 2 dimensions", inputs))
    return inputs


def _check_target(target: Target, n: int, device: torch.device) -> Target:
    """Validate ``target`` for ``n`` examples and move a tensor target to ``device``."""
    if target is None:
        return None
    if isinstance(target, torch.Tensor):
        if target.dtype.is_floating_point or target.shape != (n,):
            raise ValueError(message("target", f"None, an int or an integer tensor of shape ({n},)", target))
        return target.to(device)
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise TypeError(message("target", f"None, an int >= 0 or an integer tensor of shape ({n},)", target))
    return target


def _check_baselines(baselines: Any, inputs: torch.Tensor) -> torch.Tensor:
    """Turn ``None`` (zeros), a number or a tensor broadcastable to ``inputs`` into a tensor."""
    if baselines is None:
        return torch.zeros_like(inputs)
    if isinstance(baselines, (int, float)) and not isinstance(baselines, bool):
        return torch.full_like(inputs, check_float("baselines", baselines))
    baselines = as_tensor("baselines", baselines, dtype=inputs.dtype).to(inputs.device)
    try:  # a copy in the inputs' memory format (channels-last stays channels-last)
        return torch.empty_like(inputs).copy_(torch.broadcast_to(baselines, inputs.shape))
    except RuntimeError:
        raise ValueError(
            message("baselines", f"None, a number or a tensor broadcastable to {tuple(inputs.shape)}", baselines)
        ) from None


@torch.no_grad()
def target_scores(model: torch.nn.Module, inputs: torch.Tensor, target: Target) -> torch.Tensor:
    """The explained output ``f(x)`` per example, shape ``(N,)``."""
    out = model(inputs)
    if target is None:
        if out.ndim > 1 and out[0].numel() != 1:
            raise ValueError(message("target", "an int or tensor of classes for a model with several outputs", None))
        return out.reshape(len(inputs))
    index = torch.as_tensor(target, device=out.device).expand(len(inputs))
    return out.gather(1, index[:, None]).squeeze(1)


def completeness_error(
    attributions: torch.Tensor, scores: torch.Tensor, baseline_scores: torch.Tensor
) -> torch.Tensor:
    """``|sum(attributions) - (f(x) - f(b))| / |f(x) - f(b)|`` per example, shape ``(N,)``.

    The denominator is floored at ``1e-12`` so that an input whose prediction equals
    the baseline's reports its absolute error instead of dividing by zero.
    """
    change = (scores - baseline_scores).double()
    total = attributions.reshape(len(attributions), -1).double().sum(dim=1)
    return ((total - change).abs() / change.abs().clamp_min(1e-12)).to(attributions.dtype)


def top_fraction_mask(saliency: torch.Tensor, fraction: float) -> torch.Tensor:
    """The most salient ``fraction`` of pixels: those at or above the ``1 - fraction`` quantile.

    Args:
        saliency: a map of shape ``(H, W)`` (or any shape).
        fraction: share of pixels to keep, in ``(0, 1]``. Ties at the threshold are
            all kept, so a piecewise-constant map (XRAI's) may return a little more.

    Returns:
        A bool tensor shaped like ``saliency``.

    Example:
        >>> top_fraction_mask(torch.arange(10.0), 0.2).nonzero().flatten().tolist()
        [8, 9]
    """
    saliency = check_tensor("saliency", saliency, finite=True)
    fraction = check_float("fraction", fraction, low=0, high=1, low_open=True)
    values = saliency.double().flatten()
    threshold = torch.quantile(values, 1.0 - fraction, interpolation="higher")
    return saliency.double() >= threshold
