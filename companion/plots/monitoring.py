"""Figures of a model's quality over time on a stream of new data: a score per batch or per
window of traffic, with the batches or windows that were flagged.

Each function returns the Axes it drew on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from matplotlib.axes import Axes

from companion._validation import check_float, check_int, message
from companion.plots._common import as_values, axes_for, check_frame, values_by_key

__all__ = ["plot_stream_scores", "plot_live_quality"]


def plot_stream_scores(scores: Any, *, marks: Iterable[int] = (), ax: Axes | None = None) -> Axes:
    """Per-batch scores of models on a stream, with marked batches (e.g. quarantined ones).

    Args:
        scores: ``{model name: one score per batch (B,)}``; NaN (a batch without a
            score) leaves a gap.
        marks: batch indices (ints >= 0) to mark with a vertical line.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_stream_scores({"static": [0.9, 0.7, 0.5], "dynamic": [0.9, 0.85, 0.8]},
        ...                         marks=[2])
        >>> [line.get_label() for line in ax.lines]
        ['static', 'dynamic', 'quarantined']
    """
    by_model = values_by_key("scores", scores, "{model name: one score per batch}")
    if isinstance(marks, str) or not isinstance(marks, Iterable):
        raise TypeError(message("marks", "a sequence of batch indices", marks))
    marks = [check_int(f"marks[{i}]", index, low=0) for i, index in enumerate(marks)]
    ax = axes_for(ax)
    for name, values in by_model.items():
        ax.plot(range(len(values)), values, marker=".", label=name)
    for i, index in enumerate(marks):
        ax.axvline(index, color="red", linestyle=":", label="quarantined" if i == 0 else None)
    ax.set_xlabel("batch")
    ax.set_ylabel("score")
    ax.legend()
    return ax


def plot_live_quality(table: Any, *, min_value: float, ax: Axes | None = None) -> Axes:
    """Quality of a served model per window of traffic, with the alert threshold.

    Args:
        table: from :func:`companion.checks.monitor_live_quality` (columns ``start``,
            ``value``, ``alert``).
        min_value: the alert threshold, drawn as a dashed line.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"start": [0, 100, 200], "value": [0.95, 0.93, 0.7],
        ...                       "alert": [False, False, True]})
        >>> ax = plot_live_quality(table, min_value=0.9)
        >>> ax.collections[0].get_offsets().tolist()  # the one alert
        [[200.0, 0.7]]
    """
    table = check_frame("table", table, ["start", "value", "alert"])
    starts = as_values("table['start']", table["start"], finite=True)
    values = as_values("table['value']", table["value"])
    alerts = as_values("table['alert']", table["alert"], dtype=None)
    if alerts.dtype != bool:
        raise TypeError(message("table['alert']", "a column of booleans", table["alert"]))
    min_value = check_float("min_value", min_value)
    ax = axes_for(ax)
    ax.plot(starts, values, marker="o", label="live quality")
    ax.scatter(starts[alerts], values[alerts], color="red", zorder=3, label="alert")
    ax.axhline(min_value, color="grey", linestyle="--", label="threshold")
    ax.set_xlabel("first request of the window")
    ax.set_ylabel("metric")
    ax.legend()
    return ax
