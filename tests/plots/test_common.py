"""Tests for companion.plots._common (the checks every figure shares) and the package's exports."""

import importlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.axes import Axes

import companion.plots
from companion.plots._common import (
    as_values,
    axes_for,
    check_frame,
    check_mapping,
    require_values,
    tick_names,
    values_by_key,
)

SUBMODULES = ["training", "evaluation", "diagnostics", "attributions", "speed", "monitoring", "distributed"]


def test_the_package_exports_every_plot_function_of_its_submodules_once():
    exported = []
    for name in SUBMODULES:
        module = importlib.import_module(f"companion.plots.{name}")
        exported += module.__all__
        for function in module.__all__:
            assert getattr(companion.plots, function) is getattr(module, function)
    assert sorted(exported) == sorted(companion.plots.__all__) and len(set(exported)) == 30
    assert all(name.startswith("plot_") for name in exported)


def test_axes_for_opens_a_figure_only_when_given_none():
    ax = axes_for(None, (2, 3))
    assert isinstance(ax, Axes) and ax.figure.get_size_inches().tolist() == [2.0, 3.0]
    assert axes_for(ax) is ax and len(plt.get_fignums()) == 1
    with pytest.raises(TypeError, match=r"Expected `ax` to be a matplotlib Axes or None, but got <Figure size"):
        axes_for(plt.figure())


def test_as_values_accepts_tensors_arrays_lists_and_series():
    expected = np.array([1.0, 2.0])
    for value in (torch.tensor([1.0, 2.0], requires_grad=True), np.array([1, 2]), [1, 2],
                  pd.Series([1.0, 2.0])):
        result = as_values("x", value)
        assert result.dtype == np.float64 and np.array_equal(result, expected)
    assert as_values("cm", torch.tensor([[1, 2]]), ndim=2, dtype=None).dtype == np.int64
    assert as_values("w", torch.zeros(2, 3), ndim=None).shape == (2, 3)


def test_as_values_refuses_what_is_not_numbers_empty_or_of_another_shape():
    with pytest.raises(TypeError, match=r"Expected `x` to be a tensor, array or sequence of numbers"):
        as_values("x", [[1.0], [1.0, 2.0]])
    with pytest.raises(TypeError, match=r"Expected `x` to be a tensor, array or sequence of numbers"):
        as_values("x", pd.Series(["a", "b"]))
    with pytest.raises(ValueError, match=r"Expected `x` to be a non-empty tensor"):
        as_values("x", [])
    with pytest.raises(ValueError, match=r"Expected `x` to be a tensor with 1 or 2 dimensions"):
        as_values("x", 1.0, ndim=(1, 2))
    with pytest.raises(ValueError, match=r"Expected `x` to be a tensor of finite values"):
        as_values("x", [1.0, float("inf")], finite=True)


def test_require_values_names_the_first_bad_element():
    values = np.array([[1.0, 2.0], [-3.0, -4.0]])
    require_values("m", values, np.ones((2, 2), dtype=bool), "anything")
    with pytest.raises(ValueError, match=r"Expected `m` to be values >= 0, but got an array .*: found -3.0 at \[1, 0\]\."):
        require_values("m", values, values >= 0, "values >= 0")


def test_mapping_checks_refuse_other_types_and_empty_mappings():
    with pytest.raises(TypeError, match=r"Expected `runs` to be a non-empty mapping \{name: x\}, but got \[1\]\."):
        check_mapping("runs", [1], "{name: x}")
    with pytest.raises(ValueError, match=r"Expected `runs` to be a non-empty mapping \{name: x\}, but got \{\}\."):
        values_by_key("runs", {}, "{name: x}")
    assert list(values_by_key("runs", {"a": 1.0}, "{name: x}", ndim=0)) == ["a"]


def test_check_frame_refuses_other_types_missing_columns_and_no_rows():
    frame = pd.DataFrame({"a": [1], "b": [2]})
    assert check_frame("t", frame, ["b"]) is frame
    with pytest.raises(TypeError, match=r"Expected `t` to be a pandas DataFrame, but got \{'a': \[1\]\}\."):
        check_frame("t", {"a": [1]}, ["a"])
    with pytest.raises(ValueError, match=r"Expected `t.columns` to be a list including \['c'\], but got \['a', 'b'\]\."):
        check_frame("t", frame, ["c"])
    with pytest.raises(ValueError, match=r"Expected `len\(t\)` to be an int >= 1, but got 0\."):
        check_frame("t", frame.iloc[:0], ["a"])


def test_tick_names_default_to_indices_and_must_match_the_count():
    assert tick_names("names", (), 2) == ["0", "1"]
    assert tick_names("names", np.array([3, 4]), 2) == ["3", "4"]
    with pytest.raises(ValueError, match=r"Expected `names` to be 1 names \(or none\), but got \['a', 'b'\]\."):
        tick_names("names", ["a", "b"], 1)
    with pytest.raises(TypeError, match=r"Expected `names` to be a sequence of names, but got 3\."):
        tick_names("names", 3, 1)
