"""Tests for companion.models: shapes, layer structure, bad input, and GLM parity with scikit-learn.

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
from torch import nn

from companion.data import make_classification, make_counts, make_loader, make_regression
from companion.models import (
    MLP,
    LinearRegression,
    LogisticRegression,
    MultiLabelClassifier,
    PoissonRegression,
    SmallCNN,
    SoftmaxClassifier,
)
from companion.training import fit


# ---------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_mlp_layers_in_order(activation):
    model = MLP(5, (8, 4), 3, activation=activation, batch_norm=True, dropout=0.2)
    kinds = [type(m).__name__ for m in model.layers]
    act = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}[activation]
    assert kinds == ["Linear", "BatchNorm1d", act, "Dropout"] * 2 + ["Linear"]
    assert model.output_layer is model.layers[-1]
    assert model.output_layer.out_features == 3
    assert model(torch.randn(6, 5)).shape == (6, 3)
    assert model.body(torch.randn(6, 5)).shape == (6, 4)


def test_mlp_without_hidden_is_linear_and_flattens_images():
    model = MLP(12, (), 2)
    assert len(model.layers) == 1 and isinstance(model.layers[0], nn.Linear)
    x = torch.randn(3, 3, 2, 2)
    torch.testing.assert_close(model(x), model.output_layer(x.reshape(3, 12)))


def test_mlp_hooks_see_every_linear_layer():
    model = MLP(4, (8, 8), 2)
    seen = []
    handles = [
        m.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
        for m in model.layers
        if isinstance(m, nn.Linear)
    ]
    model(torch.randn(2, 4))
    for h in handles:
        h.remove()
    assert seen == [8, 8, 2]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0}, ValueError, r"Expected `in_features` to be an int >= 1, but got 0\."),
        ({"hidden": 8}, TypeError, r"Expected `hidden` to be a sequence of ints >= 1"),
        ({"hidden": (8, 0)}, ValueError, r"Expected `hidden\[1\]` to be an int >= 1, but got 0\."),
        ({"activation": "gelu"}, ValueError, r"Expected `activation` to be one of \('relu'"),
        ({"dropout": 1.0}, ValueError, r"Expected `dropout` to be a float in \[0, 1\)"),
        ({"batch_norm": 1}, TypeError, r"Expected `batch_norm` to be a bool, but got 1\."),
    ],
)
def test_mlp_bad_input(kwargs, error, match):
    args = {"in_features": 4, "hidden": (8,), "out_features": 2} | kwargs
    extra = {k: args.pop(k) for k in ("activation", "batch_norm", "dropout") if k in args}
    with pytest.raises(error, match=match):
        MLP(args["in_features"], args["hidden"], args["out_features"], **extra)


def test_mlp_trains_with_fit():
    torch.manual_seed(0)
    X, y = make_classification(128, 4, n_classes=3, seed=0)
    model = MLP(4, (16,), 3)
    history = fit(
        model,
        make_loader(X, y, batch_size=64, seed=0),
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        epochs=20,
        progress=False,
        device="cpu",
    )
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]


# ---------------------------------------------------------------------------- SmallCNN
def test_small_cnn_features_and_head():
    model = SmallCNN(3, 4, channels=(4, 8), batch_norm=True, dropout=0.1)
    x = torch.rand(2, 3, 16, 16)
    assert model.features(x).shape == (2, 8)
    assert isinstance(model.head, nn.Linear) and model.head.in_features == 8
    assert model(x).shape == (2, 4)
    assert model(torch.rand(2, 3, 8, 12)).shape == (2, 4)  # any size >= 4 a side


def test_small_cnn_bad_input():
    model = SmallCNN(1, 3, channels=(4, 8))
    with pytest.raises(ValueError, match=r"Expected `x` to be images of shape \(N, 1, H, W\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"with H, W >= 4"):
        model(torch.rand(2, 1, 2, 8))
    with pytest.raises(ValueError, match=r"Expected `x` to be a tensor with 4 dimensions"):
        model(torch.rand(2, 64))
    with pytest.raises(ValueError, match=r"Expected `channels` to be a non-empty sequence"):
        SmallCNN(1, 3, channels=())


# ---------------------------------------------------------------------------- GLM parity
def test_linear_regression_matches_sklearn():
    X, y = make_regression(300, 4, noise=0.5, seed=1)
    ours = LinearRegression(4).fit(X, y)
    ref = sk.LinearRegression().fit(X.double().numpy(), y.double().numpy())
    np.testing.assert_allclose(ours.coef.numpy(), ref.coef_, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(float(ours.intercept), ref.intercept_, atol=1e-6, rtol=1e-5)


def test_logistic_regression_matches_sklearn():
    X, y = make_classification(400, 3, n_classes=2, seed=2)
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
        (LogisticRegression, lambda: make_classification(256, 2, class_sep=0.7, seed=5)),
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
    Xc, yc = make_classification(200, 2, n_classes=2, class_sep=0.5, seed=6)
    p = LogisticRegression(2).fit(Xc, yc).predict(Xc)
    assert bool(((p > 0) & (p < 1)).all())
    assert abs(float(p.mean() - yc.float().mean())) < 1e-4


def test_poisson_rejects_negative_targets():
    X = torch.randn(4, 1)
    y = torch.tensor([1.0, 0.0, -2.0, 3.0])
    with pytest.raises(
        ValueError, match=r"Expected `y` to be non-negative counts .* smallest value is -2"
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
            lambda: PoissonRegression(1).fit(torch.randn(3, 1), torch.ones(3), tol=0.0),
            ValueError,
            r"Expected `tol` to be a float > 0",
        ),
        (lambda: LogisticRegression(0), ValueError, r"Expected `in_features` to be an int >= 1"),
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


# ---------------------------------------------------------------------------- classifiers
def test_softmax_classifier_probabilities_sum_to_one():
    model = SoftmaxClassifier(4, 5, hidden=(8,))
    assert model.output_layer.out_features == 5
    p = model.predict_proba(torch.randn(10, 4))
    torch.testing.assert_close(p.sum(1), torch.ones(10))
    assert model.predict(torch.randn(10, 4)).dtype == torch.int64
    logits, y = torch.randn(6, 5), torch.randint(0, 5, (6,))
    torch.testing.assert_close(model.loss(logits, y), nn.CrossEntropyLoss()(logits, y))
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be an int >= 2, but got 1\."):
        SoftmaxClassifier(4, 1)


def test_multilabel_classifier_independent_sigmoids():
    model = MultiLabelClassifier(4, 3, threshold=0.3)
    x = torch.randn(10, 4)
    torch.testing.assert_close(model.predict_proba(x), torch.sigmoid(model(x)).detach())
    torch.testing.assert_close(model.predict(x), (torch.sigmoid(model(x)) >= 0.3).long())
    logits, y = torch.randn(6, 3), torch.randint(0, 2, (6, 3))
    torch.testing.assert_close(model.loss(logits, y), nn.BCEWithLogitsLoss()(logits, y.float()))
    with pytest.raises(ValueError, match=r"Expected `threshold` to be a float in \(0, 1\)"):
        MultiLabelClassifier(4, 3, threshold=1.0)


# ---------------------------------------------------------------------------- plots of 4.1.x
def test_plot_activations_and_predicted_vs_observed():
    from companion.plots import plot_activations, plot_predicted_vs_observed

    z = torch.linspace(-3, 3, 7)
    axes = plot_activations(z, {"relu": (torch.relu(z), (z > 0).float())})
    assert len(axes) == 2 and len(axes[0].lines) == 2  # the curve and the zero line
    ax = plot_predicted_vs_observed([0.1, 0.5, 0.9], [0.2, 0.5, 0.8], label="a")
    ax = plot_predicted_vs_observed([0.1, 0.9], [0.1, 0.9], label="b", ax=ax)
    assert len(ax.lines) == 3  # one diagonal, two models
