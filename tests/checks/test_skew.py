"""Tests for companion.checks.skew: PSI and training-serving skew, with scipy as the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import ks_2samp

from companion.checks import ModelCheckError, population_stability_index, training_serving_skew

# ---------------------------------------------------------------- skew


def test_psi_matches_the_formula():
    e, a = np.array([10, 30, 60]), np.array([20, 30, 50])
    ep, ap = e / e.sum(), a / a.sum()
    assert population_stability_index(e, a) == pytest.approx(np.sum((ap - ep) * np.log(ap / ep)))
    with pytest.raises(ValueError, match=r"Expected `actual` to be a histogram: .*, over 2 bins like `expected`"):
        population_stability_index([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"Expected `expected` to be a histogram: non-negative counts"):
        population_stability_index([1, -2], [1, 2])
    with pytest.raises(ValueError, match=r"Expected `actual` to be a histogram: .*positive sum"):
        population_stability_index([1, 2], [0, 0])
    with pytest.raises(ValueError, match=r"Expected `eps` to be a float > 0"):
        population_stability_index([1, 2], [1, 2], eps=0)


def test_psi_floors_empty_bins_at_eps():
    expected = population_stability_index([50, 50], [100, 0], eps=1e-3)
    e, a = np.array([0.5, 0.5]), np.array([1.0, 1e-3])
    assert expected == pytest.approx(np.sum((a - e) * np.log(a / e)))


def _frames(seed: int = 0, n: int = 3000):
    g = np.random.default_rng(seed)
    def draw(size):
        return pd.DataFrame({
            "income": g.lognormal(10, 0.5, size),
            "age": g.normal(40, 12, size),
            "plan": g.choice(["basic", "plus", "pro"], size, p=[0.6, 0.3, 0.1]),
        })
    return draw(n), draw(n // 3)


def test_skew_passes_when_serving_matches_training():
    train, serving = _frames()
    report = training_serving_skew(train, serving)
    assert report.ok and report.skewed == []
    report.check()
    assert (report.table["psi"] < 0.1).all()


def test_skew_ks_needs_significance_in_small_samples():
    g = np.random.default_rng(3)
    report = training_serving_skew({"a": g.normal(size=400)}, {"a": g.normal(size=30)}, psi_threshold=10.0)
    assert report.table.loc["a", "distance"] > 0.1 and report.table.loc["a", "p_value"] > 0.01
    assert report.ok  # a large KS gap from 30 rows is not evidence of skew


def test_skew_ks_distance_agrees_with_scipy_and_an_ecdf():
    train, serving = _frames()
    report = training_serving_skew(train, serving)
    ref = ks_2samp(train["age"], serving["age"])
    assert report.table.loc["age", "distance"] == pytest.approx(ref.statistic)
    grid = np.sort(np.concatenate([train["age"], serving["age"]]))
    ecdf = lambda v: np.searchsorted(np.sort(v), grid, side="right") / len(v)  # noqa: E731
    assert ref.statistic == pytest.approx(np.abs(ecdf(train["age"]) - ecdf(serving["age"])).max())


def test_skew_catches_a_planted_serving_transform_bug():
    train, serving = _frames()
    serving["income"] = serving["income"] / 1000  # planted: serving sends thousands
    report = training_serving_skew(train, serving)
    assert report.skewed == ["income"]
    assert report.table.loc["income", "psi"] > 0.2
    with pytest.raises(ModelCheckError, match=r"1 feature\(s\) differ.*`income`: PSI .* > 0.2; KS distance"):
        report.check()


def test_skew_schema_checks():
    train, serving = _frames()
    serving = serving.drop(columns="age").assign(
        plan=serving["plan"].str.upper(), promo=1.0)
    table = training_serving_skew(train, serving).table
    assert table.loc["age", "schema"] == "presence: missing in serving"
    assert table.loc["promo", "schema"] == "presence: missing in training"
    assert table.loc["plan", "schema"].startswith("domain: 100.0% of serving values never seen")
    train2, serving2 = _frames()
    serving2["age"] = serving2["age"].astype(str)
    assert training_serving_skew(train2, serving2).table.loc["age", "schema"].startswith("type:")
    serving3 = _frames()[1]
    serving3.loc[: len(serving3) // 5, "age"] = np.nan
    assert "missing values" in training_serving_skew(train2, serving3).table.loc["age", "schema"]


def test_skew_categorical_shift_and_tensor_input():
    train, serving = _frames()
    serving["plan"] = np.where(np.arange(len(serving)) % 2 == 0, "pro", serving["plan"])
    report = training_serving_skew(train, serving)
    assert report.skewed == ["plan"] and "L-inf distance" in report.table.loc["plan", "reason"]
    X = torch.randn(500, 2)
    report = training_serving_skew(X, X * torch.tensor([1.0, 3.0]), feature_names=["a", "b"])
    assert report.skewed == ["b"]
    with pytest.raises(ValueError, match="Expected `feature_names` to be 2 names"):
        training_serving_skew(X, X, feature_names=["a"])
    with pytest.raises(ValueError, match=r"Expected `psi_threshold` to be a float > 0"):
        training_serving_skew(X, X, psi_threshold=0)
    with pytest.raises(ValueError, match=r"Expected `train` to be a table: a DataFrame, a mapping"):
        training_serving_skew(torch.zeros(5), X)
    with pytest.raises(TypeError, match=r"Expected `serving` to be a table"):
        training_serving_skew(X, "features.csv")
