"""Tests for companion.plots.diagnostics: what each figure draws, and the template errors."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from companion.diagnostics import GradientMonitor, unit_activity
from companion.plots.diagnostics import (
    plot_activations,
    plot_dead_units,
    plot_gradient_norm_history,
    plot_layer_gradient_norms,
)


def _labels(ax):
    return ax.get_legend_handles_labels()[1]


def _monitor():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    X, y = torch.randn(16, 4), torch.randn(16, 1)
    with GradientMonitor(model) as monitor:
        for _ in range(2):
            model.zero_grad()
            nn.functional.mse_loss(model(X), y).backward()
    return monitor


def _dead(fractions, layers=("1", "3")):
    return pd.DataFrame({"units": 8, "dead": 8 * np.array(fractions), "dead_fraction": fractions},
                        index=list(layers))


# --- what each figure draws -----------------------------------------------------------


def test_plot_activations_draws_each_function_and_its_derivative():
    z = torch.linspace(-3, 3, 7, requires_grad=True)
    curves = {"relu": (torch.relu(z), (z > 0).float()), "tanh": (torch.tanh(z), 1 - torch.tanh(z) ** 2)}
    left, right = plot_activations(z, curves)
    assert len(left.lines) == 3  # two curves and the zero line
    assert _labels(left) == _labels(right) == ["relu", "tanh"]
    np.testing.assert_allclose(right.lines[1].get_ydata(), (1 - torch.tanh(z) ** 2).detach(), rtol=1e-6)
    assert (left.get_title(), right.get_title()) == ("activation f(z)", "derivative f'(z)")


def test_plot_activations_draws_on_a_row_of_given_axes():
    _, axes = plt.subplots(1, 2)
    z = np.linspace(-1, 1, 3)
    assert list(plot_activations(z, {"id": (z, np.ones(3))}, axes=axes)) == list(axes)
    assert _labels(axes[1]) == ["id"]


def test_plot_layer_gradient_norms_draws_one_line_per_run_named_by_layer():
    monitor = _monitor()
    ax = plot_layer_gradient_norms({"a": monitor.layer_norms(), "b": monitor.layer_norms()})
    assert len(ax.lines) == 2 and ax.get_yscale() == "log" and _labels(ax) == ["a", "b"]
    assert [t.get_text() for t in ax.get_xticklabels()] == monitor.layers_
    assert list(ax.lines[0].get_ydata()) == list(monitor.layer_norms().values())


def test_plot_layer_gradient_norms_names_the_layers_of_the_deepest_run():
    ax = plot_layer_gradient_norms({"shallow": {"0": 1.0}, "deep": {"0": 0.1, "2": 1.0, "4": float("inf")}})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2", "4"]


def test_plot_gradient_norm_history_marks_the_first_non_finite_step():
    norms = _monitor().step_norms()
    ax = plot_gradient_norm_history(norms)
    assert len(ax.lines) == 3 and ax.get_yscale() == "log"  # three layers, no marker
    assert _labels(ax) == [f"{depth}: {layer}" for depth, layer in enumerate(norms, start=1)]
    norms["0"][1] = float("nan")
    ax = plot_gradient_norm_history(norms)
    assert len(ax.lines) == 4 and _labels(ax)[-1] == "first NaN/Inf"  # three layers and the marker
    assert list(ax.lines[-1].get_xdata()) == [2, 2]


def test_plot_dead_units_draws_one_bar_per_layer_and_run():
    ax = plot_dead_units({"high lr": _dead([0.5, 0.25]), "low lr": _dead([0.0, 0.125])})
    assert len(ax.patches) == 4 and _labels(ax) == ["high lr", "low lr"]
    assert [p.get_height() for p in ax.patches] == [0.5, 0.25, 0.0, 0.125]
    assert [round(p.get_x() + p.get_width() / 2, 6) for p in ax.patches] == [-0.2, 0.8, 0.2, 1.2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"] and ax.get_ylim() == (0, 1)


def test_plot_dead_units_draws_the_tables_of_unit_activity():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([-1e3, 1e3, 1e3]))  # unit 0 of the first ReLU never fires
    table = unit_activity(model, torch.randn(16, 2))
    ax = plot_dead_units({"run": table})
    assert [p.get_height() for p in ax.patches] == table["dead_fraction"].tolist()
    assert ax.patches[0].get_height() == pytest.approx(1 / 3)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"]


# --- the template errors ---------------------------------------------------------------

Z = [-1.0, 0.0, 1.0]

BAD = [
    (lambda: plot_activations(Z, None), TypeError, r"Expected `curves` to be a non-empty mapping"),
    (lambda: plot_activations(Z, {"relu": [0.0, 0.0, 1.0]}), TypeError,
     r"Expected `curves\['relu'\]` to be a pair \(values, derivatives\)"),
    (lambda: plot_activations(Z, {"relu": (Z, [0.0, 1.0])}), ValueError,
     r"Expected `curves\['relu'\]\[1\]` and `z` to have the same length, but got 2 and 3\."),
    (lambda: plot_activations([[0.0]], {"relu": ([0.0], [0.0])}), ValueError,
     r"Expected `z` to be a tensor with 1 dimensions"),
    (lambda: plot_activations(Z, {"id": (Z, Z)}, axes=[plt.Axes]), ValueError,
     r"Expected `axes` to be two matplotlib Axes or None"),
    (lambda: plot_activations(Z, {"id": (Z, Z)}, axes=("a", "b")), TypeError,
     r"Expected `axes\[0\]` to be a matplotlib Axes, but got 'a'\."),
    (lambda: plot_layer_gradient_norms({}), ValueError, r"Expected `runs` to be a non-empty mapping"),
    (lambda: plot_layer_gradient_norms({"a": [1.0, 2.0]}), TypeError,
     r"Expected `runs\['a'\]` to be a non-empty mapping \{layer name: norm\}"),
    (lambda: plot_layer_gradient_norms({"a": {"0": "big"}}), TypeError,
     r"Expected `runs\['a'\].values\(\)` to be a tensor, array or sequence of numbers"),
    (lambda: plot_gradient_norm_history(None), TypeError,
     r"Expected `step_norms` to be a non-empty mapping \{layer name: norm per step\}, but got None\."),
    (lambda: plot_gradient_norm_history({"0": []}), ValueError,
     r"Expected `step_norms\['0'\]` to be a non-empty tensor"),
    (lambda: plot_gradient_norm_history({"0": 1.0}), ValueError,
     r"Expected `step_norms\['0'\]` to be a tensor with 1 dimensions"),
    (lambda: plot_dead_units({"a": [0.5]}), TypeError, r"Expected `runs\['a'\]` to be a pandas DataFrame"),
    (lambda: plot_dead_units({"a": _dead([0.5, 1.5])}), ValueError,
     r"Expected `runs\['a'\]\['dead_fraction'\]` to be shares in \[0, 1\], .*: found 1.5 at \[1\]\."),
    (lambda: plot_dead_units({"a": _dead([0.5, 0.5]), "b": _dead([0.5], layers=["1"])}), ValueError,
     r"Expected `runs\['b'\].index` to be the first run's layers \['1', '3'\], but got \['1'\]\."),
    (lambda: plot_dead_units({"a": _dead([0.5, 0.5]).drop(columns="dead_fraction")}), ValueError,
     r"Expected `runs\['a'\].columns` to be a list including \['dead_fraction'\]"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_raises_the_template_error_before_any_figure_opens(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert not plt.get_fignums()


VALID = {
    plot_layer_gradient_norms: lambda ax: plot_layer_gradient_norms({"a": {"0": 1.0}}, ax=ax),
    plot_gradient_norm_history: lambda ax: plot_gradient_norm_history({"0": [1.0]}, ax=ax),
    plot_dead_units: lambda ax: plot_dead_units({"a": _dead([0.5, 0.5])}, ax=ax),
}


@pytest.mark.parametrize("plot", VALID, ids=lambda f: f.__name__)
def test_draws_on_the_given_axes_and_refuses_anything_else(plot):
    _, ax = plt.subplots()
    assert VALID[plot](ax) is ax and ax.has_data()
    with pytest.raises(TypeError, match=r"Expected `ax` to be a matplotlib Axes or None, but got 'left'"):
        VALID[plot]("left")


def test_plot_activations_refuses_axes_that_are_not_a_pair():
    with pytest.raises(TypeError, match=r"Expected `axes` to be two matplotlib Axes or None"):
        plot_activations(Z, {"id": (Z, Z)}, axes="left")
