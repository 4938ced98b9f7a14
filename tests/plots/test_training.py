"""Tests for companion.plots.training: what each figure draws, and the template errors."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

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
from companion.regularization import SweepResult, lambda_sweep
from companion.scratch.descent import DescentRun, minibatch_descent
from companion.training import History, fit


def _labels(ax):
    return ax.get_legend_handles_labels()[1]


def _run(batch_size=4):
    X = torch.randn(16, 1, generator=torch.Generator().manual_seed(0))
    return minibatch_descent(lambda w, X, y: ((X[:, 0] * w[0] - y) ** 2).mean(), torch.zeros(1),
                             X, X[:, 0], batch_size=batch_size, lr=0.1)


def _sweep():
    return SweepResult([0.0, 0.01, 0.1], train_loss=[0.1, 0.2, 0.4], val_loss=[0.5, 0.3, 0.45])


# --- what each figure draws -----------------------------------------------------------


def test_plot_history_draws_losses():
    ax = plot_history(History(train_loss=[2.0, 1.0], val_loss=[2.5, 1.5]))
    assert [line.get_label() for line in ax.lines] == ["train loss", "validation loss"]
    assert list(ax.lines[0].get_ydata()) == [2.0, 1.0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "loss")


def test_plot_history_draws_metrics_and_the_stopped_epoch_of_a_fit():
    torch.manual_seed(0)
    X, y = torch.randn(32, 2), torch.randn(32, 1)
    model = nn.Linear(2, 1)
    history = fit(model, [(X, y)], loss_fn=nn.functional.mse_loss, epochs=3,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), val_loader=[(X, y)],
                  metrics={"mae": lambda t, p: float((t - p).abs().mean())}, progress=False,
                  device="cpu")
    history.stopped_epoch = 2
    ax = plot_history(history, metrics=["val_mae"])
    assert _labels(ax) == ["train loss", "validation loss", "val_mae", "stopped"]
    assert list(ax.lines[2].get_ydata()) == history.metrics["val_mae"]
    assert list(ax.lines[3].get_xdata()) == [2, 2]


def test_plot_history_without_validation_draws_one_line():
    ax = plot_history(History(train_loss=[2.0, 1.0, 0.5]))
    assert [line.get_label() for line in ax.lines] == ["train loss"]
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]


def test_plot_loss_curves_draws_one_line_per_curve_from_epoch_1():
    ax = plot_loss_curves({"a": [3.0, 2.0, 1.0], "b": torch.tensor([2.0, 1.0])})
    assert [list(line.get_ydata()) for line in ax.lines] == [[3.0, 2.0, 1.0], [2.0, 1.0]]
    assert list(ax.lines[1].get_xdata()) == [1, 2]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--"]


def test_plot_lambda_sweep_draws_lambda_zero_left_of_the_smallest_rate():
    ax = plot_lambda_sweep(_sweep())
    assert _labels(ax) == ["training loss", "validation loss", "best lambda"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0.001, 0.01, 0.1])
    assert list(ax.lines[1].get_ydata()) == [0.5, 0.3, 0.45]
    assert list(ax.lines[2].get_xdata()) == [0.01, 0.01] and ax.get_xscale() == "log"


def test_plot_lambda_sweep_of_a_real_sweep_marks_its_best_lambda():
    torch.manual_seed(0)
    X, y = torch.randn(40, 3), torch.randn(40, 1)
    result = lambda_sweep(lambda: nn.Linear(3, 1), (X, y), (X, y), lambdas=[0.0, 1.0],
                          loss_fn=nn.functional.mse_loss, epochs=2, device="cpu")
    ax = plot_lambda_sweep(result)
    best = result.best_lambda if result.best_lambda > 0 else 0.1
    assert list(ax.lines[2].get_xdata()) == [best, best]


def test_plot_weight_histograms_share_the_bins_of_all_sets():
    ax = plot_weight_histograms({"no L2": torch.tensor([[-1.0, 0.5], [2.0, 0.0]]),
                                 "L2": np.array([-0.1, 0.2])}, bins=4)
    assert len(ax.patches) == 8 and _labels(ax) == ["no L2", "L2"]
    edges = sorted({round(p.get_x(), 6) for p in ax.patches})
    np.testing.assert_allclose(edges, [-1.0, -0.25, 0.5, 1.25])  # one grid from -1 to 2


def test_plot_weight_histograms_of_equal_weights_draws_one_finite_bar():
    """A set of equal weights (e.g. a zero-initialized layer) made all bin edges equal: the
    densities were NaN (0 / 0) and nothing was drawn."""
    ax = plot_weight_histograms({"zeros": torch.zeros(5)}, bins=2)
    drawn = [p for p in ax.patches if p.get_height() > 0]
    assert len(drawn) == 1 and drawn[0].get_x() <= 0.0 <= drawn[0].get_x() + drawn[0].get_width()
    assert drawn[0].get_height() * drawn[0].get_width() == pytest.approx(1.0)  # a density


def test_plot_descent_runs_draws_loss_against_examples():
    run = _run()
    ax = plot_descent_runs([run, _run(batch_size=16)])
    assert _labels(ax) == ["batch size 4", "batch size 16"] and ax.get_yscale() == "log"
    assert list(ax.lines[0].get_xdata()) == run.examples_seen
    ax = plot_descent_runs([run], labels=[4])
    assert _labels(ax) == ["4"]


def test_plot_gradient_noise_leaves_out_the_full_batch():
    ax = plot_gradient_noise({1: 4.0, 4: 1.0, 16: 0.0})
    assert list(ax.lines[0].get_xdata()) == [1, 4]  # the zero (full batch) is left out
    assert list(ax.lines[1].get_ydata()) == [4.0, 1.0]  # the 1/b reference
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_plot_loss_along_path_draws_the_losses():
    ax = plot_loss_along_path([0, 0.5, 1], [0.1, 1.0, 0.1])
    assert list(ax.lines[0].get_ydata()) == [0.1, 1.0, 0.1]
    assert ax.get_xlabel().startswith("a:")


def test_plot_transfer_curve_draws_one_line_per_approach():
    ax = plot_transfer_curve([10, 100, 1000], {"transfer": [0.8, 0.9, 0.95], "scratch": [0.4, 0.7, 0.9]},
                             ylabel="F1")
    assert _labels(ax) == ["transfer", "scratch"] and ax.get_ylabel() == "F1"
    assert list(ax.lines[1].get_ydata()) == [0.4, 0.7, 0.9] and ax.get_xscale() == "log"


def test_plot_embedding_sweep_marks_the_rule_of_thumb():
    ax = plot_embedding_sweep([2, 4, 8], [0.5, 0.3, 0.2], [0.6, 0.4, 0.5], rule_of_thumb=3.2)
    assert _labels(ax) == ["training loss", "validation loss", "categories ** 0.25"]
    assert list(ax.lines[2].get_xdata()) == [3.2, 3.2]
    ax = plot_embedding_sweep([2, 4], [0.5, 0.3], [0.6, 0.4])
    assert len(ax.lines) == 2


# --- the template errors ---------------------------------------------------------------

BAD = [
    (lambda: plot_history(None), TypeError, r"Expected `history` to be a History"),
    (lambda: plot_history(History()), ValueError, r"`history` to be a History of at least one epoch"),
    (lambda: plot_history(History([1.0]), metrics="val_acc"), TypeError, r"`metrics` to be a sequence"),
    (lambda: plot_history(History([1.0]), metrics=["val_acc"]), ValueError,
     r"Expected `metrics\[0\]` to be one of \('train_loss', 'val_loss'\), but got 'val_acc'\."),
    (lambda: plot_history(History([1.0, 0.5], val_loss=[1.0])), ValueError,
     r"Expected `history\['val_loss'\]` and `history.train_loss` to have the same length"),
    (lambda: plot_loss_curves(None), TypeError, r"Expected `curves` to be a non-empty mapping"),
    (lambda: plot_loss_curves({}), ValueError, r"Expected `curves` to be a non-empty mapping"),
    (lambda: plot_loss_curves({"a": [[1.0, 2.0]]}), ValueError,
     r"Expected `curves\['a'\]` to be a tensor with 1 dimensions"),
    (lambda: plot_loss_curves({"a": []}), ValueError, r"Expected `curves\['a'\]` to be a non-empty"),
    (lambda: plot_lambda_sweep({"lambdas": [0.1]}), TypeError, r"Expected `result` to be a SweepResult"),
    (lambda: plot_lambda_sweep(SweepResult([0.1, 1.0], [1.0], [1.0, 2.0])), ValueError,
     r"`result.train_loss` and `result.lambdas` to have the same length, but got 1 and 2"),
    (lambda: plot_lambda_sweep(SweepResult([-0.1], [1.0], [1.0])), ValueError,
     r"Expected `result.lambdas` to be values >= 0, .*: found -0.1 at \[0\]\."),
    (lambda: plot_weight_histograms({"a": [1.0]}, bins=0), ValueError,
     r"Expected `bins` to be an int >= 1, but got 0\."),
    (lambda: plot_weight_histograms({"a": [1.0]}, bins=2.5), TypeError, r"`bins` to be an int"),
    (lambda: plot_weight_histograms({"a": [1.0, float("nan")]}), ValueError,
     r"Expected `weights\['a'\]` to be a tensor of finite values"),
    (lambda: plot_weight_histograms([1.0, 2.0]), TypeError, r"`weights` to be a non-empty mapping"),
    (lambda: plot_descent_runs(None), TypeError, r"Expected `runs` to be a sequence of DescentRun"),
    (lambda: plot_descent_runs(_run()), TypeError, r"Expected `runs` to be a sequence of DescentRun"),
    (lambda: plot_descent_runs([]), ValueError, r"Expected `runs` to be at least one DescentRun"),
    (lambda: plot_descent_runs([{"loss": [1.0]}]), TypeError, r"Expected `runs\[0\]` to be a DescentRun"),
    (lambda: plot_descent_runs([_run()], labels=["a", "b"]), ValueError,
     r"Expected `labels` and `runs` to have the same length, but got 2 and 1\."),
    (lambda: plot_gradient_noise([1.0, 2.0]), TypeError, r"`noise` to be a non-empty mapping"),
    (lambda: plot_gradient_noise({0: 1.0}), ValueError,
     r"Expected `list\(noise\)\[0\]` to be an int >= 1, but got 0\."),
    (lambda: plot_gradient_noise({4: -1.0}), ValueError,
     r"Expected `noise\[4\]` to be a float >= 0, but got -1.0\."),
    (lambda: plot_gradient_noise({16: 0.0}), ValueError, r"`noise` to be a mapping with at least one value > 0"),
    (lambda: plot_loss_along_path([0, 1], [1.0]), ValueError,
     r"Expected `losses` and `alphas` to have the same length, but got 1 and 2\."),
    (lambda: plot_loss_along_path(None, [1.0]), TypeError,
     r"Expected `alphas` to be a tensor, array or sequence of numbers, but got None\."),
    (lambda: plot_loss_along_path(["a"], [1.0]), TypeError, r"Expected `alphas` to be a tensor, array"),
    (lambda: plot_transfer_curve([0, 10], {"a": [0.5, 0.6]}), ValueError,
     r"Expected `sizes` to be values > 0 \(the axis is logarithmic\), .*: found 0.0 at \[0\]\."),
    (lambda: plot_transfer_curve([10, 100], {"a": [0.5]}), ValueError,
     r"Expected `scores\['a'\]` and `sizes` to have the same length"),
    (lambda: plot_transfer_curve([10], {"a": [0.5]}, ylabel=None), TypeError, r"`ylabel` to be a str"),
    (lambda: plot_embedding_sweep([2, 4], [0.5], [0.6, 0.4]), ValueError,
     r"Expected `train_loss` and `dims` to have the same length, but got 1 and 2\."),
    (lambda: plot_embedding_sweep([2, -4], [0.5, 0.3], [0.6, 0.4]), ValueError,
     r"Expected `dims` to be values > 0 .*found -4.0 at \[1\]"),
    (lambda: plot_embedding_sweep([2], [0.5], [0.6], rule_of_thumb="4"), TypeError,
     r"Expected `rule_of_thumb` to be a float > 0, but got '4'\."),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_raises_the_template_error_before_any_figure_opens(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert not plt.get_fignums()


VALID = {
    plot_history: lambda ax: plot_history(History([1.0]), ax=ax),
    plot_loss_curves: lambda ax: plot_loss_curves({"a": [1.0]}, ax=ax),
    plot_lambda_sweep: lambda ax: plot_lambda_sweep(_sweep(), ax=ax),
    plot_weight_histograms: lambda ax: plot_weight_histograms({"a": [1.0]}, ax=ax),
    plot_descent_runs: lambda ax: plot_descent_runs(
        [DescentRun(4, 0.1, torch.zeros(1), [1.0], [0], 0.0)], ax=ax),
    plot_gradient_noise: lambda ax: plot_gradient_noise({1: 1.0}, ax=ax),
    plot_loss_along_path: lambda ax: plot_loss_along_path([0.0], [1.0], ax=ax),
    plot_transfer_curve: lambda ax: plot_transfer_curve([10], {"a": [0.5]}, ax=ax),
    plot_embedding_sweep: lambda ax: plot_embedding_sweep([2], [0.5], [0.6], ax=ax),
}


@pytest.mark.parametrize("plot", VALID, ids=lambda f: f.__name__)
def test_draws_on_the_given_axes_and_refuses_anything_else(plot):
    _, ax = plt.subplots()
    assert VALID[plot](ax) is ax and ax.has_data()
    with pytest.raises(TypeError, match=r"Expected `ax` to be a matplotlib Axes or None, but got 'left'"):
        VALID[plot]("left")
