"""Every matplotlib figure the notebooks show. Each function returns the Axes it drew on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from companion.gradient_descent import DescentRun
    from companion.training import History

__all__ = [
    "plot_weight_histograms",
    "plot_lambda_sweep",
    "plot_transfer_curve",
    "plot_embedding_sweep",
    "plot_history",
    "plot_descent_runs",
    "plot_gradient_noise",
    "plot_loss_along_path",
    "plot_confusion_matrix",
    "plot_roc_curve",
    "plot_pr_curve",
    "plot_latency",
    "plot_stream_scores",
    "plot_correlation_matrix",
    "plot_live_quality",
    "plot_activations",
    "plot_step_times",
    "plot_predicted_vs_observed",
    "plot_loss_curves",
    "plot_throughput",
    "plot_sliced_metrics",
    "plot_attribution_overlay",
    "plot_top_region",
    "plot_feature_attributions",
    "plot_layer_gradient_norms",
    "plot_gradient_norm_history",
    "plot_dead_units",
    "plot_slice_bias",
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


def _threshold_point(y_true: Any, y_score: Any, threshold: float) -> tuple[float, float, float]:
    """(precision, recall, false-positive rate) of predicting ``score >= threshold``."""
    from companion._validation import as_tensor
    from companion.metrics import confusion_matrix

    predicted = (as_tensor("y_score", y_score) >= threshold).long()
    (tn, fp), (fn, tp) = confusion_matrix(y_true, predicted, num_classes=2).tolist()
    precision = tp / (tp + fp) if tp + fp else 1.0
    return precision, tp / max(tp + fn, 1), fp / max(fp + tn, 1)


def plot_confusion_matrix(cm: Any, *, class_names: Sequence[str] = (), ax: Any = None) -> Any:
    """A confusion matrix as a heat map with the count in each cell.

    Args:
        cm: counts ``(C, C)``, rows = true class, columns = predicted class, e.g. from
            :func:`companion.metrics.confusion_matrix`.
        class_names: ``C`` names for the ticks (default: 0..C-1).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import numpy as np

    counts = np.asarray(cm)
    ax = _axes(ax, (3.5, 3.2))
    ax.imshow(counts, cmap="Blues")
    names = list(class_names) or [str(i) for i in range(len(counts))]
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    for (i, j), value in np.ndenumerate(counts):
        dark = value > counts.max() / 2
        ax.text(j, i, str(value), ha="center", va="center", color="white" if dark else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return ax


def plot_roc_curve(y_true: Any, y_score: Any, *, threshold: float | None = None,
                   label: str | None = None, ax: Any = None) -> Any:
    """The ROC curve (TPR against FPR) with its AUC, and the chosen threshold marked.

    Args:
        y_true: binary labels ``(N,)``.
        y_score: scores ``(N,)``.
        threshold: a decision threshold to mark (predict positive when ``score >= threshold``).
        label: legend text; the AUC is appended.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    from companion.metrics import roc_auc, roc_curve

    fpr, tpr, _ = roc_curve(y_true, y_score)
    ax = _axes(ax, (4, 4))
    text = f"AUC {roc_auc(y_true, y_score):.3f}"
    ax.plot(fpr, tpr, label=f"{label}: {text}" if label else text)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    if threshold is not None:
        _, recall, fp_rate = _threshold_point(y_true, y_score, threshold)
        ax.scatter([fp_rate], [recall], color="black", zorder=3, label=f"threshold {threshold:.3g}")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate (recall)")
    ax.legend(loc="lower right")
    return ax


def plot_pr_curve(y_true: Any, y_score: Any, *, threshold: float | None = None,
                  label: str | None = None, ax: Any = None) -> Any:
    """The precision-recall curve with its AUC (average precision), the positive-rate
    baseline, and the chosen threshold marked.

    Args:
        y_true: binary labels ``(N,)``.
        y_score: scores ``(N,)``.
        threshold: a decision threshold to mark (predict positive when ``score >= threshold``).
        label: legend text; the AUC is appended.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    from companion._validation import as_tensor
    from companion.metrics import pr_auc, pr_curve

    precision, recall, _ = pr_curve(y_true, y_score)
    ax = _axes(ax, (4, 4))
    text = f"AUC {pr_auc(y_true, y_score):.3f}"
    ax.step(recall, precision, where="post", label=f"{label}: {text}" if label else text)
    base = float(as_tensor("y_true", y_true).float().mean())
    ax.axhline(base, color="grey", linestyle=":", label=f"chance (positive rate {base:.3g})")
    if threshold is not None:
        prec, rec, _ = _threshold_point(y_true, y_score, threshold)
        ax.scatter([rec], [prec], color="black", zorder=3, label=f"threshold {threshold:.3g}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower left")
    return ax


def plot_latency(latencies: Mapping[str, Sequence[float]], *, ax: Any = None) -> Any:
    """Latency distributions (seconds) as cumulative curves on a log axis, p50 and p99 marked.

    Args:
        latencies: ``{path name: per-request latencies in seconds}``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import numpy as np

    ax = _axes(ax)
    for name, values in latencies.items():
        ms = np.sort(np.asarray(values, dtype=float)) * 1e3
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


def plot_stream_scores(scores: Mapping[str, Sequence[float]], *, marks: Sequence[int] = (),
                       ax: Any = None) -> Any:
    """Per-batch scores of models on a stream, with marked batches (e.g. quarantined ones).

    Args:
        scores: ``{model name: one score per batch}``.
        marks: batch indices to mark with a vertical line.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    for name, values in scores.items():
        ax.plot(range(len(values)), values, marker=".", label=name)
    for i, index in enumerate(marks):
        ax.axvline(index, color="red", linestyle=":", label="quarantined" if i == 0 else None)
    ax.set_xlabel("batch")
    ax.set_ylabel("score")
    ax.legend()
    return ax


def plot_correlation_matrix(corr: Any, *, names: Sequence[str] = (), ax: Any = None) -> Any:
    """A correlation matrix as a heat map from -1 (blue) to +1 (red), each cell labelled.

    Args:
        corr: a square ``(K, K)`` matrix of correlations (tensor, array or DataFrame),
            e.g. ``torch.corrcoef(torch.cat([X, y[:, None]], 1).T)``.
        names: one label per row/column.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import numpy as np

    values = np.asarray(corr, dtype=float)
    ax = _axes(ax, figsize=(1 + 0.8 * len(values), 0.8 * len(values) + 0.5))
    image = ax.imshow(values, cmap="coolwarm", vmin=-1, vmax=1)
    labels = list(names) or [str(i) for i in range(len(values))]
    ax.set_xticks(range(len(values)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(values)), labels)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax


def plot_live_quality(table: Any, *, min_value: float, ax: Any = None) -> Any:
    """Quality of a served model per window of traffic, with the alert threshold.

    Args:
        table: from :func:`companion.checks.monitor_live_quality` (columns ``start``,
            ``value``, ``alert``).
        min_value: the alert threshold, drawn as a dashed line.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    ax.plot(table["start"], table["value"], marker="o", label="live quality")
    alerts = table[table["alert"]]
    ax.scatter(alerts["start"], alerts["value"], color="red", zorder=3, label="alert")
    ax.axhline(min_value, color="grey", linestyle="--", label="threshold")
    ax.set_xlabel("first request of the window")
    ax.set_ylabel("metric")
    ax.legend()
    return ax


def plot_activations(
    z: Any, curves: Mapping[str, tuple[Any, Any]], *, axes: Any = None
) -> Any:
    """Activation functions (left) and their derivatives (right) over the same inputs.

    Args:
        z: the inputs ``(K,)``.
        curves: ``{name: (values (K,), derivatives (K,))}``, e.g. from autograd.
        axes: two Axes to draw on; a new figure when ``None``.

    Returns:
        The two Axes.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, (values, grads) in curves.items():
        axes[0].plot(z, values, label=name)
        axes[1].plot(z, grads, label=name)
    axes[0].set_title("activation f(z)")
    axes[1].set_title("derivative f'(z)")
    for ax in axes:
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("z")
        ax.legend()
    return axes


def plot_step_times(
    classes: Sequence[int], full: Sequence[float], sampled: Sequence[float], *, ax: Any = None
) -> Any:
    """Seconds per training step against the number of classes, full vs sampled softmax (log-log).

    Args:
        classes: class counts.
        full: seconds per step with the full softmax, one per class count.
        sampled: seconds per step with candidate sampling, one per class count.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    ax.loglog(classes, [1e3 * s for s in full], "o-", label="full softmax")
    ax.loglog(classes, [1e3 * s for s in sampled], "s-", label="candidate sampling")
    ax.set_xlabel("number of classes")
    ax.set_ylabel("ms per training step")
    ax.legend()
    return ax


def plot_predicted_vs_observed(
    predicted: Any, observed: Any, *, label: str | None = None, ax: Any = None
) -> Any:
    """Mean prediction against mean outcome per bin, with the diagonal a calibrated model lies on.

    For a classifier this is a reliability (calibration) diagram: predicted
    probability against the observed fraction of positives. For a regression or
    count model it compares the predicted expected value with the observed mean.

    Args:
        predicted: mean prediction per bin ``(B,)``.
        observed: mean observed target per bin ``(B,)``.
        label: legend text for the points.
        ax: Axes to draw on; a new figure (with the diagonal) when ``None``. Pass
            the returned Axes again to add another model's points.

    Returns:
        The Axes.
    """
    first = ax is None  # draw the diagonal once, on a new Axes
    ax = _axes(ax, (4, 4))
    if first:
        low = min(min(predicted), min(observed))
        high = max(max(predicted), max(observed))
        ax.plot([low, high], [low, high], color="grey", linestyle=":", label="predicted = observed")
    ax.plot(predicted, observed, "o-", label=label)
    ax.set_xlabel("mean prediction in bin")
    ax.set_ylabel("mean observed in bin")
    ax.legend()
    return ax


def plot_loss_curves(curves: Mapping[str, Sequence[float]], *, ax: Any = None) -> Any:
    """Several loss curves against epoch (from 1), e.g. one per training setup.

    Args:
        curves: ``{label: loss per epoch}``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    styles = ["-", "--", ":", "-."]
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(range(1, len(values) + 1), list(values), styles[i % len(styles)], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def plot_throughput(throughputs: Mapping[str, float], *, ax: Any = None) -> Any:
    """Horizontal bars of examples per second (log scale), one per model and device.

    Args:
        throughputs: ``{label: examples per second}``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax, figsize=(6, 0.5 + 0.5 * len(throughputs)))
    names, values = list(throughputs), [float(v) for v in throughputs.values()]
    ax.barh(names, values, color="tab:blue")
    for y, value in enumerate(values):
        ax.annotate(f"{value:,.0f}", (value, y), textcoords="offset points", xytext=(3, -3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("examples per second (log scale)")
    ax.invert_yaxis()
    return ax


def plot_sliced_metrics(frame: Any, *, by: str, metric: str = "accuracy", ax: Any = None) -> Any:
    """One bar per slice for ``metric``, each labelled with its number of rows.

    Args:
        frame: a DataFrame with columns ``by``, ``metric`` and ``n`` (as
            :func:`companion.analysis.sliced_metrics_sql` returns).
        by: the slice column.
        metric: the metric column to draw.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    labels = [str(v) for v in frame[by]]
    bars = ax.bar(labels, frame[metric], color="tab:green")
    for bar, n in zip(bars, frame["n"]):
        ax.annotate(f"n={int(n):,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", textcoords="offset points", xytext=(0, 2), fontsize=8)
    ax.set_xlabel(by)
    ax.set_ylabel(metric)
    return ax


def _image_for_display(image: Any) -> Any:
    """A ``(C, H, W)`` or ``(H, W)`` tensor/array as an ``(H, W[, 3])`` array in [0, 1]."""
    import numpy as np

    array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=float)
    if array.ndim == 3:
        array = array.transpose(1, 2, 0)
        array = array[..., 0] if array.shape[-1] == 1 else array
    low, high = array.min(), array.max()
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def plot_attribution_overlay(image: Any, attribution: Any, *, alpha: float = 0.6,
                             title: str = "", ax: Any = None) -> Any:
    """An image in grey with an attribution heat map over it.

    Args:
        image: ``(C, H, W)`` or ``(H, W)``, any value range.
        attribution: ``(H, W)`` map, or ``(C, H, W)`` reduced to ``sum(|a|)`` over channels.
        alpha: opacity of the heat map.
        title: the Axes' title.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import numpy as np

    ax = _axes(ax, (3.5, 3.5))
    shown = _image_for_display(image)
    grey = shown.mean(axis=-1) if shown.ndim == 3 else shown
    heat = np.asarray(attribution.detach().cpu() if hasattr(attribution, "detach") else attribution, dtype=float)
    if heat.ndim == 3:
        heat = np.abs(heat).sum(axis=0)
    ax.imshow(grey, cmap="gray")
    ax.imshow(heat, cmap="inferno", alpha=alpha)
    ax.set_title(title)
    ax.axis("off")
    return ax


def plot_top_region(image: Any, mask: Any, *, title: str = "", ax: Any = None) -> Any:
    """An image with everything outside ``mask`` (e.g. XRAI's top 10%) dimmed.

    Args:
        image: ``(C, H, W)`` or ``(H, W)``, any value range.
        mask: ``(H, W)`` bool, the pixels to keep bright.
        title: the Axes' title.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import numpy as np

    ax = _axes(ax, (3.5, 3.5))
    shown = _image_for_display(image)
    keep = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask, dtype=bool)
    dim = np.where(keep[..., None] if shown.ndim == 3 else keep, shown, 0.2 * shown)
    ax.imshow(dim, cmap=None if shown.ndim == 3 else "gray")
    ax.contour(keep, levels=[0.5], colors="cyan", linewidths=1)
    ax.set_title(title)
    ax.axis("off")
    return ax


def plot_feature_attributions(values: Any, names: Sequence[str], *, title: str = "",
                              ax: Any = None) -> Any:
    """Horizontal bars of one attribution per feature, largest magnitude on top.

    Args:
        values: ``(F,)`` attributions (one prediction's, or an aggregate).
        names: ``F`` feature names.
        title: the Axes' title.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import numpy as np

    ax = _axes(ax, (5, 0.3 * len(names) + 1))
    values = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)
    order = np.argsort(np.abs(values))
    ax.barh([names[i] for i in order], values[order],
            color=["tab:red" if v < 0 else "tab:blue" for v in values[order]])
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("attribution")
    ax.set_title(title)
    return ax


def plot_weight_histograms(weights: Mapping[str, Any], *, bins: int = 60, ax: Any = None) -> Any:
    """Overlaid histograms of weight values, one per labelled set (e.g. with and without L2).

    Args:
        weights: ``{label: tensor or array of weights}``; each is flattened.
        bins: number of bins, shared by all sets.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import numpy as np

    ax = _axes(ax)
    arrays = {label: np.asarray(w.detach().cpu() if hasattr(w, "detach") else w).ravel()
              for label, w in weights.items()}
    low = min(float(a.min()) for a in arrays.values())
    high = max(float(a.max()) for a in arrays.values())
    edges = np.linspace(low, high, bins + 1)
    for label, values in arrays.items():
        ax.hist(values, bins=edges, alpha=0.5, density=True, label=label)
    ax.axvline(0.0, color="grey", linestyle=":")
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def plot_lambda_sweep(result: Any, *, ax: Any = None) -> Any:
    """Training and validation loss against the L2 rate lambda (log scale; lambda = 0 at the left).

    Args:
        result: a :class:`companion.regularization.SweepResult`.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    positive = [lam for lam in result.lambdas if lam > 0]
    zero_at = min(positive) / 10 if positive else 1.0  # where lambda = 0 is drawn
    xs = [lam if lam > 0 else zero_at for lam in result.lambdas]
    ax.plot(xs, result.train_loss, marker="o", label="training loss")
    ax.plot(xs, result.val_loss, marker="o", label="validation loss")
    ax.axvline(result.best_lambda if result.best_lambda > 0 else zero_at, color="grey",
               linestyle=":", label="best lambda")
    ax.set_xscale("log")
    ax.set_xlabel("lambda (leftmost point: lambda = 0)")
    ax.set_ylabel("loss (without the penalty)")
    ax.legend()
    return ax


def plot_transfer_curve(sizes: Sequence[int], scores: Mapping[str, Sequence[float]], *,
                        ylabel: str = "test accuracy", ax: Any = None) -> Any:
    """A score against the training-set size, one line per approach (e.g. transfer vs scratch).

    Args:
        sizes: training-set sizes (x axis, log scale).
        scores: ``{label: one score per size}``.
        ylabel: what the score is.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    for label, values in scores.items():
        ax.plot(list(sizes), list(values), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training examples of the new task")
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def plot_embedding_sweep(dims: Sequence[int], train_loss: Sequence[float],
                         val_loss: Sequence[float], *, rule_of_thumb: int | None = None,
                         ax: Any = None) -> Any:
    """Training and validation loss against the embedding dimension (log scale).

    Args:
        dims: embedding dimensions tried.
        train_loss: final training loss per dimension.
        val_loss: final validation loss per dimension.
        rule_of_thumb: a dimension to mark, e.g. ``n_categories ** 0.25``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    ax.plot(list(dims), list(train_loss), marker="o", label="training loss")
    ax.plot(list(dims), list(val_loss), marker="o", label="validation loss")
    if rule_of_thumb is not None:
        ax.axvline(rule_of_thumb, color="grey", linestyle=":", label="categories ** 0.25")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def plot_layer_gradient_norms(runs: Mapping[str, Mapping[str, float]], *, ax: Any = None) -> Any:
    """Mean gradient norm of each layer, input side on the left, one line per run (log scale).

    A line that falls steeply towards the input shows vanishing gradients; one that
    rises towards the input (or leaves the plot) shows exploding gradients.

    Args:
        runs: ``{run name: {layer name: norm}}``, e.g.
            ``{"sigmoid": monitor.layer_norms()}`` from
            :class:`companion.diagnostics.GradientMonitor`; layers in model order.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    names: list[str] = []
    for run, norms in runs.items():
        values = list(norms.values())
        ax.plot(range(1, len(values) + 1), values, marker="o", label=run)
        names = names if len(names) >= len(values) else list(norms)
    ax.set_yscale("log")
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("mean weight-gradient norm (log)")
    ax.legend()
    return ax


def plot_gradient_norm_history(step_norms: Mapping[str, Sequence[float]], *, ax: Any = None) -> Any:
    """Each layer's gradient norm at every training step (log scale).

    Non-finite norms (NaN or Inf) cannot be drawn; the first step that has one is
    marked with a red line.

    Args:
        step_norms: ``{layer name: [norm per step]}``, e.g.
            :meth:`companion.diagnostics.GradientMonitor.step_norms`.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    import math

    ax = _axes(ax)
    first_bad = None
    for depth, (layer, norms) in enumerate(step_norms.items(), start=1):
        ax.plot(range(1, len(norms) + 1), norms, label=f"{depth}: {layer}", linewidth=1)
        bad = [i for i, v in enumerate(norms, start=1) if not math.isfinite(v)]
        if bad:
            first_bad = bad[0] if first_bad is None else min(first_bad, bad[0])
    if first_bad is not None:
        ax.axvline(first_bad, color="red", linestyle=":", label="first NaN/Inf")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("weight-gradient norm (log)")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_dead_units(runs: Mapping[str, Any], *, ax: Any = None) -> Any:
    """Share of dead ReLU units per layer, one group of bars per layer and one bar per run.

    Args:
        runs: ``{run name: table}`` where each table is what
            :func:`companion.diagnostics.dead_relu_fraction` returns (indexed by ReLU
            layer, with a ``fraction`` column); every table has the same layers.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    width = 0.8 / max(len(runs), 1)
    layers: list[str] = []
    for i, (run, table) in enumerate(runs.items()):
        layers = [str(name) for name in table.index]
        positions = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(layers))]
        ax.bar(positions, table["fraction"], width=width, label=run)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylim(0, 1)
    ax.set_xlabel("ReLU layer (input side first)")
    ax.set_ylabel("share of dead units")
    ax.legend()
    return ax


def plot_slice_bias(table: Any, *, ax: Any = None) -> Any:
    """Prediction bias per slice as horizontal bars, each labelled with its number of examples.

    Args:
        table: what :func:`companion.slicing.sliced_metrics` returns (columns
            ``prediction_bias`` and ``count``; its last row covers all examples and
            is drawn in grey).
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    labels = [str(key) for key in table.index]
    colors = ["tab:blue"] * (len(labels) - 1) + ["grey"]
    bars = ax.barh(labels, table["prediction_bias"], color=colors)
    for bar, count in zip(bars, table["count"]):
        ax.annotate(f"n={int(count):,}", (max(bar.get_width(), 0.0), bar.get_y() + bar.get_height() / 2),
                    va="center", textcoords="offset points", xytext=(3, 0), fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("prediction bias (mean prediction - mean label)")
    ax.set_ylabel(table.index.name or "slice")
    return ax
