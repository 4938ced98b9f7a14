"""Figures of training runs: loss per epoch or step, and loss against what a run was given
(batch size, L2 rate, training-set size, embedding dimension, a path in weight space).

Each function returns the Axes it drew on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from companion._validation import (
    check_float,
    check_instance,
    check_int,
    check_same_length,
    message,
)
from companion.plots._common import (
    LOG_AXIS,
    as_values,
    axes_for,
    check_mapping,
    require_values,
    values_by_key,
)
from companion.regularization import SweepResult
from companion.scratch.descent import DescentRun
from companion.training import History

__all__ = [
    "plot_history",
    "plot_loss_curves",
    "plot_lambda_sweep",
    "plot_weight_histograms",
    "plot_descent_runs",
    "plot_gradient_noise",
    "plot_loss_along_path",
    "plot_transfer_curve",
    "plot_embedding_sweep",
]


def plot_history(history: History, *, metrics: Iterable[str] = (), ax: Axes | None = None) -> Axes:
    """Loss curves (train and, when present, validation) per epoch, plus any ``metrics``.

    Args:
        history: from :func:`companion.training.fit`, with at least one epoch.
        metrics: more series to draw, e.g. ``["val_accuracy"]`` (keys of ``history``).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> history = History(train_loss=[0.9, 0.5], val_loss=[1.0, 0.7],
        ...                   metrics={"val_accuracy": [0.6, 0.8]})
        >>> ax = plot_history(history, metrics=["val_accuracy"])
        >>> [line.get_label() for line in ax.lines]
        ['train loss', 'validation loss', 'val_accuracy']
    """
    check_instance("history", history, History, "a History (from companion.training.fit)")
    if not history.train_loss:
        raise ValueError(message("history", "a History of at least one epoch", history))
    if isinstance(metrics, str):
        raise TypeError(message("metrics", "a sequence of keys of `history`", metrics))
    options = ("train_loss", "val_loss", *history.metrics)
    series = {}
    for i, key in enumerate(metrics):
        if key not in options:
            raise ValueError(message(f"metrics[{i}]", f"one of {options}", key))
        series[key] = history[key]
    for key, values in {"val_loss": history.val_loss, **series}.items():
        if values:
            check_same_length(f"history[{key!r}]", values, "history.train_loss", history.train_loss)
    ax = axes_for(ax)
    ax.plot(history.epochs, history.train_loss, label="train loss")
    if history.val_loss:
        ax.plot(history.epochs, history.val_loss, label="validation loss")
    for key, values in series.items():
        ax.plot(history.epochs, values, linestyle="--", label=key)
    if history.stopped_epoch is not None:
        ax.axvline(history.stopped_epoch, color="grey", linestyle=":", label="stopped")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def plot_loss_curves(curves: Any, *, ax: Axes | None = None) -> Axes:
    """Several loss curves against epoch (from 1), e.g. one per training setup.

    Args:
        curves: ``{label: loss per epoch (E,)}``; the curves may have different lengths.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_loss_curves({"adam": [0.9, 0.4, 0.3], "sgd": [0.9, 0.7]})
        >>> [len(line.get_xdata()) for line in ax.lines]
        [3, 2]
    """
    curves = values_by_key("curves", curves, "{label: loss per epoch}")
    ax = axes_for(ax)
    styles = ["-", "--", ":", "-."]
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(range(1, len(values) + 1), values, styles[i % len(styles)], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def plot_lambda_sweep(result: SweepResult, *, ax: Axes | None = None) -> Axes:
    """Training and validation loss against the L2 rate lambda (log scale; lambda = 0 at the left).

    Args:
        result: from :func:`companion.regularization.lambda_sweep`: lambdas ``>= 0``,
            one training and one validation loss per lambda.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> result = SweepResult([0.0, 0.01, 0.1], train_loss=[0.1, 0.2, 0.4],
        ...                      val_loss=[0.5, 0.3, 0.45])
        >>> ax = plot_lambda_sweep(result)
        >>> ax.lines[0].get_xdata().tolist(), list(ax.lines[2].get_xdata())  # 0 drawn at 0.001
        ([0.001, 0.01, 0.1], [0.01, 0.01])
    """
    check_instance("result", result, SweepResult, "a SweepResult (from lambda_sweep)")
    lambdas = as_values("result.lambdas", result.lambdas, finite=True)
    require_values("result.lambdas", lambdas, lambdas >= 0, "values >= 0")
    train_loss = as_values("result.train_loss", result.train_loss)
    val_loss = as_values("result.val_loss", result.val_loss)
    check_same_length("result.train_loss", train_loss, "result.lambdas", lambdas)
    check_same_length("result.val_loss", val_loss, "result.lambdas", lambdas)
    ax = axes_for(ax)
    positive = lambdas[lambdas > 0]
    zero_at = positive.min() / 10 if len(positive) else 1.0  # where lambda = 0 is drawn
    xs = np.where(lambdas > 0, lambdas, zero_at)
    best = result.best_lambda
    ax.plot(xs, train_loss, marker="o", label="training loss")
    ax.plot(xs, val_loss, marker="o", label="validation loss")
    ax.axvline(best if best > 0 else zero_at, color="grey", linestyle=":", label="best lambda")
    ax.set_xscale("log")
    ax.set_xlabel("lambda (leftmost point: lambda = 0)")
    ax.set_ylabel("loss (without the penalty)")
    ax.legend()
    return ax


def plot_weight_histograms(weights: Any, *, bins: int = 60, ax: Axes | None = None) -> Axes:
    """Overlaid histograms of weight values, one per labelled set (e.g. with and without L2).

    Args:
        weights: ``{label: tensor or array of finite weights, any shape}``; each is flattened.
        bins: number of bins, shared by all sets, an int >= 1.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_weight_histograms({"no L2": [-1.0, 0.5, 2.0], "L2": [-0.1, 0.2]}, bins=4)
        >>> len(ax.patches), ax.get_legend_handles_labels()[1]
        (8, ['no L2', 'L2'])
    """
    arrays = values_by_key("weights", weights, "{label: weights}", ndim=None, finite=True)
    bins = check_int("bins", bins, low=1)
    ax = axes_for(ax)
    low = min(float(a.min()) for a in arrays.values())
    high = max(float(a.max()) for a in arrays.values())
    if high == low:  # all weights equal (e.g. zeros): a range of width 1 around them
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    for label, values in arrays.items():
        ax.hist(values.ravel(), bins=edges, alpha=0.5, density=True, label=label)
    ax.axvline(0.0, color="grey", linestyle=":")
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def plot_descent_runs(
    runs: Iterable[DescentRun], *, labels: Sequence[Any] = (), ax: Axes | None = None
) -> Axes:
    """Full-data loss against examples processed, one line per descent run (log scale).

    Args:
        runs: at least one :class:`companion.scratch.descent.DescentRun`, from
            :func:`companion.scratch.descent.minibatch_descent`.
        labels: one label per run; by default its batch size.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> import torch
        >>> run = DescentRun(batch_size=4, lr=0.1, params=torch.zeros(1), loss=[1.0, 0.5, 0.3],
        ...                  examples_seen=[0, 4, 8], seconds_per_step=1e-4)
        >>> ax = plot_descent_runs([run])
        >>> ax.lines[0].get_label(), ax.get_yscale()
        ('batch size 4', 'log')
    """
    if isinstance(runs, DescentRun) or not isinstance(runs, Iterable):
        raise TypeError(message("runs", "a sequence of DescentRun", runs))
    runs = list(runs)
    if not runs:
        raise ValueError(message("runs", "at least one DescentRun", runs))
    for i, run in enumerate(runs):
        check_instance(f"runs[{i}]", run, DescentRun, "a DescentRun (from minibatch_descent)")
    labels = list(labels)
    if labels:
        check_same_length("labels", labels, "runs", runs)
    else:
        labels = [f"batch size {run.batch_size}" for run in runs]
    ax = axes_for(ax)
    for run, label in zip(runs, labels):
        ax.plot(run.examples_seen, run.loss, label=label, drawstyle="steps-post", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("examples processed")
    ax.set_ylabel("full-data loss")
    ax.legend()
    return ax


def plot_gradient_noise(noise: Any, *, ax: Axes | None = None) -> Axes:
    """Gradient noise against batch size (log-log), with a ``1/b`` reference line.

    Args:
        noise: ``{batch size (int >= 1): mean squared distance from the full gradient
            (float >= 0)}``, e.g. from :func:`companion.scratch.descent.gradient_noise`;
            zero values (the full batch) are left out of the log plot, and at least
            one must be positive.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_gradient_noise({1: 4.0, 4: 1.1, 16: 0.0})
        >>> ax.lines[0].get_xdata().tolist(), ax.lines[1].get_ydata().tolist()
        ([1, 4], [4.0, 1.0])
    """
    check_mapping("noise", noise, "{batch size: gradient noise}")
    by_size = {
        check_int(f"list(noise)[{i}]", size, low=1): check_float(f"noise[{size!r}]", value, low=0)
        for i, (size, value) in enumerate(noise.items())
    }
    sizes = [size for size, value in sorted(by_size.items()) if value > 0]
    if not sizes:
        raise ValueError(message("noise", "a mapping with at least one value > 0", noise))
    values = [by_size[size] for size in sizes]
    ax = axes_for(ax)
    ax.loglog(sizes, values, "o-", label="measured")
    ax.loglog(sizes, [values[0] * sizes[0] / b for b in sizes], "k:", label="1 / batch size")
    ax.set_xlabel("batch size")
    ax.set_ylabel("E ||g_batch - g_full||²")
    ax.legend()
    return ax


def plot_loss_along_path(alphas: Any, losses: Any, *, ax: Axes | None = None) -> Axes:
    """Loss at points ``(1 - a) * w_start + a * w_end`` along a straight path in weight space.

    Args:
        alphas: positions ``a`` along the path ``(K,)``.
        losses: the loss at each position ``(K,)``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_loss_along_path([0.0, 0.5, 1.0], [0.1, 1.0, 0.1])
        >>> ax.lines[0].get_ydata().tolist()
        [0.1, 1.0, 0.1]
    """
    alphas = as_values("alphas", alphas, finite=True)
    losses = as_values("losses", losses)
    check_same_length("losses", losses, "alphas", alphas)
    ax = axes_for(ax)
    ax.plot(alphas, losses, "o-")
    ax.set_xlabel("a: position between the two solutions")
    ax.set_ylabel("loss")
    return ax


def plot_transfer_curve(
    sizes: Any, scores: Any, *, ylabel: str = "test accuracy", ax: Axes | None = None
) -> Axes:
    """A score against the training-set size, one line per approach (e.g. transfer vs scratch).

    Args:
        sizes: training-set sizes ``(K,)``, each > 0 (x axis, log scale).
        scores: ``{label: one score per size (K,)}``.
        ylabel: what the score is.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_transfer_curve([10, 100], {"transfer": [0.8, 0.9], "scratch": [0.5, 0.85]})
        >>> [line.get_label() for line in ax.lines], ax.get_xscale()
        (['transfer', 'scratch'], 'log')
    """
    sizes = as_values("sizes", sizes, finite=True)
    require_values("sizes", sizes, sizes > 0, LOG_AXIS)
    scores = values_by_key("scores", scores, "{label: one score per size}")
    for label, values in scores.items():
        check_same_length(f"scores[{label!r}]", values, "sizes", sizes)
    check_instance("ylabel", ylabel, str, "a str")
    ax = axes_for(ax)
    for label, values in scores.items():
        ax.plot(sizes, values, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training examples of the new task")
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def plot_embedding_sweep(
    dims: Any,
    train_loss: Any,
    val_loss: Any,
    *,
    rule_of_thumb: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Training and validation loss against the embedding dimension (log scale).

    Args:
        dims: embedding dimensions tried ``(K,)``, each > 0.
        train_loss: final training loss per dimension ``(K,)``.
        val_loss: final validation loss per dimension ``(K,)``.
        rule_of_thumb: a dimension > 0 to mark, e.g. ``n_categories ** 0.25``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_embedding_sweep([2, 4, 8], [0.5, 0.3, 0.2], [0.6, 0.4, 0.5], rule_of_thumb=4.2)
        >>> [line.get_label() for line in ax.lines]
        ['training loss', 'validation loss', 'categories ** 0.25']
    """
    dims = as_values("dims", dims, finite=True)
    require_values("dims", dims, dims > 0, LOG_AXIS)
    train_loss = as_values("train_loss", train_loss)
    val_loss = as_values("val_loss", val_loss)
    check_same_length("train_loss", train_loss, "dims", dims)
    check_same_length("val_loss", val_loss, "dims", dims)
    if rule_of_thumb is not None:
        rule_of_thumb = check_float("rule_of_thumb", rule_of_thumb, low=0, low_open=True)
    ax = axes_for(ax)
    ax.plot(dims, train_loss, marker="o", label="training loss")
    ax.plot(dims, val_loss, marker="o", label="validation loss")
    if rule_of_thumb is not None:
        ax.axvline(rule_of_thumb, color="grey", linestyle=":", label="categories ** 0.25")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("loss")
    ax.legend()
    return ax
