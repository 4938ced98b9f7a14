"""Figures of how fast something runs: request latency, throughput, and training-step time,
each on a logarithmic axis.

Each function returns the Axes it drew on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from companion._validation import check_float, check_same_length
from companion.plots._common import (
    LOG_AXIS,
    as_values,
    axes_for,
    check_mapping,
    require_values,
    values_by_key,
)

__all__ = ["plot_latency", "plot_throughput", "plot_step_times"]


def plot_latency(latencies: Any, *, ax: Axes | None = None) -> Axes:
    """Latency distributions (seconds) as cumulative curves on a log axis, p50 and p99 marked.

    Args:
        latencies: ``{path name: per-request latencies in seconds (N,)}``, each > 0.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_latency({"offline": [0.001, 0.002, 0.004], "online": [0.02, 0.05]})
        >>> [line.get_label() for line in ax.lines], [text.get_text() for text in ax.texts]
        (['offline', 'online'], ['p99 4 ms', 'p99 50 ms'])
    """
    by_path = values_by_key("latencies", latencies, "{path name: latencies in seconds}", finite=True)
    for name, values in by_path.items():
        require_values(f"latencies[{name!r}]", values, values > 0, LOG_AXIS)
    ax = axes_for(ax)
    for name, values in by_path.items():
        ms = np.sort(values) * 1e3
        share = np.arange(1, len(ms) + 1) / len(ms)
        line = ax.plot(ms, share, label=name)[0]
        p50, p99 = np.percentile(ms, [50, 99])
        ax.scatter([p50, p99], [0.5, 0.99], color=line.get_color(), zorder=3)
        ax.annotate(f"p99 {p99:.2g} ms", (p99, 0.99), textcoords="offset points", xytext=(4, -12),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of requests")
    ax.legend(loc="lower right")
    return ax


def plot_throughput(throughputs: Any, *, ax: Axes | None = None) -> Axes:
    """Horizontal bars of examples per second (log scale), one per model and device.

    Args:
        throughputs: ``{label: examples per second (float > 0)}``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_throughput({"cpu": 100.0, "gpu": 10_000.0})
        >>> [float(bar.get_width()) for bar in ax.patches], [text.get_text() for text in ax.texts]
        ([100.0, 10000.0], ['100', '10,000'])
    """
    check_mapping("throughputs", throughputs, "{label: examples per second}")
    values = [
        check_float(f"throughputs[{name!r}]", value, low=0, low_open=True)
        for name, value in throughputs.items()
    ]
    ax = axes_for(ax, figsize=(6, 0.5 + 0.5 * len(values)))
    ax.barh([str(name) for name in throughputs], values, color="tab:blue")
    for y, value in enumerate(values):
        ax.annotate(f"{value:,.0f}", (value, y), textcoords="offset points", xytext=(3, -3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("examples per second (log scale)")
    ax.invert_yaxis()
    return ax


def plot_step_times(classes: Any, full: Any, sampled: Any, *, ax: Axes | None = None) -> Axes:
    """Seconds per training step against the number of classes, full vs sampled softmax (log-log).

    Args:
        classes: class counts ``(K,)``, each > 0.
        full: seconds per step with the full softmax ``(K,)``, each > 0.
        sampled: seconds per step with candidate sampling ``(K,)``, each > 0.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_step_times([10, 50_000], [0.001, 0.2], [0.001, 0.002])
        >>> [line.get_label() for line in ax.lines], ax.lines[0].get_ydata().tolist()
        (['full softmax', 'candidate sampling'], [1.0, 200.0])
    """
    series = {
        name: as_values(name, value, finite=True)
        for name, value in (("classes", classes), ("full", full), ("sampled", sampled))
    }
    for name, values in series.items():
        require_values(name, values, values > 0, LOG_AXIS)
        check_same_length(name, values, "classes", series["classes"])
    ax = axes_for(ax)
    ax.loglog(series["classes"], 1e3 * series["full"], "o-", label="full softmax")
    ax.loglog(series["classes"], 1e3 * series["sampled"], "s-", label="candidate sampling")
    ax.set_xlabel("number of classes")
    ax.set_ylabel("ms per training step")
    ax.legend()
    return ax
