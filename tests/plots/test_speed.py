"""Tests for companion.plots.speed: what each figure draws, and the template errors."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from companion.plots.speed import plot_latency, plot_step_times, plot_throughput

# --- what each figure draws -----------------------------------------------------------


def test_plot_latency_draws_cumulative_curves_with_p50_and_p99_marked():
    offline = np.full(100, 0.001)
    online = np.linspace(0.01, 0.1, 100)
    ax = plot_latency({"offline": offline, "online": torch.tensor(online)})
    assert [line.get_label() for line in ax.lines] == ["offline", "online"]
    np.testing.assert_allclose(ax.lines[1].get_xdata(), online * 1e3)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), np.arange(1, 101) / 100)
    p50, p99 = np.percentile(online * 1e3, [50, 99])
    np.testing.assert_allclose(ax.collections[1].get_offsets(), [[p50, 0.5], [p99, 0.99]])
    assert [t.get_text() for t in ax.texts] == ["p99 1 ms", f"p99 {p99:.2g} ms"]
    assert ax.get_xscale() == "log"


def test_plot_throughput_draws_one_bar_per_label():
    ax = plot_throughput({"cpu": 100.0, "gpu": 10_000})
    assert [p.get_width() for p in ax.patches] == [100.0, 10_000.0] and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cpu", "gpu"]
    assert [t.get_text() for t in ax.texts] == ["100", "10,000"]


def test_plot_step_times_draws_milliseconds_log_log():
    ax = plot_step_times([10, 50_000], [0.001, 0.2], torch.tensor([0.001, 0.002]))
    assert len(ax.lines) == 2 and ax.get_xscale() == ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 200.0])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 2.0])
    assert [line.get_label() for line in ax.lines] == ["full softmax", "candidate sampling"]


# --- the template errors ---------------------------------------------------------------

BAD = [
    (lambda: plot_latency(None), TypeError,
     r"Expected `latencies` to be a non-empty mapping \{path name: latencies in seconds\}, but got None\."),
    (lambda: plot_latency({"a": [0.1, 0.0]}), ValueError,
     r"Expected `latencies\['a'\]` to be values > 0 \(the axis is logarithmic\), .*: found 0.0 at \[1\]\."),
    (lambda: plot_latency({"a": []}), ValueError, r"Expected `latencies\['a'\]` to be a non-empty tensor"),
    (lambda: plot_latency({"a": [0.1, float("inf")]}), ValueError, r"`latencies\['a'\]` to be a tensor of finite"),
    (lambda: plot_throughput({}), ValueError, r"Expected `throughputs` to be a non-empty mapping"),
    (lambda: plot_throughput({"cpu": -1.0}), ValueError,
     r"Expected `throughputs\['cpu'\]` to be a float > 0, but got -1.0\."),
    (lambda: plot_throughput({"cpu": "fast"}), TypeError,
     r"Expected `throughputs\['cpu'\]` to be a float > 0, but got 'fast'\."),
    (lambda: plot_step_times([10, 100], [0.1], [0.1, 0.2]), ValueError,
     r"Expected `full` and `classes` to have the same length, but got 1 and 2\."),
    (lambda: plot_step_times([10], [0.0], [0.1]), ValueError, r"Expected `full` to be values > 0"),
    (lambda: plot_step_times(None, [0.1], [0.1]), TypeError, r"Expected `classes` to be a tensor, array"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_raises_the_template_error_before_any_figure_opens(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert not plt.get_fignums()


VALID = {
    plot_latency: lambda ax: plot_latency({"a": [0.1]}, ax=ax),
    plot_throughput: lambda ax: plot_throughput({"a": 1.0}, ax=ax),
    plot_step_times: lambda ax: plot_step_times([10], [0.1], [0.1], ax=ax),
}


@pytest.mark.parametrize("plot", VALID, ids=lambda f: f.__name__)
def test_draws_on_the_given_axes_and_refuses_anything_else(plot):
    _, ax = plt.subplots()
    assert VALID[plot](ax) is ax and ax.has_data()
    with pytest.raises(TypeError, match=r"Expected `ax` to be a matplotlib Axes or None, but got 'left'"):
        VALID[plot]("left")
