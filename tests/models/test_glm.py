"""Tests for companion.models.glm: parity with scikit-learn, the fit loop, predictions and bad input.

Parity tolerance: the GLMs' ``fit`` coefficients and intercepts agree with
scikit-learn's ``LinearRegression``, ``LogisticRegression(C=np.inf)`` (the
non-deprecated spelling of ``penalty=None``) and ``PoissonRegressor(alpha=0)``,
each fitted to convergence, within an absolute 1e-4 (linear: 1e-6). Our
parameters are stored as float32, so ~1e-6 relative is the floor.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import linear_model as sk

from companion.data import make_counts, make_gaussian_blobs, make_loader, make_regression
from companion.models import LinearRegression, LogisticRegression, PoissonRegression
from companion.training import fit


def test_linear_regression_matches_sklearn():
    X, y = make_regression(300, 4, noise=0.5, seed=1)
    ours = LinearRegression(4).fit(X, y)
    ref = sk.LinearRegression().fit(X.double().numpy(), y.double().numpy())
    np.testing.assert_allclose(ours.coef.numpy(), ref.coef_, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(float(ours.intercept), ref.intercept_, atol=1e-6, rtol=1e-5)


def test_logistic_regression_matches_sklearn():
    X, y = make_gaussian_blobs(400, 3, n_classes=2, seed=2)
    ours = LogisticRegression(3).fit(X, y)
    ref = sk.LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(
        X.double().numpy(), y.numpy()
    )
    np.testing.assert_allclose(ours.coef.numpy(), ref.coef_[0], atol=1e-4)
    np.testing.assert_allclose(float(ours.intercept), ref.intercept_[0], atol=1e-4)


def test_poisson_regression_matches_sklearn():
    X, y = make_counts(500, (0.5, -0.3, 0.2), intercept=1.0, seed=3)
    ours = PoissonRegression(3).fit(X, y)
    ref = sk.PoissonRegressor(alpha=0, tol=1e-10, max_iter=10_000).fit(
        X.double().numpy(), y.numpy()
    )
    np.testing.assert_allclose(ours.coef.numpy(), ref.coef_, atol=1e-4)
    np.testing.assert_allclose(float(ours.intercept), ref.intercept_, atol=1e-4)


def test_planted_fault_wrong_link_is_caught():
    """A Poisson fit on a Gaussian likelihood (identity link) would not match sklearn."""
    X, y = make_counts(500, (0.5, -0.3), seed=4)
    wrong = LinearRegression(2).fit(X, y)
    ref = sk.PoissonRegressor(alpha=0, tol=1e-10, max_iter=10_000).fit(X.numpy(), y.numpy())
    assert np.abs(wrong.coef.numpy() - ref.coef_).max() > 1e-2


@pytest.mark.parametrize(
    ("cls", "maker"),
    [
        (LinearRegression, lambda: make_regression(256, 2, seed=5)),
        (LogisticRegression, lambda: make_gaussian_blobs(256, 2, class_sep=0.7, seed=5)),
        (PoissonRegression, lambda: make_counts(256, (0.4, -0.2), seed=5)),
    ],
)
def test_glm_trained_by_fit_loop_approaches_exact_fit(cls, maker):
    X, y = maker()
    exact = cls(2).fit(X, y)
    torch.manual_seed(0)
    model = cls(2)
    fit(
        model,
        make_loader(X, y.float(), batch_size=256, shuffle=False),
        loss_fn=model.loss,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
        epochs=300,
        progress=False,
        device="cpu",
    )
    torch.testing.assert_close(model.coef, exact.coef, atol=1e-2, rtol=0)
    torch.testing.assert_close(model.intercept, exact.intercept, atol=1e-2, rtol=0)


def test_glm_predictions_are_expected_values():
    X, y = make_counts(200, (0.5,), intercept=0.2, seed=6)
    model = PoissonRegression(1).fit(X, y)
    eta = model.intercept + X[:, 0] * model.coef[0]
    torch.testing.assert_close(model.predict(X), torch.exp(eta))
    # the MLE of a Poisson GLM with intercept matches the mean count exactly (score equation)
    assert abs(float(model.predict(X).mean() - y.mean())) < 1e-4
    Xc, yc = make_gaussian_blobs(200, 2, n_classes=2, class_sep=0.5, seed=6)
    p = LogisticRegression(2).fit(Xc, yc).predict(Xc)
    assert bool(((p > 0) & (p < 1)).all())
    assert abs(float(p.mean() - yc.float().mean())) < 1e-4


def test_glm_predict_takes_float64_and_gives_no_gradient():
    model = LinearRegression(2).fit(torch.randn(20, 2), torch.randn(20))
    out = model.predict(torch.randn(5, 2, dtype=torch.float64))
    assert out.shape == (5,) and out.dtype == torch.float32 and not out.requires_grad


def test_poisson_rejects_negative_targets():
    X = torch.randn(4, 1)
    y = torch.tensor([1.0, 0.0, -2.0, 3.0])
    with pytest.raises(
        ValueError, match=r"Expected `y` to be non-negative counts .*: found smallest value -2\."
    ):
        PoissonRegression(1).fit(X, y)
    model = PoissonRegression(1)
    with pytest.raises(ValueError, match=r"non-negative counts"):
        model.loss(model(X), y)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: LogisticRegression(1).fit(torch.randn(3, 1), torch.tensor([0.0, 2.0, 1.0])),
            ValueError,
            r"Expected `y` to be binary labels in \{0, 1\}",
        ),
        (
            lambda: LinearRegression(2).fit(torch.randn(3, 1), torch.randn(3)),
            ValueError,
            r"Expected `X` to be a tensor with 2 columns",
        ),
        (
            lambda: LinearRegression(1).fit(torch.randn(3, 1), torch.randn(4)),
            ValueError,
            r"Expected `X` and `y` to have the same length, but got 3 and 4\.",
        ),
        (
            lambda: LinearRegression(1).fit(torch.randn(3), torch.randn(3)),
            ValueError,
            r"Expected `X` to be a tensor with 2 dimensions",
        ),
        (
            lambda: LinearRegression(1).fit([[1.0], [float("nan")]], [1.0, 2.0]),
            ValueError,
            r"Expected `X` to be a tensor of finite values",
        ),
        (
            lambda: LinearRegression(1).fit("abc", [1.0]),
            TypeError,
            r"Expected `X` to be a tensor, array or sequence of numbers",
        ),
        (
            lambda: LinearRegression(1).fit(torch.randn(2, 1), torch.tensor([1.0, float("inf")])),
            ValueError,
            r"Expected `y` to be a tensor of finite values",
        ),
        (
            lambda: PoissonRegression(1).fit(torch.randn(3, 1), torch.ones(3), tol=0.0),
            ValueError,
            r"Expected `tol` to be a float > 0",
        ),
        (
            lambda: PoissonRegression(1).fit(torch.randn(3, 1), torch.ones(3), max_iter=0),
            ValueError,
            r"Expected `max_iter` to be an int >= 1",
        ),
        (lambda: LogisticRegression(0), ValueError, r"Expected `in_features` to be an int >= 1"),
        (
            lambda: LinearRegression(2).predict(torch.randn(3, 3)),
            ValueError,
            r"Expected `X` to be a tensor with 2 columns",
        ),
        (
            lambda: LinearRegression(2)(torch.randn(3, 3)),
            ValueError,
            r"Expected `x` to be a tensor with 2 columns",
        ),
        (
            lambda: LinearRegression(2)(torch.ones(3, 2, dtype=torch.long)),
            TypeError,
            r"Expected `x` to be a floating-point tensor",
        ),
        (
            lambda: LinearRegression(1).loss(torch.randn(3, 1), torch.randn(3)),
            ValueError,
            r"Expected `output` to be a tensor with 1 dimensions",
        ),
        (
            lambda: LinearRegression(1).loss(torch.randn(3), torch.randn(2)),
            ValueError,
            r"Expected `output` and `y` to have the same length, but got 3 and 2\.",
        ),
    ],
)
def test_glm_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_glm_fit_accepts_numpy():
    X = np.random.default_rng(0).normal(size=(50, 2))
    y = X @ np.array([1.0, -2.0]) + 0.3
    model = LinearRegression(2).fit(X, y)
    np.testing.assert_allclose(model.coef.numpy(), [1.0, -2.0], atol=1e-5)
