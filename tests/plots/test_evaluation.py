"""Tests for companion.plots.evaluation: what each figure draws, and the template errors."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from companion.plots.evaluation import (
    plot_confusion_matrix,
    plot_correlation_matrix,
    plot_pr_curve,
    plot_predicted_vs_observed,
    plot_roc_curve,
    plot_slice_bias,
    plot_sliced_metrics,
)
from companion.slicing import sliced_metrics

Y_TRUE = [0, 0, 1, 1, 0, 1, 1, 0]
Y_SCORE = [0.1, 0.6, 0.4, 0.9, 0.2, 0.7, 0.8, 0.3]


def _labels(ax):
    return ax.get_legend_handles_labels()[1]


# --- what each figure draws -----------------------------------------------------------


def test_plot_confusion_matrix_writes_each_count_white_on_dark_cells():
    ax = plot_confusion_matrix(torch.tensor([[50, 2], [8, 40]]), class_names=["cat", "dog"])
    assert [t.get_text() for t in ax.texts] == ["50", "2", "8", "40"]
    assert [t.get_color() for t in ax.texts] == ["white", "black", "black", "white"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    ax = plot_confusion_matrix(np.eye(3, dtype=int))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]


def test_plot_correlation_matrix_labels_every_cell_and_adds_a_colour_bar():
    ax = plot_correlation_matrix(torch.corrcoef(torch.randn(3, 50)), names=["a", "b", "c"])
    assert len(ax.texts) == 9 and ax.texts[0].get_text() == "1.00"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_images()[0].get_clim() == (-1, 1) and len(ax.figure.axes) == 2
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [3.0, 1.0, 2.0]}).corr()
    assert [t.get_text() for t in plot_correlation_matrix(frame).texts] == ["1.00", "-0.50", "-0.50", "1.00"]


def test_plot_correlation_matrix_writes_nan_in_black_on_a_blank_cell():
    ax = plot_correlation_matrix([[1.0, float("nan")], [float("nan"), 1.0]])
    assert [t.get_text() for t in ax.texts] == ["1.00", "nan", "nan", "1.00"]
    assert [t.get_color() for t in ax.texts] == ["white", "black", "black", "white"]


def test_plot_roc_curve_shows_scikit_learns_auc_and_the_threshold_point():
    ax = plot_roc_curve(Y_TRUE, torch.tensor(Y_SCORE), threshold=0.5, label="model")
    assert _labels(ax) == [f"model: AUC {roc_auc_score(Y_TRUE, Y_SCORE):.3f}", "chance", "threshold 0.5"]
    # score >= 0.5: 3 of 4 positives, 1 of 4 negatives
    assert ax.collections[0].get_offsets().tolist() == [[0.25, 0.75]]
    assert len(plot_roc_curve(Y_TRUE, Y_SCORE).collections) == 0  # no threshold, no point


def test_plot_pr_curve_shows_average_precision_the_positive_rate_and_the_threshold_point():
    ax = plot_pr_curve(Y_TRUE, Y_SCORE, threshold=0.5)
    ap = average_precision_score(Y_TRUE, Y_SCORE)
    assert _labels(ax) == [f"AUC {ap:.3f}", "chance (positive rate 0.5)", "threshold 0.5"]
    assert ax.collections[0].get_offsets().tolist() == [[0.75, 0.75]]  # (recall, precision)
    ax = plot_pr_curve(Y_TRUE, Y_SCORE, threshold=2.0)  # nothing predicted positive
    assert ax.collections[0].get_offsets().tolist() == [[0.0, 1.0]]


def test_plot_predicted_vs_observed_draws_the_diagonal_once():
    ax = plot_predicted_vs_observed([0.1, 0.5, 0.9], [0.2, 0.5, 0.8], label="a")
    ax = plot_predicted_vs_observed(pd.Series([0.1, 0.9]), torch.tensor([0.1, 0.9]), label="b", ax=ax)
    assert len(ax.lines) == 3  # one diagonal, two models
    assert list(ax.lines[0].get_xdata()) == [0.1, 0.9] and _labels(ax)[1:] == ["a", "b"]


def test_plot_sliced_metrics_draws_one_bar_per_slice():
    frame = pd.DataFrame({"slice": ["a", "b", "c"], "accuracy": [0.9, 0.7, 0.8], "n": [10, 20, 3000]})
    ax = plot_sliced_metrics(frame, by="slice")
    assert [round(p.get_height(), 3) for p in ax.patches] == [0.9, 0.7, 0.8]
    assert [t.get_text() for t in ax.texts] == ["n=10", "n=20", "n=3,000"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("slice", "accuracy")


def test_plot_slice_bias_draws_one_bar_per_row_the_overall_one_grey():
    table = sliced_metrics({"label": [0, 1, 1, 0, 1, 0], "prediction": [0.1, 0.8, 0.9, 0.6, 0.7, 0.5],
                            "region": ["a", "a", "a", "b", "b", "b"]}, "region")
    ax = plot_slice_bias(table)
    assert [p.get_width() for p in ax.patches] == pytest.approx(table["prediction_bias"].tolist())
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(k) for k in table.index]
    assert [t.get_text() for t in ax.texts] == ["n=3", "n=3", "n=6"]
    assert ax.patches[-1].get_facecolor() != ax.patches[0].get_facecolor()


# --- the template errors ---------------------------------------------------------------

FRAME = pd.DataFrame({"slice": ["a"], "accuracy": [0.9], "n": [10]})
BIAS = pd.DataFrame({"prediction_bias": [0.1], "count": [3]}, index=["(all)"])

BAD = [
    (lambda: plot_confusion_matrix([[1, 2, 3]]), ValueError,
     r"Expected `cm` to be a square \(K, K\) matrix, but got an array of shape \(1, 3\)"),
    (lambda: plot_confusion_matrix([1, 2]), ValueError, r"Expected `cm` to be a tensor with 2 dimensions"),
    (lambda: plot_confusion_matrix([[1, -2], [0, 1]]), ValueError,
     r"Expected `cm` to be a matrix of counts >= 0, .*: found -2 at \[0, 1\]\."),
    (lambda: plot_confusion_matrix([[1, 2], [0, 1]], class_names=["cat"]), ValueError,
     r"Expected `class_names` to be 2 names \(or none\), but got \['cat'\]\."),
    (lambda: plot_confusion_matrix([[1, 2], [0, 1]], class_names="ab"), TypeError,
     r"Expected `class_names` to be a sequence of names, but got 'ab'\."),
    (lambda: plot_correlation_matrix(None), TypeError, r"Expected `corr` to be a tensor, array"),
    (lambda: plot_correlation_matrix([[1.0, 2.0], [2.0, 1.0]]), ValueError,
     r"Expected `corr` to be a matrix of correlations in \[-1, 1\], .*: found 2.0 at \[0, 1\]\."),
    (lambda: plot_correlation_matrix(np.eye(2), names=["a", "b", "c"]), ValueError,
     r"Expected `names` to be 2 names"),
    (lambda: plot_roc_curve(Y_TRUE, Y_SCORE[:3]), ValueError,
     r"Expected `y_true` and `y_score` to have the same length"),
    (lambda: plot_roc_curve([0, 2], [0.1, 0.2]), ValueError, r"Expected `y_true` to be"),
    (lambda: plot_roc_curve(Y_TRUE, Y_SCORE, threshold="high"), TypeError,
     r"Expected `threshold` to be a float, but got 'high'\."),
    (lambda: plot_roc_curve(Y_TRUE, Y_SCORE, label=3), TypeError,
     r"Expected `label` to be a str or None, but got 3\."),
    (lambda: plot_pr_curve(None, Y_SCORE), TypeError, r"Expected `y_true` to be a tensor, array"),
    (lambda: plot_pr_curve(Y_TRUE, Y_SCORE, threshold=float("nan")), ValueError,
     r"Expected `threshold` to be a float, but got nan\."),
    (lambda: plot_predicted_vs_observed([0.1, 0.5], [0.2]), ValueError,
     r"Expected `observed` and `predicted` to have the same length, but got 1 and 2\."),
    (lambda: plot_predicted_vs_observed([0.1, float("nan")], [0.2, 0.3]), ValueError,
     r"Expected `predicted` to be a tensor of finite values"),
    (lambda: plot_predicted_vs_observed([0.1], [0.2], label=["a"]), TypeError, r"`label` to be a str or None"),
    (lambda: plot_sliced_metrics({"slice": ["a"]}, by="slice"), TypeError,
     r"Expected `frame` to be a pandas DataFrame"),
    (lambda: plot_sliced_metrics(FRAME, by="region"), ValueError,
     r"Expected `frame.columns` to be a list including \['region', 'accuracy', 'n'\], "
     r"but got \['slice', 'accuracy', 'n'\]\."),
    (lambda: plot_sliced_metrics(FRAME.iloc[:0], by="slice"), ValueError,
     r"Expected `len\(frame\)` to be an int >= 1, but got 0\."),
    (lambda: plot_sliced_metrics(FRAME, by=0), TypeError, r"Expected `by` to be a column name \(str\)"),
    (lambda: plot_slice_bias(None), TypeError, r"Expected `table` to be a pandas DataFrame, but got None\."),
    (lambda: plot_slice_bias(BIAS.drop(columns="count")), ValueError,
     r"Expected `table.columns` to be a list including \['prediction_bias', 'count'\]"),
    (lambda: plot_slice_bias(BIAS.assign(prediction_bias=["high"])), TypeError,
     r"Expected `table\['prediction_bias'\]` to be a tensor, array or sequence of numbers"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_raises_the_template_error_before_any_figure_opens(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert not plt.get_fignums()


VALID = {
    plot_confusion_matrix: lambda ax: plot_confusion_matrix([[1, 0], [0, 1]], ax=ax),
    plot_correlation_matrix: lambda ax: plot_correlation_matrix(np.eye(2), ax=ax),
    plot_roc_curve: lambda ax: plot_roc_curve(Y_TRUE, Y_SCORE, ax=ax),
    plot_pr_curve: lambda ax: plot_pr_curve(Y_TRUE, Y_SCORE, ax=ax),
    plot_predicted_vs_observed: lambda ax: plot_predicted_vs_observed([0.1], [0.2], ax=ax),
    plot_sliced_metrics: lambda ax: plot_sliced_metrics(FRAME, by="slice", ax=ax),
    plot_slice_bias: lambda ax: plot_slice_bias(BIAS, ax=ax),
}


@pytest.mark.parametrize("plot", VALID, ids=lambda f: f.__name__)
def test_draws_on_the_given_axes_and_refuses_anything_else(plot):
    _, ax = plt.subplots()
    assert VALID[plot](ax) is ax and ax.has_data()
    with pytest.raises(TypeError, match=r"Expected `ax` to be a matplotlib Axes or None, but got 'left'"):
        VALID[plot]("left")
