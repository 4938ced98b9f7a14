"""Tests for companion.plots.monitoring: what each figure draws, and the template errors."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from companion.checks import monitor_live_quality
from companion.plots.monitoring import plot_live_quality, plot_stream_scores

# --- what each figure draws -----------------------------------------------------------


def test_plot_stream_scores_draws_one_line_per_model_and_marks_batches():
    ax = plot_stream_scores({"static": [0.9, 0.7, float("nan"), 0.5], "dynamic": [0.9, 0.85, 0.8, 0.8]},
                            marks=[1, 3])
    assert [line.get_label() for line in ax.lines] == ["static", "dynamic", "quarantined", "_child3"]
    assert list(ax.lines[1].get_xdata()) == [0, 1, 2, 3]
    assert [list(line.get_xdata()) for line in ax.lines[2:]] == [[1, 1], [3, 3]]
    assert ax.get_legend_handles_labels()[1] == ["static", "dynamic", "quarantined"]


def test_plot_live_quality_marks_the_alerts_of_monitor_live_quality():
    accuracy = lambda t, p: float((t == p).float().mean())
    y = torch.tensor([1, 1, 0, 0, 1, 0])
    live = monitor_live_quality(y, torch.tensor([1, 1, 0, 1, 0, 1]), metric=accuracy, window=2,
                                min_value=0.8)
    ax = plot_live_quality(live, min_value=0.8)
    assert list(ax.lines[0].get_ydata()) == live["value"].tolist()
    alerts = live[live["alert"]]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), alerts[["start", "value"]].to_numpy())
    assert list(ax.lines[1].get_ydata()) == [0.8, 0.8]
    assert ax.get_legend_handles_labels()[1] == ["live quality", "alert", "threshold"]


# --- the template errors ---------------------------------------------------------------

TABLE = pd.DataFrame({"start": [0, 10], "value": [0.9, 0.4], "alert": [False, True]})

BAD = [
    (lambda: plot_stream_scores(None), TypeError, r"Expected `scores` to be a non-empty mapping"),
    (lambda: plot_stream_scores({"a": [[0.9]]}), ValueError, r"Expected `scores\['a'\]` to be a tensor with 1"),
    (lambda: plot_stream_scores({"a": [0.9]}, marks=[-1]), ValueError,
     r"Expected `marks\[0\]` to be an int >= 0, but got -1\."),
    (lambda: plot_stream_scores({"a": [0.9]}, marks=3), TypeError,
     r"Expected `marks` to be a sequence of batch indices, but got 3\."),
    (lambda: plot_live_quality(TABLE.to_dict(), min_value=0.5), TypeError,
     r"Expected `table` to be a pandas DataFrame"),
    (lambda: plot_live_quality(TABLE.drop(columns="alert"), min_value=0.5), ValueError,
     r"Expected `table.columns` to be a list including \['start', 'value', 'alert'\], "
     r"but got \['start', 'value'\]\."),
    (lambda: plot_live_quality(TABLE.assign(alert=[0, 1]), min_value=0.5), TypeError,
     r"Expected `table\['alert'\]` to be a column of booleans"),
    (lambda: plot_live_quality(TABLE, min_value=None), TypeError,
     r"Expected `min_value` to be a float, but got None\."),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_raises_the_template_error_before_any_figure_opens(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert not plt.get_fignums()


VALID = {
    plot_stream_scores: lambda ax: plot_stream_scores({"a": [0.9]}, ax=ax),
    plot_live_quality: lambda ax: plot_live_quality(TABLE, min_value=0.5, ax=ax),
}


@pytest.mark.parametrize("plot", VALID, ids=lambda f: f.__name__)
def test_draws_on_the_given_axes_and_refuses_anything_else(plot):
    _, ax = plt.subplots()
    assert VALID[plot](ax) is ax and ax.has_data()
    with pytest.raises(TypeError, match=r"Expected `ax` to be a matplotlib Axes or None, but got 'left'"):
        VALID[plot]("left")
