"""Figures for diagnosing backpropagation: activation functions and their derivatives,
gradient norms per layer and per step, and dead ReLU units.

Each function returns the Axes it drew on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from companion._validation import check_instance, check_same_length, message
from companion.plots._common import (
    as_values,
    axes_for,
    check_frame,
    check_mapping,
    require_values,
    values_by_key,
)

__all__ = [
    "plot_activations",
    "plot_layer_gradient_norms",
    "plot_gradient_norm_history",
    "plot_dead_units",
]


def _two_axes(axes: Any) -> Sequence[Axes]:
    """``axes`` (two Axes, e.g. a row of ``plt.subplots``), or two side by side in a new figure."""
    if axes is None:
        return plt.subplots(1, 2, figsize=(9, 3.2))[1]
    requirement = "two matplotlib Axes or None"
    if isinstance(axes, np.ndarray):
        axes = axes.ravel().tolist()
    if isinstance(axes, str) or not isinstance(axes, Sequence):
        raise TypeError(message("axes", requirement, axes))
    if len(axes) != 2:
        raise ValueError(message("axes", requirement, axes))
    for i, ax in enumerate(axes):
        check_instance(f"axes[{i}]", ax, Axes, "a matplotlib Axes")
    return axes


def plot_activations(z: Any, curves: Any, *, axes: Any = None) -> Sequence[Axes]:
    """Activation functions (left) and their derivatives (right) over the same inputs.

    Args:
        z: the inputs ``(K,)``.
        curves: ``{name: (values (K,), derivatives (K,))}``, e.g. from autograd.
        axes: two Axes to draw on; a new figure when ``None``.

    Returns:
        The two Axes.

    Example:
        >>> import torch
        >>> z = torch.linspace(-3, 3, 7)
        >>> left, right = plot_activations(z, {"relu": (torch.relu(z), (z > 0).float())})
        >>> left.get_title(), right.get_title(), right.get_legend_handles_labels()[1]
        ('activation f(z)', "derivative f'(z)", ['relu'])
    """
    z = as_values("z", z, finite=True)
    check_mapping("curves", curves, "{name: (values, derivatives)}")
    pairs = {}
    for name, pair in curves.items():
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(message(f"curves[{name!r}]", "a pair (values, derivatives)", pair))
        pairs[name] = [as_values(f"curves[{name!r}][{i}]", part) for i, part in enumerate(pair)]
        for i, part in enumerate(pairs[name]):
            check_same_length(f"curves[{name!r}][{i}]", part, "z", z)
    axes = _two_axes(axes)
    for name, (values, grads) in pairs.items():
        axes[0].plot(z, values, label=name)
        axes[1].plot(z, grads, label=name)
    axes[0].set_title("activation f(z)")
    axes[1].set_title("derivative f'(z)")
    for ax in axes:
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("z")
        ax.legend()
    return axes


def plot_layer_gradient_norms(runs: Any, *, ax: Axes | None = None) -> Axes:
    """Mean gradient norm of each layer, input side on the left, one line per run (log scale).

    A line that falls steeply towards the input shows vanishing gradients; one that
    rises towards the input (or leaves the plot: Inf or NaN) shows exploding gradients.

    Args:
        runs: ``{run name: {layer name: norm}}``, e.g.
            ``{"sigmoid": monitor.layer_norms()}`` from
            :class:`companion.diagnostics.GradientMonitor`; layers in model order. The
            ticks name the layers of the deepest run.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_layer_gradient_norms({"sigmoid": {"0": 1e-4, "2": 1e-2, "4": 0.5}})
        >>> [tick.get_text() for tick in ax.get_xticklabels()], ax.get_yscale()
        (['0', '2', '4'], 'log')
    """
    check_mapping("runs", runs, "{run name: {layer name: norm}}")
    norms_by_run = {}
    for run, norms in runs.items():
        check_mapping(f"runs[{run!r}]", norms, "{layer name: norm}")
        norms_by_run[run] = as_values(f"runs[{run!r}].values()", list(norms.values()))
    ax = axes_for(ax)
    names: list[str] = []
    for run, values in norms_by_run.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=run)
        names = names if len(names) >= len(values) else [str(name) for name in runs[run]]
    ax.set_yscale("log")
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("mean weight-gradient norm (log)")
    ax.legend()
    return ax


def plot_gradient_norm_history(step_norms: Any, *, ax: Axes | None = None) -> Axes:
    """Each layer's gradient norm at every training step (log scale).

    Non-finite norms (NaN or Inf) cannot be drawn; the first step that has one is
    marked with a red line.

    Args:
        step_norms: ``{layer name: norm per step (S,)}``, e.g.
            :meth:`companion.diagnostics.GradientMonitor.step_norms`.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_gradient_norm_history({"0": [0.1, 10.0, float("nan")], "2": [0.2, 0.3, 0.4]})
        >>> [line.get_label() for line in ax.lines], ax.lines[-1].get_xdata()
        (['1: 0', '2: 2', 'first NaN/Inf'], [3, 3])
    """
    norms_by_layer = values_by_key("step_norms", step_norms, "{layer name: norm per step}")
    ax = axes_for(ax)
    first_bad = math.inf
    for depth, (layer, norms) in enumerate(norms_by_layer.items(), start=1):
        ax.plot(range(1, len(norms) + 1), norms, label=f"{depth}: {layer}", linewidth=1)
        bad = np.flatnonzero(~np.isfinite(norms))
        if len(bad):
            first_bad = min(first_bad, int(bad[0]) + 1)
    if first_bad < math.inf:
        ax.axvline(first_bad, color="red", linestyle=":", label="first NaN/Inf")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("weight-gradient norm (log)")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_dead_units(runs: Any, *, ax: Axes | None = None) -> Axes:
    """Share of dead ReLU units per layer, one group of bars per layer and one bar per run.

    Args:
        runs: ``{run name: table}`` where each table is what
            :func:`companion.diagnostics.unit_activity` returns (indexed by layer, with
            a ``dead_fraction`` column in ``[0, 1]``); every table has the same layers.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> import pandas as pd
        >>> high = pd.DataFrame({"dead_fraction": [0.5, 0.25]}, index=["1", "3"])
        >>> low = pd.DataFrame({"dead_fraction": [0.0, 0.125]}, index=["1", "3"])
        >>> ax = plot_dead_units({"high lr": high, "low lr": low})
        >>> [float(bar.get_height()) for bar in ax.patches]
        [0.5, 0.25, 0.0, 0.125]
    """
    check_mapping("runs", runs, "{run name: table of dead units}")
    layers: list[str] = []
    fractions = {}
    for run, table in runs.items():
        check_frame(f"runs[{run!r}]", table, ["dead_fraction"])
        run_layers = [str(name) for name in table.index]
        if layers and run_layers != layers:
            requirement = f"the first run's layers {layers}"
            raise ValueError(message(f"runs[{run!r}].index", requirement, run_layers))
        layers = run_layers
        name = f"runs[{run!r}]['dead_fraction']"
        fractions[run] = as_values(name, table["dead_fraction"])
        in_range = (fractions[run] >= 0) & (fractions[run] <= 1)
        require_values(name, fractions[run], in_range, "shares in [0, 1]")
    ax = axes_for(ax)
    width = 0.8 / len(runs)
    for i, (run, values) in enumerate(fractions.items()):
        positions = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(layers))]
        ax.bar(positions, values, width=width, label=run)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylim(0, 1)
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("share of dead units")
    ax.legend()
    return ax
