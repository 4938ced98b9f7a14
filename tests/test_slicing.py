"""Tests for companion.slicing.sliced_metrics, with pandas groupby and scikit-learn as oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from companion.metrics import roc_auc
from companion.slicing import OVERALL, sliced_metrics


def _frame(n: int = 300, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], size=n, p=[0.6, 0.3, 0.1])
    label = rng.integers(0, 2, size=n)
    prediction = np.clip(0.3 * label + rng.uniform(0, 0.7, size=n), 0, 1)
    return pd.DataFrame({"region": region, "label": label, "prediction": prediction})


def test_matches_a_pandas_groupby():
    frame = _frame()
    table = sliced_metrics(frame, "region")
    grouped = frame.groupby("region")
    assert list(table.index) == ["east", "north", "south", OVERALL]
    assert table.index.name == "region"
    np.testing.assert_array_equal(table["count"].iloc[:-1], grouped.size())
    np.testing.assert_allclose(table["mean_label"].iloc[:-1], grouped["label"].mean())
    expected_bias = grouped["prediction"].mean() - grouped["label"].mean()
    np.testing.assert_allclose(table["prediction_bias"].iloc[:-1], expected_bias, atol=1e-12)
    overall = table.loc[OVERALL]
    assert overall["count"] == len(frame) and overall["share"] == 1.0
    assert overall["prediction_bias"] == pytest.approx(frame["prediction"].mean() - frame["label"].mean())
    assert table["share"].iloc[:-1].sum() == pytest.approx(1.0)


def test_tensors_and_slice_values_give_the_same_table_as_a_frame():
    frame = _frame(seed=1)
    codes = torch.tensor(pd.factorize(frame["region"], sort=True)[0])
    columns = {"label": torch.tensor(frame["label"].to_numpy()), "prediction": torch.tensor(frame["prediction"].to_numpy())}
    from_tensors = sliced_metrics(columns, codes)
    from_frame = sliced_metrics(frame, "region")
    assert from_tensors.index.name == "slice"
    np.testing.assert_allclose(from_tensors.to_numpy(dtype=float), from_frame.to_numpy(dtype=float))


def test_extra_metrics_are_computed_per_slice():
    frame = _frame(seed=2)
    table = sliced_metrics(frame, "region", metrics={"auc": roc_auc, "mse": lambda y, p: float(((p - y) ** 2).mean())})
    for region, part in frame.groupby("region"):
        assert table.loc[region, "auc"] == pytest.approx(roc_auc_score(part["label"], part["prediction"]))
        assert table.loc[region, "mse"] == pytest.approx(((part["prediction"] - part["label"]) ** 2).mean())


def test_a_2d_array_gives_numbered_columns():
    values = np.array([[0.0, 0.2, 1.0], [1.0, 0.9, 1.0], [1.0, 0.4, 2.0]])
    table = sliced_metrics(values, "x2", label="x0", prediction="x1")
    assert table["count"].to_dict() == {1.0: 2, 2.0: 1, OVERALL: 3}
    assert table.loc[2.0, "prediction_bias"] == pytest.approx(-0.6)


def test_custom_column_names_and_missing_slice_values():
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "y_hat": [1.0, 2.0, 5.0, 5.0], "g": ["a", "a", None, None]})
    table = sliced_metrics(frame, "g", label="y", prediction="y_hat")
    assert table["count"].tolist() == [2, 2, 4]
    assert table["prediction_bias"].tolist() == pytest.approx([0.0, 1.5, 0.75])


def test_a_planted_biased_slice_stands_out_while_the_overall_bias_is_small():
    frame = _frame(1000, seed=3)
    frame["prediction"] = frame["label"].astype(float)
    frame.loc[frame["region"] == "east", "prediction"] = 0.9  # the model over-predicts one slice
    table = sliced_metrics(frame, "region")
    assert table.loc["east", "prediction_bias"] > 0.3
    assert abs(table.loc["north", "prediction_bias"]) < 1e-12
    assert table["prediction_bias"].abs().idxmax() == "east"


def test_sliced_metrics_validates_input():
    frame = _frame(10)
    with pytest.raises(ValueError, match=r"Expected `slice_key` to be one of the columns \('region', 'label', 'prediction'\), but got 'city'"):
        sliced_metrics(frame, "city")
    with pytest.raises(ValueError, match=r"Expected `label` to be one of the columns"):
        sliced_metrics(frame, "region", label="target")
    with pytest.raises(TypeError, match=r"Expected `data` to be a table: a DataFrame, a mapping of column names"):
        sliced_metrics("predictions.csv", "region")
    with pytest.raises(ValueError, match=r"Expected `data` to be a table: .* or a 2-D array or tensor, but got \[1, 2, 3\]"):
        sliced_metrics([1, 2, 3], "region")
    with pytest.raises(ValueError, match=r"Expected `data\['prediction'\]` to be a column of 3 values, like the other columns, "
                                         r"but got an array of shape \(2,\)"):
        sliced_metrics({"label": [0, 1, 1], "prediction": [0.1, 0.2]}, [0, 0, 1])
    with pytest.raises(ValueError, match=r"Expected `slice_key` to be a column of 10 values"):
        sliced_metrics(frame, [0, 1, 2])
    with pytest.raises(ValueError, match=r"Expected `slice_key` to be one value per example"):
        sliced_metrics(frame, np.zeros((10, 2)))
    with pytest.raises(TypeError, match=r"Expected `metrics\['auc'\]` to be callable"):
        sliced_metrics(frame, "region", metrics={"auc": 0.5})
    with pytest.raises(ValueError, match=r"Expected `data` to be at least one row"):
        sliced_metrics(frame.iloc[:0], "region")
