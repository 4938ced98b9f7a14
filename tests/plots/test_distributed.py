"""Tests for companion.plots.distributed: what each figure draws, and the template errors."""

import numpy as np
import pytest
import torch

from companion.distributed.pipeline import gpipe_timeline
from companion.plots.distributed import plot_loss_per_update, plot_pipeline_timeline


def test_plot_pipeline_timeline_draws_a_bar_per_interval_in_ms_from_the_start():
    timeline = gpipe_timeline(2, 2, forward_seconds=0.01, backward_seconds=0.02)
    ax = plot_pipeline_timeline(timeline, start=-0.005, title="two micro-batches")
    bars = ax.patches
    assert len(bars) == 8 and ax.get_title() == "two micro-batches"
    lefts = [bar.get_x() for bar in bars]
    widths = [bar.get_width() for bar in bars]
    np.testing.assert_allclose(lefts[:4], [5.0, 15.0, 55.0, 75.0])  # stage 0: its forwards, then backwards
    np.testing.assert_allclose(widths[:4], [10.0, 10.0, 20.0, 20.0])
    rows = [bar.get_y() + bar.get_height() / 2 for bar in bars]
    assert rows == [0.0] * 4 + [1.0] * 4
    colors = {tuple(bar.get_facecolor()) for bar in bars[:2]} | {tuple(bar.get_facecolor()) for bar in bars[4:6]}
    assert len(colors) == 1  # forwards share a colour, unlike backwards
    assert bars[0].get_facecolor() != bars[2].get_facecolor()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["stage 0", "stage 1"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["forward", "backward"]


def test_plot_loss_per_update_starts_at_update_zero():
    ax = plot_loss_per_update({"sync": torch.tensor([1.0, 0.5, 0.2]), "stale": [1.0, 0.9]})
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 0.9])
    assert ax.get_yscale() == "linear" and ax.get_xlabel() == "updates applied"
    assert plot_loss_per_update({"a": [1.0, 0.1]}, log=True).get_yscale() == "log"


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda: plot_pipeline_timeline([]), ValueError, "Expected `intervals` to be a sequence with at least one stage"),
        (lambda: plot_pipeline_timeline(None), TypeError, "Expected `intervals` to be a sequence of per-stage"),
        (lambda: plot_pipeline_timeline([5]), TypeError, "Expected `intervals[0]` to be a sequence of (start, end, kind)"),
        (lambda: plot_pipeline_timeline([[(0.0, 1.0, "idle")]]), ValueError, "Expected `intervals[0][0]` to be a"),
        (lambda: plot_pipeline_timeline([[(1.0, 0.0, "forward")]]), ValueError, "with end >= start"),
        (lambda: plot_pipeline_timeline([[(0.0, "1", "forward")]]), ValueError, "`intervals[0][0]`"),
        (lambda: plot_pipeline_timeline([[]], start="0"), TypeError, "Expected `start` to be a float"),
        (lambda: plot_pipeline_timeline([[]], title=3), TypeError, "Expected `title` to be a str, but got 3."),
        (lambda: plot_pipeline_timeline([[]], ax="left"), TypeError, "Expected `ax` to be a matplotlib Axes"),
        (lambda: plot_loss_per_update({}), ValueError, "Expected `curves` to be a non-empty mapping"),
        (lambda: plot_loss_per_update({"a": [1.0, float("nan")]}), ValueError, "finite"),
        (lambda: plot_loss_per_update({"a": [1.0, 0.0]}, log=True), ValueError, "found 0.0 at [1]"),
        (lambda: plot_loss_per_update({"a": [1.0]}, log="yes"), TypeError, "Expected `log` to be a bool"),
    ],
)
def test_bad_input(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)
