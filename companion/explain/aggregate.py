"""From single predictions to the data set: aggregating attributions and scoring them against masks."""

from __future__ import annotations

from typing import Any

import torch

from companion._validation import as_tensor, check_choice, check_tensor, message

__all__ = ["aggregate_attributions", "fraction_inside", "REDUCTIONS"]

REDUCTIONS = ("mean_abs", "mean")


def aggregate_attributions(
    attributions: torch.Tensor,
    *,
    groups: Any = None,
    reduce: str = "mean_abs",
) -> dict[Any, torch.Tensor]:
    """Summarize per-prediction attributions over the whole data set and over slices.

    One prediction's attributions say what *that* prediction leaned on. Averaged over
    many predictions they say what the model leans on in general; averaged over a
    slice (a class, a segment of users) they say what it leans on there.

    Args:
        attributions: ``(N, ...)``, one row of feature attributions per prediction.
        groups: ``None``, or a slice label per prediction, ``(N,)`` (ints, bools or
            strings), to aggregate each slice too.
        reduce: ``"mean_abs"`` (average magnitude: how much a feature matters,
            whatever the sign) or ``"mean"`` (average signed effect; opposite effects
            cancel).

    Returns:
        ``{"all": summary}`` plus ``{label: summary}`` for each slice label (in sorted
        order); each summary has shape ``attributions.shape[1:]``.

    Example:
        >>> a = torch.tensor([[1.0, -2.0], [3.0, 2.0]])
        >>> out = aggregate_attributions(a, groups=torch.tensor([0, 1]))
        >>> out["all"].tolist(), out[1].tolist()
        ([2.0, 2.0], [3.0, 2.0])
    """
    attributions = check_tensor("attributions", attributions, floating=True, finite=True)
    if attributions.ndim < 2:
        raise ValueError(message("attributions", "a tensor of shape (N, ...) with at least 2 dimensions", attributions))
    reduce = check_choice("reduce", reduce, REDUCTIONS)
    values = attributions.abs() if reduce == "mean_abs" else attributions
    summaries: dict[Any, torch.Tensor] = {"all": values.mean(dim=0)}
    if groups is None:
        return summaries
    labels = list(groups) if not isinstance(groups, torch.Tensor) else groups.tolist()
    if len(labels) != len(attributions):
        raise ValueError(message("groups", f"{len(attributions)} slice labels, one per row", groups))
    for label in sorted(set(labels)):
        rows = torch.tensor([item == label for item in labels], device=attributions.device)
        summaries[label] = values[rows].mean(dim=0)
    return summaries


def fraction_inside(selected: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Share of the selected pixels that lie inside the true object, per image.

    Use it to score an attribution's top region (e.g. ``XRAIResult.top_mask(0.1)``)
    against a known object mask: 1 means every selected pixel is on the object.

    Args:
        selected: bool masks ``(H, W)`` or ``(N, H, W)``.
        truth: bool masks of the same shape.

    Returns:
        A float tensor, ``()`` or ``(N,)``; 0 where nothing is selected.

    Example:
        >>> selected = torch.tensor([[True, True], [False, False]])
        >>> truth = torch.tensor([[True, False], [True, False]])
        >>> float(fraction_inside(selected, truth))
        0.5
    """
    selected = as_tensor("selected", selected)
    truth = as_tensor("truth", truth)
    for name, mask in (("selected", selected), ("truth", truth)):
        if mask.dtype != torch.bool or mask.ndim not in (2, 3):
            raise ValueError(message(name, "a bool mask of shape (H, W) or (N, H, W)", mask))
    if selected.shape != truth.shape:
        raise ValueError(message("truth", f"a mask of shape {tuple(selected.shape)} like `selected`", truth))
    inside = (selected & truth.to(selected.device)).flatten(-2).sum(-1).float()
    return inside / selected.flatten(-2).sum(-1).clamp_min(1).float()
