"""Tests for companion.baselines, with scikit-learn's estimators as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import log_loss, mean_squared_error

from companion.baselines import BestSingleFeature, MeanRegressor, MostCommonLabel


def _informative(n: int = 300, *, seed: int = 0, classes: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four features of which column 2 carries most of the signal."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g) * torch.tensor([1.0, 3.0, 2.0, 0.5]) + torch.tensor([0, 1, -2, 4])
    signal = 1.5 * X[:, 2] + 0.3 * X[:, 0] + 0.5 * torch.randn(n, generator=g)
    if classes == 0:
        return X, signal
    cuts = torch.quantile(signal, torch.linspace(0, 1, classes + 1)[1:-1])
    return X, torch.bucketize(signal, cuts)


# ---- MostCommonLabel -------------------------------------------------------------------------


def test_most_common_label_matches_dummy_classifier():
    y = torch.tensor([2, 0, 2, 1, 2, 0, 5, 5])
    X = torch.randn(len(y), 3)
    ours = MostCommonLabel().fit(X, y)
    ref = DummyClassifier(strategy="prior").fit(X.numpy(), y.numpy())
    X_new = torch.randn(4, 3)
    assert ours.predict(X_new).tolist() == ref.predict(X_new.numpy()).tolist()
    np.testing.assert_allclose(ours.predict_proba(X_new).numpy(), ref.predict_proba(X_new.numpy()), atol=1e-7)
    assert ours.classes_.tolist() == ref.classes_.tolist()
    assert ours.predict(X_new).dtype == y.dtype


def test_most_common_label_ties_go_to_smallest_label_like_sklearn():
    y = torch.tensor([3, 1, 3, 1, 2])
    X = torch.zeros(5, 1)
    ref = DummyClassifier(strategy="most_frequent").fit(X.numpy(), y.numpy())
    assert int(MostCommonLabel().fit(X, y).label_) == int(ref.predict(X.numpy()[:1])[0]) == 1


def test_most_common_label_accepts_arrays_and_bool_labels():
    baseline = MostCommonLabel().fit(np.zeros((3, 2)), np.array([True, False, True]))
    assert baseline.predict(np.zeros((2, 2))).tolist() == [1, 1]


def test_most_common_label_rejects_bad_input():
    with pytest.raises(ValueError, match=r"Expected `y` to be integer class labels, but got"):
        MostCommonLabel().fit(torch.zeros(3, 1), torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match=r"Expected `X` and `y` to have the same length, but got 4 and 3"):
        MostCommonLabel().fit(torch.zeros(4, 1), torch.tensor([0, 1, 1]))
    with pytest.raises(NotFittedError, match=r"Expected `MostCommonLabel.label_` to be set by `fit\(X, y\)`"):
        MostCommonLabel().predict(torch.zeros(2, 1))
    with pytest.raises(ValueError, match="before predicting"):  # NotFittedError is a ValueError
        MostCommonLabel().predict_proba(torch.zeros(2, 1))


# ---- MeanRegressor ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(50,), (50, 3)])
def test_mean_regressor_matches_dummy_regressor(shape):
    g = torch.Generator().manual_seed(1)
    y = torch.randn(*shape, generator=g) * 4 + 2
    X = torch.randn(50, 2, generator=g)
    ours = MeanRegressor().fit(X, y).predict(torch.zeros(7, 2))
    ref = DummyRegressor(strategy="mean").fit(X.numpy(), y.numpy()).predict(np.zeros((7, 2)))
    assert tuple(ours.shape) == (7, *shape[1:])
    np.testing.assert_allclose(ours.numpy(), np.reshape(ref, ours.shape), rtol=1e-6)


def test_mean_regressor_rejects_non_finite_targets():
    with pytest.raises(ValueError, match=r"Expected `y` to be a tensor of finite values"):
        MeanRegressor().fit(torch.zeros(2, 1), torch.tensor([1.0, float("nan")]))
    with pytest.raises(NotFittedError, match=r"Expected `MeanRegressor.mean_` to be set by `fit\(X, y\)`"):
        MeanRegressor().predict(torch.zeros(1, 1))


# ---- BestSingleFeature -----------------------------------------------------------------------


def test_best_single_feature_regression_matches_per_feature_linear_regression():
    X, y = _informative(seed=3)
    ours = BestSingleFeature(task="regression").fit(X, y)
    mses = []
    for j in range(X.shape[1]):
        column = X[:, [j]].double().numpy()
        ref = LinearRegression().fit(column, y.double().numpy())
        mses.append(mean_squared_error(y.double().numpy(), ref.predict(column)))
    best = int(np.argmin(mses))
    assert ours.feature_ == best == 2
    np.testing.assert_allclose(ours.scores_.numpy(), mses, rtol=1e-5)
    ref = LinearRegression().fit(X[:, [best]].double().numpy(), y.double().numpy())
    np.testing.assert_allclose(float(ours.coef_), ref.coef_[0], rtol=1e-5)
    np.testing.assert_allclose(float(ours.intercept_), ref.intercept_, rtol=1e-5, atol=1e-6)
    X_new = torch.randn(5, 4)
    np.testing.assert_allclose(
        ours.predict(X_new).numpy(), ref.predict(X_new[:, [best]].double().numpy()), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("classes", [2, 3])
def test_best_single_feature_classification_matches_per_feature_logistic_regression(classes):
    X, y = _informative(seed=5, classes=classes)
    ours = BestSingleFeature(task="classification").fit(X, y)
    losses, models = [], []
    for j in range(X.shape[1]):
        column = X[:, [j]].double().numpy()
        ref = LogisticRegression().fit(column, y.numpy())
        losses.append(log_loss(y.numpy(), ref.predict_proba(column)))
        models.append(ref)
    best = int(np.argmin(losses))
    assert ours.feature_ == best == 2
    np.testing.assert_allclose(ours.scores_.numpy(), losses, rtol=1e-6)
    X_new = torch.randn(20, 4) * 3
    ref_proba = models[best].predict_proba(X_new[:, [best]].double().numpy())
    np.testing.assert_allclose(ours.predict_proba(X_new).numpy(), ref_proba, atol=1e-6)
    assert ours.predict(X_new).tolist() == models[best].predict(X_new[:, [best]].double().numpy()).tolist()
    np.testing.assert_allclose(ours.coef_.numpy().ravel(), models[best].coef_.ravel(), rtol=1e-6)
    np.testing.assert_allclose(ours.intercept_.numpy().ravel(), models[best].intercept_.ravel(), rtol=1e-6)
    assert tuple(ours.coef_.shape) == (() if classes == 2 else (classes,))


def test_best_single_feature_honours_C_and_max_iter_like_sklearn():
    X, y = make_classification(200, 3, n_informative=2, n_redundant=0, class_sep=1.0, random_state=2)
    ours = BestSingleFeature(task="classification", C=0.01, max_iter=50).fit(X, y)
    column = X[:, [ours.feature_]]
    ref = LogisticRegression(C=0.01, max_iter=50).fit(column, y)
    np.testing.assert_allclose(float(ours.coef_), ref.coef_[0, 0], rtol=1e-6)
    assert ours.estimator_.get_params()["C"] == 0.01 and ours.estimator_.get_params()["max_iter"] == 50


def test_best_single_feature_keeps_labels_and_handles_constant_columns():
    X = torch.cat([torch.ones(40, 1), torch.linspace(-2, 2, 40)[:, None]], dim=1)
    y = torch.where(X[:, 1] > 0, 7, 3)
    baseline = BestSingleFeature(task="classification").fit(X, y)
    assert baseline.feature_ == 1
    assert set(baseline.predict(X).tolist()) == {3, 7}
    assert float(baseline.scores_[0]) == pytest.approx(np.log(2), abs=1e-6)  # constant: chance


def test_best_single_feature_validates_input():
    with pytest.raises(ValueError, match=r"Expected `task` to be one of \('regression', 'classification'\)"):
        BestSingleFeature(task="ranking")
    with pytest.raises(ValueError, match=r"Expected `C` to be a float > 0, but got 0.0"):
        BestSingleFeature(C=0.0)
    with pytest.raises(ValueError, match=r"Expected `X` to be a tensor with 2 dimensions"):
        BestSingleFeature().fit(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ValueError, match=r"Expected `y` to be labels of at least two classes"):
        BestSingleFeature(task="classification").fit(torch.randn(5, 2), torch.zeros(5, dtype=torch.long))
    X, y = map(torch.from_numpy, make_regression(20, 3, random_state=0))
    baseline = BestSingleFeature().fit(X, y)
    with pytest.raises(ValueError, match=r"Expected `X` to be a tensor with 3 columns"):
        baseline.predict(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"Expected `task` to be 'classification' to predict probabilities, but got 'regression'"):
        baseline.predict_proba(X)
    with pytest.raises(NotFittedError, match="`BestSingleFeature.estimator_` to be set by `fit"):
        BestSingleFeature().predict(X)


def test_a_planted_label_leak_is_the_chosen_feature():
    """A column equal to the label is the 'most predictive feature': the baseline exposes leaks."""
    X, y = _informative(seed=7, classes=2)
    leaked = torch.cat([X, y[:, None].float()], dim=1)
    baseline = BestSingleFeature(task="classification").fit(leaked, y)
    assert baseline.feature_ == 4
    assert float((baseline.predict(leaked) == y).float().mean()) == 1.0
