"""Figures of feature attributions (:mod:`companion.explain`): a heat map over an image, an
image's most important region, and one bar per tabular feature.

Each function returns the Axes it drew on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from companion._validation import check_float, check_instance, message
from companion.plots._common import as_values, axes_for, require_values, tick_names

__all__ = ["plot_attribution_overlay", "plot_top_region", "plot_feature_attributions"]


def _image(image: Any) -> np.ndarray:
    """A finite ``(C, H, W)`` or ``(H, W)`` image as an ``(H, W[, C])`` array in [0, 1]."""
    array = as_values("image", image, ndim=(2, 3), finite=True)
    if array.ndim == 3:
        array = array.transpose(1, 2, 0)
        array = array[..., 0] if array.shape[-1] == 1 else array
    low, high = array.min(), array.max()
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _check_same_size(name: str, array: np.ndarray, shown: np.ndarray) -> None:
    if array.shape[-2:] != shown.shape[:2]:
        requirement = f"of the image's height and width {shown.shape[:2]}"
        raise ValueError(message(name, requirement, array))


def plot_attribution_overlay(
    image: Any, attribution: Any, *, alpha: float = 0.6, title: str = "", ax: Axes | None = None
) -> Axes:
    """An image in grey with an attribution heat map over it.

    Args:
        image: ``(C, H, W)`` or ``(H, W)``, any finite value range.
        attribution: ``(H, W)`` map, or ``(C, H, W)`` reduced to ``sum(|a|)`` over channels.
        alpha: opacity of the heat map, in ``[0, 1]``.
        title: the Axes' title.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> import torch
        >>> ax = plot_attribution_overlay(torch.rand(3, 8, 8), torch.randn(3, 8, 8), title="IG")
        >>> [image.get_array().shape for image in ax.get_images()], ax.get_title()
        ([(8, 8), (8, 8)], 'IG')
    """
    shown = _image(image)
    heat = as_values("attribution", attribution, ndim=(2, 3))
    _check_same_size("attribution", heat, shown)
    alpha = check_float("alpha", alpha, low=0, high=1)
    check_instance("title", title, str, "a str")
    ax = axes_for(ax, (3.5, 3.5))
    ax.imshow(shown.mean(axis=-1) if shown.ndim == 3 else shown, cmap="gray")
    ax.imshow(np.abs(heat).sum(axis=0) if heat.ndim == 3 else heat, cmap="inferno", alpha=alpha)
    ax.set_title(title)
    ax.axis("off")
    return ax


def plot_top_region(image: Any, mask: Any, *, title: str = "", ax: Axes | None = None) -> Axes:
    """An image with everything outside ``mask`` (e.g. XRAI's top 10%) dimmed.

    Args:
        image: ``(C, H, W)`` or ``(H, W)``, any finite value range.
        mask: ``(H, W)`` bool (or 0/1), the pixels to keep bright.
        title: the Axes' title.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> import torch
        >>> mask = torch.zeros(8, 8, dtype=torch.bool)
        >>> mask[:4] = True
        >>> ax = plot_top_region(torch.rand(3, 8, 8), mask, title="XRAI top 50%")
        >>> ax.get_images()[0].get_array().shape, len(ax.collections)  # the image, the outline
        ((8, 8, 3), 1)
    """
    shown = _image(image)
    keep = as_values("mask", mask, ndim=2)
    _check_same_size("mask", keep, shown)
    require_values("mask", keep, (keep == 0) | (keep == 1), "a mask of booleans (or 0 and 1)")
    check_instance("title", title, str, "a str")
    keep = keep.astype(bool)
    ax = axes_for(ax, (3.5, 3.5))
    dim = np.where(keep[..., None] if shown.ndim == 3 else keep, shown, 0.2 * shown)
    ax.imshow(dim, cmap=None if shown.ndim == 3 else "gray")
    ax.contour(keep, levels=[0.5], colors="cyan", linewidths=1)
    ax.set_title(title)
    ax.axis("off")
    return ax


def plot_feature_attributions(
    values: Any, names: Sequence[str], *, title: str = "", ax: Axes | None = None
) -> Axes:
    """Horizontal bars of one attribution per feature, largest magnitude on top.

    Args:
        values: ``(F,)`` finite attributions (one prediction's, or an aggregate).
        names: ``F`` feature names (empty for 0..F-1).
        title: the Axes' title.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_feature_attributions([0.1, -3.0, 1.0], ["age", "income", "tenure"])
        >>> [tick.get_text() for tick in ax.get_yticklabels()]  # bottom to top
        ['age', 'tenure', 'income']
    """
    values = as_values("values", values, finite=True)
    names = tick_names("names", names, len(values))
    check_instance("title", title, str, "a str")
    ax = axes_for(ax, (5, 0.3 * len(names) + 1))
    order = np.argsort(np.abs(values))
    ax.barh([names[i] for i in order], values[order],
            color=["tab:red" if v < 0 else "tab:blue" for v in values[order]])
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("attribution")
    ax.set_title(title)
    return ax
