"""Figures of distributed training: loss per update, and when each pipeline stage worked or waited.

Each function returns the Axes it drew on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.patches import Patch

from companion._validation import check_float, check_instance, message
from companion.plots._common import LOG_AXIS, axes_for, require_values, values_by_key

__all__ = ["plot_loss_per_update", "plot_pipeline_timeline"]

_COLORS = {"forward": "tab:blue", "backward": "tab:orange"}


def plot_pipeline_timeline(
    intervals: Any, *, start: float = 0.0, title: str = "", ax: Axes | None = None
) -> Axes:
    """A Gantt chart of a pipeline step: one row per stage, a bar per forward or backward; gaps are idle.

    Args:
        intervals: per stage, its ``(start, end, kind)`` work intervals (seconds;
            ``kind`` is ``"forward"`` or ``"backward"``), as
            :func:`companion.distributed.pipeline.gpipe_timeline` or
            :class:`~companion.distributed.pipeline.StepTiming` give them.
        start: the step's start, drawn as time 0, a float.
        title: the Axes' title.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes (time in ms on x, stage 0 at the top).

    Example:
        >>> from companion.distributed.pipeline import gpipe_timeline
        >>> ax = plot_pipeline_timeline(gpipe_timeline(2, 4, forward_seconds=0.01, backward_seconds=0.02))
        >>> len(ax.patches)  # 2 stages x 4 micro-batches x (forward, backward)
        16
    """
    check_instance("intervals", intervals, Sequence, "a sequence of per-stage interval lists")
    if not intervals:
        raise ValueError(message("intervals", "a sequence with at least one stage", intervals))
    for stage, stage_intervals in enumerate(intervals):
        check_instance(f"intervals[{stage}]", stage_intervals, Sequence, "a sequence of (start, end, kind)")
        for i, interval in enumerate(stage_intervals):
            ok = (isinstance(interval, tuple) and len(interval) == 3 and interval[2] in _COLORS
                  and all(isinstance(v, (int, float)) for v in interval[:2]) and interval[1] >= interval[0])
            if not ok:
                raise ValueError(message(f"intervals[{stage}][{i}]", "a (start, end, kind) tuple with end >= start "
                                         "and kind 'forward' or 'backward'", interval))
    start = check_float("start", start)
    check_instance("title", title, str, "a str")
    ax = axes_for(ax, (7, 0.6 + 0.5 * len(intervals)))
    for stage, stage_intervals in enumerate(intervals):
        for begin, end, kind in stage_intervals:
            ax.barh(stage, (end - begin) * 1e3, left=(begin - start) * 1e3, height=0.6, color=_COLORS[kind],
                    edgecolor="white")
    ax.set_yticks(range(len(intervals)), [f"stage {s}" for s in range(len(intervals))])
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.set_xlabel("time in the step (ms)")
    ax.legend(handles=[Patch(color=color, label=kind) for kind, color in _COLORS.items()], loc="lower right",
              fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_loss_per_update(curves: Any, *, log: bool = False, ax: Axes | None = None) -> Axes:
    """Loss curves against the number of updates applied (from 0, the initial loss).

    Args:
        curves: ``{label: loss after 0, 1, 2, ... updates (U + 1,)}``, finite values.
        log: a logarithmic loss axis (then every value must be > 0).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_loss_per_update({"sync": [1.0, 0.5, 0.25], "stale": [1.0, 0.8, 0.5]}, log=True)
        >>> [line.get_label() for line in ax.lines], ax.get_yscale()
        (['sync', 'stale'], 'log')
    """
    curves = values_by_key("curves", curves, "{label: loss per update}", finite=True)
    check_instance("log", log, bool, "a bool")
    if log:
        for name, values in curves.items():
            require_values(f"curves[{name!r}]", values, values > 0, LOG_AXIS)
    ax = axes_for(ax)
    for name, values in curves.items():
        ax.plot(range(len(values)), values, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("updates applied")
    ax.set_ylabel("loss")
    ax.legend()
    return ax
