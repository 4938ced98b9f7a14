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
    with pytest.raises(TypeError, match=r"Expected `data` to be a pandas DataFrame or a mapping"):
        sliced_metrics([1, 2, 3], "region")
    with pytest.raises(ValueError, match=r"Expected every column to have 3 values, but `data\['prediction'\]` has 2"):
        sliced_metrics({"label": [0, 1, 1], "prediction": [0.1, 0.2]}, [0, 0, 1])
    with pytest.raises(ValueError, match=r"Expected every column to have 10 values, but `slice_key` has 3"):
        sliced_metrics(frame, [0, 1, 2])
    with pytest.raises(ValueError, match=r"Expected `slice_key` to be one value per example"):
        sliced_metrics(frame, np.zeros((10, 2)))
    with pytest.raises(TypeError, match=r"Expected `metrics\['auc'\]` to be callable"):
        sliced_metrics(frame, "region", metrics={"auc": 0.5})
    with pytest.raises(ValueError, match=r"Expected `data` to be at least one row"):
        sliced_metrics(frame.iloc[:0], "region")


def test_plot_slice_bias_draws_one_bar_per_row():
    from companion.plots import plot_slice_bias

    table = sliced_metrics(_frame(), "region")
    ax = plot_slice_bias(table)
    assert [p.get_width() for p in ax.patches] == pytest.approx(table["prediction_bias"].tolist())
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(k) for k in table.index]


# ---- the generator behind the slicing examples (companion.data.make_sliced_classification) ----


def test_make_sliced_classification_plants_size_noise_rule_and_offset():
    from companion.data import make_sliced_classification

    kw = dict(shares=(0.5, 0.3, 0.2), label_noise=(0.0, 0.3, 0.0), flip_rule=(False, False, True),
              offsets=(0.0, 0.0, 0.0))
    data, where = make_sliced_classification(6000, seed=0, **kw)
    again, _ = make_sliced_classification(6000, seed=0, **kw)
    assert torch.equal(data.X, again.X) and torch.equal(data.y, again.y)
    shares = {s: float((where == s).mean()) for s in "ABC"}
    assert shares == pytest.approx({"A": 0.5, "B": 0.3, "C": 0.2}, abs=0.03)
    one_hot = data.X[:, 4:]
    assert torch.equal(one_hot.argmax(1), torch.tensor(pd.factorize(where, sort=True)[0]))
    # The rule of A, read from a different seed with the same rule_seed, labels A perfectly ...
    other, other_where = make_sliced_classification(6000, seed=1, **kw)
    w = torch.linalg.lstsq(other.X[other_where == "A", :4], other.y[other_where == "A"].float() * 2 - 1).solution
    agree = lambda s: float(((data.X[where == s, :4] @ w > 0).long() == data.y[where == s]).float().mean())
    assert agree("A") > 0.95
    assert 0.6 < agree("B") < 0.8  # ... B's labels are 30% flipped ...
    assert agree("C") < 0.05       # ... and C follows the opposite rule.
    shifted, shifted_where = make_sliced_classification(6000, offsets=(0.0, 2.0, -2.0), seed=0)
    rates = [float(shifted.y[shifted_where == s].float().mean()) for s in "ABC"]
    assert rates[2] + 0.2 < rates[0] < rates[1] - 0.2


def test_make_sliced_classification_validates_input():
    from companion.data import make_sliced_classification

    with pytest.raises(ValueError, match=r"Expected `shares` to be shares summing to 1"):
        make_sliced_classification(10, shares=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match=r"Expected `label_noise` to be one value per slice \(3\)"):
        make_sliced_classification(10, label_noise=(0.1,))
    with pytest.raises(ValueError, match=r"Expected `label_noise` to be a float in \[0, 0.5\]"):
        make_sliced_classification(10, label_noise=(0.0, 0.9, 0.0))
