"""Every matplotlib figure the notebooks show. Each plot function checks what it is given,
draws it, and returns the Axes it drew on (``ax=None`` opens a new figure).

The figures take results and draw them; no library module imports this package.

Example:
    >>> from companion.plots import plot_loss_curves
    >>> ax = plot_loss_curves({"train": [0.9, 0.5, 0.4]})
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('epoch', 'loss')
"""

from companion.plots.attributions import (
    plot_attribution_overlay,
    plot_feature_attributions,
    plot_top_region,
)
from companion.plots.diagnostics import (
    plot_activations,
    plot_dead_units,
    plot_gradient_norm_history,
    plot_layer_gradient_norms,
)
from companion.plots.distributed import plot_loss_per_update, plot_pipeline_timeline
from companion.plots.evaluation import (
    plot_confusion_matrix,
    plot_correlation_matrix,
    plot_pr_curve,
    plot_predicted_vs_observed,
    plot_roc_curve,
    plot_slice_bias,
    plot_sliced_metrics,
)
from companion.plots.monitoring import plot_live_quality, plot_stream_scores
from companion.plots.speed import plot_latency, plot_step_times, plot_throughput
from companion.plots.training import (
    plot_descent_runs,
    plot_embedding_sweep,
    plot_gradient_noise,
    plot_history,
    plot_lambda_sweep,
    plot_loss_along_path,
    plot_loss_curves,
    plot_transfer_curve,
    plot_weight_histograms,
)

__all__ = [
    "plot_activations",
    "plot_attribution_overlay",
    "plot_confusion_matrix",
    "plot_correlation_matrix",
    "plot_dead_units",
    "plot_descent_runs",
    "plot_embedding_sweep",
    "plot_feature_attributions",
    "plot_gradient_noise",
    "plot_gradient_norm_history",
    "plot_history",
    "plot_lambda_sweep",
    "plot_loss_per_update",
    "plot_latency",
    "plot_pipeline_timeline",
    "plot_layer_gradient_norms",
    "plot_live_quality",
    "plot_loss_along_path",
    "plot_loss_curves",
    "plot_pr_curve",
    "plot_predicted_vs_observed",
    "plot_roc_curve",
    "plot_slice_bias",
    "plot_sliced_metrics",
    "plot_step_times",
    "plot_stream_scores",
    "plot_throughput",
    "plot_top_region",
    "plot_transfer_curve",
    "plot_weight_histograms",
]
