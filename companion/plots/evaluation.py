"""Figures of how good a model's predictions are: confusion and correlation matrices, ROC and
precision-recall curves, calibration, and metrics per slice of the data.

Each function returns the Axes it drew on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.image import AxesImage

from companion._validation import (
    as_tensor,
    check_float,
    check_instance,
    check_same_length,
    message,
)
from companion.metrics import confusion_matrix, pr_auc, pr_curve, roc_auc, roc_curve
from companion.plots._common import (
    as_values,
    axes_for,
    check_frame,
    require_values,
    tick_names,
)

__all__ = [
    "plot_confusion_matrix",
    "plot_correlation_matrix",
    "plot_roc_curve",
    "plot_pr_curve",
    "plot_predicted_vs_observed",
    "plot_sliced_metrics",
    "plot_slice_bias",
]


def _square(name: str, value: Any, dtype: torch.dtype | None) -> np.ndarray:
    matrix = as_values(name, value, ndim=2, dtype=dtype)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(message(name, "a square (K, K) matrix", matrix))
    return matrix


def _heat_map(
    ax: Axes, values: np.ndarray, names: list[str], cell_text: Callable[[Any], str], **imshow: Any
) -> AxesImage:
    """``values (K, K)`` as an image with ``names`` on both axes and each cell's text on it."""
    image = ax.imshow(values, **imshow)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    for (i, j), value in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = np.isfinite(value) and 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        ax.text(j, i, cell_text(value), ha="center", va="center", color="white" if dark else "black")
    return image


def plot_confusion_matrix(cm: Any, *, class_names: Sequence[str] = (), ax: Axes | None = None) -> Axes:
    """A confusion matrix as a heat map with the count in each cell.

    Args:
        cm: counts ``(C, C)``, each >= 0, rows = true class, columns = predicted class,
            e.g. from :func:`companion.metrics.confusion_matrix`.
        class_names: ``C`` names for the ticks (default: 0..C-1).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_confusion_matrix([[5, 1], [0, 4]], class_names=["cat", "dog"])
        >>> [text.get_text() for text in ax.texts]
        ['5', '1', '0', '4']
    """
    counts = _square("cm", cm, dtype=None)
    require_values("cm", counts, counts >= 0, "a matrix of counts >= 0")
    names = tick_names("class_names", class_names, len(counts))
    ax = axes_for(ax, (3.5, 3.2))
    _heat_map(ax, counts, names, str, cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return ax


def plot_correlation_matrix(corr: Any, *, names: Sequence[str] = (), ax: Axes | None = None) -> Axes:
    """A correlation matrix as a heat map from -1 (blue) to +1 (red), each cell labelled.

    Args:
        corr: a square ``(K, K)`` matrix of correlations in ``[-1, 1]`` (tensor, array or
            DataFrame; NaN, e.g. for a constant feature, leaves its cell blank), e.g.
            ``torch.corrcoef(torch.cat([X, y[:, None]], 1).T)``.
        names: one label per row/column (default: 0..K-1).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_correlation_matrix([[1.0, -0.5], [-0.5, 1.0]], names=["x", "y"])
        >>> [text.get_text() for text in ax.texts]
        ['1.00', '-0.50', '-0.50', '1.00']
    """
    values = _square("corr", corr, dtype=torch.float64)
    in_range = np.isnan(values) | (np.abs(values) <= 1 + 1e-6)
    require_values("corr", values, in_range, "a matrix of correlations in [-1, 1]")
    labels = tick_names("names", names, len(values))
    ax = axes_for(ax, figsize=(1 + 0.8 * len(values), 0.8 * len(values) + 0.5))
    image = _heat_map(ax, values, labels, "{:.2f}".format, cmap="coolwarm", vmin=-1, vmax=1)
    for tick in ax.get_xticklabels():
        tick.set(rotation=45, ha="right")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax


def _check_curve_options(threshold: float | None, label: str | None) -> float | None:
    check_instance("label", label, (str, type(None)), "a str or None")
    return None if threshold is None else check_float("threshold", threshold)


def _with_auc(label: str | None, auc: float) -> str:
    return f"{label}: AUC {auc:.3f}" if label else f"AUC {auc:.3f}"


def _mark_threshold(ax: Axes, y_true: Any, y_score: Any, threshold: float | None, curve: str) -> None:
    """Mark the point of predicting ``score >= threshold`` on the ``"roc"`` or ``"pr"`` curve."""
    if threshold is None:
        return
    predicted = (as_tensor("y_score", y_score) >= threshold).long()
    (tn, fp), (fn, tp) = confusion_matrix(y_true, predicted, num_classes=2).tolist()
    recall = tp / max(tp + fn, 1)
    if curve == "roc":
        point = (fp / max(fp + tn, 1), recall)
    else:
        point = (recall, tp / (tp + fp) if tp + fp else 1.0)
    ax.scatter(*point, color="black", zorder=3, label=f"threshold {threshold:.3g}")


def plot_roc_curve(
    y_true: Any,
    y_score: Any,
    *,
    threshold: float | None = None,
    label: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """The ROC curve (TPR against FPR) with its AUC, and the chosen threshold marked.

    Args:
        y_true: binary labels ``(N,)``.
        y_score: finite scores ``(N,)``.
        threshold: a decision threshold to mark (predict positive when ``score >= threshold``).
        label: legend text; the AUC is appended.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_roc_curve([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5, label="model")
        >>> ax.get_legend_handles_labels()[1]
        ['model: AUC 0.750', 'chance', 'threshold 0.5']
        >>> ax.collections[0].get_offsets().tolist()  # (false-positive rate, recall)
        [[0.5, 0.5]]
    """
    fpr, tpr, _ = roc_curve(y_true, y_score)
    threshold = _check_curve_options(threshold, label)
    ax = axes_for(ax, (4, 4))
    ax.plot(fpr, tpr, label=_with_auc(label, roc_auc(y_true, y_score)))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    _mark_threshold(ax, y_true, y_score, threshold, "roc")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate (recall)")
    ax.legend(loc="lower right")
    return ax


def plot_pr_curve(
    y_true: Any,
    y_score: Any,
    *,
    threshold: float | None = None,
    label: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """The precision-recall curve with its AUC (average precision), the positive-rate
    baseline, and the chosen threshold marked.

    Args:
        y_true: binary labels ``(N,)``.
        y_score: finite scores ``(N,)``.
        threshold: a decision threshold to mark (predict positive when ``score >= threshold``).
        label: legend text; the AUC is appended.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_pr_curve([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
        >>> ax.get_legend_handles_labels()[1]
        ['AUC 0.833', 'chance (positive rate 0.5)', 'threshold 0.5']
        >>> ax.collections[0].get_offsets().tolist()  # (recall, precision)
        [[0.5, 0.5]]
    """
    precision, recall, _ = pr_curve(y_true, y_score)
    threshold = _check_curve_options(threshold, label)
    ax = axes_for(ax, (4, 4))
    ax.step(recall, precision, where="post", label=_with_auc(label, pr_auc(y_true, y_score)))
    base = float(as_tensor("y_true", y_true).float().mean())
    ax.axhline(base, color="grey", linestyle=":", label=f"chance (positive rate {base:.3g})")
    _mark_threshold(ax, y_true, y_score, threshold, "pr")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower left")
    return ax


def plot_predicted_vs_observed(
    predicted: Any, observed: Any, *, label: str | None = None, ax: Axes | None = None
) -> Axes:
    """Mean prediction against mean outcome per bin, with the diagonal a calibrated model lies on.

    For a classifier this is a reliability (calibration) diagram: predicted
    probability against the observed fraction of positives. For a regression or
    count model it compares the predicted expected value with the observed mean.

    Args:
        predicted: finite mean prediction per bin ``(B,)``.
        observed: finite mean observed target per bin ``(B,)``.
        label: legend text for the points.
        ax: Axes to draw on; a new figure (with the diagonal) when ``None``. Pass
            the returned Axes again to add another model's points.

    Returns:
        The Axes.

    Example:
        >>> ax = plot_predicted_vs_observed([0.1, 0.5, 0.9], [0.2, 0.5, 0.8], label="fitted")
        >>> ax = plot_predicted_vs_observed([0.3, 0.7], [0.1, 0.9], label="shrunk", ax=ax)
        >>> [line.get_label() for line in ax.lines]
        ['predicted = observed', 'fitted', 'shrunk']
    """
    predicted = as_values("predicted", predicted, finite=True)
    observed = as_values("observed", observed, finite=True)
    check_same_length("observed", observed, "predicted", predicted)
    check_instance("label", label, (str, type(None)), "a str or None")
    first = ax is None  # draw the diagonal once, on a new Axes
    ax = axes_for(ax, (4, 4))
    if first:
        low = min(predicted.min(), observed.min())
        high = max(predicted.max(), observed.max())
        ax.plot([low, high], [low, high], color="grey", linestyle=":", label="predicted = observed")
    ax.plot(predicted, observed, "o-", label=label)
    ax.set_xlabel("mean prediction in bin")
    ax.set_ylabel("mean observed in bin")
    if ax.get_legend_handles_labels()[1]:  # the diagonal or a label
        ax.legend()
    return ax


def plot_sliced_metrics(
    frame: Any, *, by: str, metric: str = "accuracy", ax: Axes | None = None
) -> Axes:
    """One bar per slice for ``metric``, each labelled with its number of rows.

    Args:
        frame: a DataFrame with columns ``by``, ``metric`` and ``n`` (as
            :func:`companion.warehouse.sliced_metrics_sql` returns).
        by: the slice column.
        metric: the metric column to draw.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"slice": ["web", "app"], "accuracy": [0.9, 0.7], "n": [120, 30]})
        >>> ax = plot_sliced_metrics(frame, by="slice")
        >>> [float(bar.get_height()) for bar in ax.patches], [text.get_text() for text in ax.texts]
        ([0.9, 0.7], ['n=120', 'n=30'])
    """
    check_instance("by", by, str, "a column name (str)")
    check_instance("metric", metric, str, "a column name (str)")
    frame = check_frame("frame", frame, [by, metric, "n"])
    heights = as_values(f"frame[{metric!r}]", frame[metric])
    counts = as_values("frame['n']", frame["n"])
    ax = axes_for(ax)
    bars = ax.bar([str(v) for v in frame[by]], heights, color="tab:green")
    for bar, n in zip(bars, counts):
        ax.annotate(f"n={int(n):,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", textcoords="offset points", xytext=(0, 2), fontsize=8)
    ax.set_xlabel(by)
    ax.set_ylabel(metric)
    return ax


def plot_slice_bias(table: Any, *, ax: Axes | None = None) -> Axes:
    """Prediction bias per slice as horizontal bars, each labelled with its number of examples.

    Args:
        table: what :func:`companion.slicing.sliced_metrics` returns (columns
            ``prediction_bias`` and ``count``; its last row covers all examples and
            is drawn in grey).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"count": [3, 3, 6], "prediction_bias": [-0.07, 0.27, 0.1]},
        ...                      index=["a", "b", "(all)"])
        >>> ax = plot_slice_bias(table)
        >>> [float(bar.get_width()) for bar in ax.patches], [text.get_text() for text in ax.texts]
        ([-0.07, 0.27, 0.1], ['n=3', 'n=3', 'n=6'])
    """
    table = check_frame("table", table, ["prediction_bias", "count"])
    biases = as_values("table['prediction_bias']", table["prediction_bias"])
    counts = as_values("table['count']", table["count"])
    ax = axes_for(ax)
    labels = [str(key) for key in table.index]
    colors = ["tab:blue"] * (len(labels) - 1) + ["grey"]
    bars = ax.barh(labels, biases, color=colors)
    for bar, count in zip(bars, counts):
        ax.annotate(f"n={int(count):,}", (max(bar.get_width(), 0.0), bar.get_y() + bar.get_height() / 2),
                    va="center", textcoords="offset points", xytext=(3, 0), fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("prediction bias (mean prediction - mean label)")
    ax.set_ylabel(table.index.name or "slice")
    return ax
