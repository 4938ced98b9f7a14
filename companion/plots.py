"""Every matplotlib figure the notebooks show. Each function returns the Axes it drew on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from companion.gradient_descent import DescentRun
    from companion.training import History

__all__ = [
    "plot_history",
    "plot_descent_runs",
    "plot_gradient_noise",
    "plot_loss_along_path",
]


def _axes(ax: Any, figsize: tuple[float, float] = (6, 3.5)) -> Any:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_history(history: History, *, metrics: Iterable[str] = (), ax: Any = None) -> Any:
    """Loss curves (train and, when present, validation) per epoch, plus any ``metrics``.

    Args:
        history: from :func:`companion.training.fit`.
        metrics: more series to draw, e.g. ``["val_accuracy"]`` (keys of ``history``).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    ax.plot(history.epochs, history.train_loss, label="train loss")
    if history.val_loss:
        ax.plot(history.epochs, history.val_loss, label="validation loss")
    for key in metrics:
        ax.plot(history.epochs, history[key], linestyle="--", label=key)
    if history.stopped_epoch is not None:
        ax.axvline(history.stopped_epoch, color="grey", linestyle=":", label="stopped")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def plot_descent_runs(runs: Iterable[DescentRun], *, ax: Any = None, labels: Sequence[str] = ()) -> Any:
    """Full-data loss against examples processed, one line per descent run (log scale).

    Args:
        runs: from :func:`companion.gradient_descent.minibatch_descent`.
        ax: Axes to draw on; a new figure when ``None``.
        labels: one label per run; by default its batch size.
    """
    ax = _axes(ax)
    runs = list(runs)
    labels = list(labels) or [f"batch size {r.batch_size}" for r in runs]
    for run, label in zip(runs, labels):
        ax.plot(run.examples_seen, run.loss, label=label, drawstyle="steps-post", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("examples processed")
    ax.set_ylabel("full-data loss")
    ax.legend()
    return ax


def plot_gradient_noise(noise: Mapping[int, float], *, ax: Any = None) -> Any:
    """Gradient noise against batch size (log-log), with a ``1/b`` reference line.

    Args:
        noise: ``{batch_size: mean squared distance from the full gradient}``; zero
            values (the full batch) are left out of the log plot.
        ax: Axes to draw on; a new figure when ``None``.
    """
    ax = _axes(ax)
    sizes = [b for b, v in sorted(noise.items()) if v > 0]
    values = [noise[b] for b in sizes]
    ax.loglog(sizes, values, "o-", label="measured")
    ax.loglog(sizes, [values[0] * sizes[0] / b for b in sizes], "k:", label="1 / batch size")
    ax.set_xlabel("batch size")
    ax.set_ylabel("E ||g_batch - g_full||²")
    ax.legend()
    return ax


def plot_loss_along_path(alphas: Sequence[float], losses: Sequence[float], *, ax: Any = None) -> Any:
    """Loss at points ``(1 - a) * w_start + a * w_end`` along a straight path in weight space."""
    ax = _axes(ax)
    ax.plot(alphas, losses, "o-")
    ax.set_xlabel("a: position between the two solutions")
    ax.set_ylabel("loss")
    return ax
