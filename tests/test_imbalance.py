"""companion.imbalance: downsampling with upweighting, the prior correction, weighted training.

Oracles: imbalanced-learn's RandomUnderSampler for the kept counts, Bayes' rule for the
correction, scikit-learn's weighted logistic regression and log loss for the weighted loss.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.metrics import log_loss
from torch import nn

from companion.imbalance import (
    WeightedLoss,
    correct_downsampled_probability,
    downsample_majority,
    weighted_loader,
)
from companion.models import LogisticRegression
from companion.training import fit

imblearn = pytest.importorskip("imblearn.under_sampling")


def _rare(n: int, *, intercept: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of a logistic model with 3 features; the intercept sets the positive rate."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    logit = X @ torch.tensor([1.5, -1.0, 0.5], dtype=torch.float64) + intercept
    return X, torch.bernoulli(torch.sigmoid(logit), generator=g).long()


def _fit_exact(X: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> LogisticRegression:
    """Minimize WeightedLoss with full-batch L-BFGS in float64 (to the optimum, unlike a few epochs)."""
    model = LogisticRegression(X.shape[1]).double()
    loss = WeightedLoss(nn.BCEWithLogitsLoss(reduction="none"))
    target = torch.stack([y.double(), weights.double()], dim=1)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, tolerance_grad=1e-12,
                                  tolerance_change=0, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = loss(model(X), target)
        value.backward()
        return value

    optimizer.step(closure)
    return model


# ------------------------------------------------------------------------- downsample_majority


@pytest.mark.parametrize(("n_neg", "n_pos", "factor"), [(1000, 10, 10), (997, 31, 4), (47, 5, 2), (50, 7, 2.5), (40, 3, 1)])
def test_kept_counts_match_imbalanced_learn(n_neg, n_pos, factor):
    X = torch.randn(n_neg + n_pos, 2)
    y = torch.cat([torch.zeros(n_neg), torch.ones(n_pos)]).long()[torch.randperm(n_neg + n_pos)]
    _, y_kept, _ = downsample_majority(X, y, factor=factor, seed=0)
    kept = round(n_neg / factor)
    _, y_ref = imblearn.RandomUnderSampler(sampling_strategy={0: kept}, random_state=0).fit_resample(X.numpy(), y.numpy())
    assert torch.bincount(y_kept).tolist() == np.bincount(y_ref).tolist() == [kept, n_pos]
    # The ratio form of the same request: imbalanced-learn truncates n_pos / ratio, so it may keep one fewer.
    _, y_ratio = imblearn.RandomUnderSampler(sampling_strategy=n_pos / kept, random_state=0).fit_resample(
        X.numpy(), y.numpy())
    assert abs(np.bincount(y_ratio)[0] - kept) <= 1


def test_every_minority_row_is_kept_in_order_with_its_features_and_weight_one():
    X = torch.arange(60.0).reshape(30, 2)
    y = torch.tensor([0] * 24 + [1] * 4 + [2] * 2)[torch.randperm(30, generator=torch.Generator().manual_seed(1))]
    X_kept, y_kept, w = downsample_majority(X, y, factor=6, seed=3)
    rows = (X_kept[:, 0] / 2).long()  # row i holds (2i, 2i + 1)
    assert torch.equal(y[rows], y_kept)  # features and labels stay paired
    assert torch.all(rows[1:] > rows[:-1])  # original order, no row twice
    minority = torch.nonzero(y != 0).flatten()
    assert torch.equal(rows[y_kept != 0], minority)  # every row of the two smaller classes
    assert (y_kept == 0).sum() == 4
    assert torch.equal(w, torch.where(y_kept == 0, 6.0, 1.0))
    assert w.dtype == torch.float32


def test_the_weights_restore_the_class_balance():
    X, y = _rare(20_000, intercept=-4.0)
    _, y_kept, w = downsample_majority(X, y, factor=10, seed=0)
    assert float(w[y_kept == 0].sum()) == pytest.approx(float((y == 0).sum()), abs=10)
    assert float(w[y_kept == 1].sum()) == float((y == 1).sum())


def test_the_draw_is_seeded():
    X, y = _rare(2000, intercept=-3.0)
    first, again, other = (downsample_majority(X, y, factor=5, seed=s)[0] for s in (0, 0, 1))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_factor_one_keeps_everything_and_arrays_are_accepted():
    X, y = np.arange(10.0).reshape(5, 2), np.array([0, 0, 0, 1, 1])
    X_kept, y_kept, w = downsample_majority(X, y, factor=1, seed=0)
    assert torch.equal(X_kept, torch.as_tensor(X)) and y_kept.tolist() == y.tolist() and w.tolist() == [1.0] * 5


def test_at_least_one_majority_row_is_kept():
    _, y_kept, _ = downsample_majority(torch.zeros(6, 1), torch.tensor([0, 0, 0, 0, 1, 1]), factor=100, seed=0)
    assert (y_kept == 0).sum() == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(factor=0.5), ValueError, "`factor` to be a float >= 1"),
        (dict(factor="10"), TypeError, "`factor` to be a float >= 1"),
        (dict(factor=float("inf")), ValueError, "`factor`"),
        (dict(factor=2, seed=-1), ValueError, "`seed` to be an int >= 0"),
        (dict(factor=2, y=torch.tensor([0.0, 0.5, 1.0, 1.0])), ValueError, "`y` to be integer class labels"),
        (dict(factor=2, y=torch.tensor([True, False, True, False])), TypeError, "`y` to be integer class labels"),
        (dict(factor=2, y=torch.zeros(4, 1).long()), ValueError, "`y` to be a tensor with 1 dimensions"),
        (dict(factor=2, y=torch.zeros(4).long()), ValueError, "at least two classes.*found only \\[0\\]"),
        (dict(factor=2, y=torch.tensor([0, 1, 0])), ValueError, "`X` and `y` to have the same length"),
        (dict(factor=2, X=torch.tensor(1.0)), ValueError, "`X` to be a tensor with at least 1 dimension"),
        (dict(factor=2, X="rows"), TypeError, "`X` to be a tensor, array or sequence"),
    ],
)
def test_downsample_majority_rejects_bad_input(kwargs, error, match):
    args = dict(X=torch.zeros(4, 2), y=torch.tensor([0, 0, 0, 1]), seed=0) | kwargs
    with pytest.raises(error, match=match):
        downsample_majority(args.pop("X"), args.pop("y"), **args)


# ------------------------------------------------------------- calibration: the closed forms


def test_upweighted_model_predicts_the_base_rate_and_the_plain_downsampled_one_its_odds_shifted():
    X, y = _rare(200_000, intercept=-4.5, seed=0)
    base_rate = float(y.double().mean())
    factor = 10
    X_d, y_d, w_d = downsample_majority(X, y, factor=factor, seed=0)
    upweighted = _fit_exact(X_d, y_d, w_d)
    plain = _fit_exact(X_d, y_d, torch.ones(len(y_d)))
    full = _fit_exact(X, y, torch.ones(len(y)))
    with torch.no_grad():
        p_up, p_plain, p_full = (torch.sigmoid(m(X)) for m in (upweighted, plain, full))
    # At the optimum, the weighted mean prediction on the training rows equals their weighted positive rate
    # (the intercept's gradient), which the weights make the original base rate.
    with torch.no_grad():
        p_up_train = torch.sigmoid(upweighted(X_d))
    weighted_rate = float((w_d.double() * y_d).sum() / w_d.double().sum())
    assert float((w_d.double() * p_up_train).sum() / w_d.double().sum()) == pytest.approx(weighted_rate, rel=1e-6)
    assert weighted_rate == pytest.approx(base_rate, rel=1e-3)
    # On all rows, the upweighted model's mean prediction is the base rate (sampling noise only) ...
    assert float(p_up.mean()) == pytest.approx(base_rate, rel=0.05)
    # ... while without weights the odds are `factor` times too high: intercept + log(factor), same slopes,
    assert float(plain.intercept - full.intercept) == pytest.approx(math.log(factor), abs=0.1)
    torch.testing.assert_close(plain.coef, full.coef, atol=0.1, rtol=0)
    assert float(p_plain.mean()) > 3 * base_rate
    # and the closed-form correction brings its predictions back to the full-data model's.
    corrected = correct_downsampled_probability(p_plain, factor=factor)
    assert float(corrected.mean()) == pytest.approx(base_rate, rel=0.05)
    assert float((corrected - p_full).abs().max()) < 0.02


def test_weighted_loss_matches_scikit_learns_weighted_logistic_regression():
    X, y = _rare(5000, intercept=-2.0, seed=1)
    X_d, y_d, w_d = downsample_majority(X, y, factor=4, seed=0)
    ours = _fit_exact(X_d, y_d, w_d)
    ref = SkLogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(X_d.numpy(), y_d.numpy(),
                                                                            sample_weight=w_d.numpy())
    np.testing.assert_allclose(ours.coef.numpy(), ref.coef_[0], atol=1e-4)
    assert float(ours.intercept) == pytest.approx(ref.intercept_[0], abs=1e-4)


def test_correction_is_bayes_rule():
    # Keeping every positive and a negative with probability 1/f turns P(y=1 | x) = p into, by Bayes' rule,
    # P(y=1 | x, kept) = p * 1 / (p * 1 + (1 - p) / f); the correction must invert that exactly.
    p = torch.linspace(0, 1, 101, dtype=torch.float64)
    for f in (1.0, 2.0, 10.0, 1000.0):
        p_kept = p / (p + (1 - p) / f)
        torch.testing.assert_close(correct_downsampled_probability(p_kept, factor=f), p, atol=1e-12, rtol=0)


def test_correction_matches_counts_of_a_simulated_downsampling():
    # Four cells of x with known P(y=1 | x); downsample the negatives by 5 and count what is left.
    g = torch.Generator().manual_seed(0)
    truth = torch.tensor([0.01, 0.05, 0.2, 0.6], dtype=torch.float64)
    cell = torch.randint(0, 4, (400_000,), generator=g)
    y = torch.bernoulli(truth[cell], generator=g).long()
    kept, _, _ = downsample_majority(torch.stack([cell, y], 1), y, factor=5, seed=0)
    cell_d, y_d = kept.T
    observed_kept = torch.stack([y_d[cell_d == c].double().mean() for c in range(4)])
    torch.testing.assert_close(correct_downsampled_probability(observed_kept, factor=5), truth, atol=0.01, rtol=0)


def test_correction_keeps_shape_and_float_dtype():
    p32 = torch.tensor([[0.1, 0.9]], dtype=torch.float32)
    out = correct_downsampled_probability(p32, factor=3)
    assert out.dtype == torch.float32 and out.shape == (1, 2)
    assert correct_downsampled_probability([0, 1], factor=3).tolist() == [0.0, 1.0]
    assert correct_downsampled_probability(np.array([0.5]), factor=3).dtype == torch.float64
    assert correct_downsampled_probability(torch.tensor([]), factor=3).numel() == 0


@pytest.mark.parametrize(
    ("p", "factor", "error", "match"),
    [
        ([0.5, 1.2], 2, ValueError, "`p` to be probabilities in \\[0, 1\\]"),
        ([-0.1], 2, ValueError, "`p` to be probabilities"),
        ([float("nan")], 2, ValueError, "`p` to be a tensor of finite values"),
        ("0.5", 2, TypeError, "`p` to be a tensor, array or sequence"),
        ([0.5], 0.9, ValueError, "`factor` to be a float >= 1"),
        ([0.5], None, TypeError, "`factor`"),
    ],
)
def test_correction_rejects_bad_input(p, factor, error, match):
    with pytest.raises(error, match=match):
        correct_downsampled_probability(p, factor=factor)


# ------------------------------------------------------------------ weighted_loader, WeightedLoss


def test_weighted_loader_yields_every_row_once_per_pass_reshuffled():
    X = torch.arange(10.0).unsqueeze(1)
    y, w = torch.arange(10) % 2, torch.arange(10.0) / 10
    loader = weighted_loader(X, y, w, batch_size=4, seed=0)
    assert len(loader) == 3
    orders = []
    for _ in range(2):
        batches = list(loader)
        assert [len(xb) for xb, _ in batches] == [4, 4, 2]
        xs = torch.cat([xb for xb, _ in batches])[:, 0]
        targets = torch.cat([tb for _, tb in batches])
        assert sorted(xs.tolist()) == X[:, 0].tolist()
        rows = xs.long()
        assert torch.equal(targets[:, 0], y[rows].float()) and torch.equal(targets[:, 1], w[rows])
        orders.append(xs.tolist())
    assert orders[0] != orders[1]  # a new order each pass
    assert [xb[:, 0].tolist() for xb, _ in weighted_loader(X, y, w, batch_size=4, shuffle=False)][0] == [0, 1, 2, 3]
    again = [xb[:, 0].tolist() for xb, _ in weighted_loader(X, y, w, batch_size=4, seed=0)]
    assert sum(again, []) == orders[0]  # seeded


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(weights=torch.tensor([1.0, -1.0, 1.0])), ValueError, "`weights` to be weights >= 0"),
        (dict(weights=torch.tensor([1.0, float("nan"), 1.0])), ValueError, "`weights` to be a tensor of finite"),
        (dict(weights=torch.ones(2)), ValueError, "`y` and `weights` to have the same length"),
        (dict(y=torch.zeros(2).long()), ValueError, "`X` and `y` to have the same length"),
        (dict(y=torch.zeros(3, 1)), ValueError, "`y` to be a tensor with 1 dimensions"),
        (dict(X=[[0.0]] * 3), TypeError, "`X` to be a torch.Tensor"),
        (dict(batch_size=0), ValueError, "`batch_size` to be an int >= 1"),
        (dict(shuffle=1), TypeError, "`shuffle` to be a bool"),
        (dict(seed=-1), ValueError, "`seed` to be an int >= 0"),
    ],
)
def test_weighted_loader_rejects_bad_input(kwargs, error, match):
    args = dict(X=torch.zeros(3, 2), y=torch.tensor([0, 1, 0]), weights=torch.ones(3)) | kwargs
    with pytest.raises(error, match=match):
        weighted_loader(args.pop("X"), args.pop("y"), args.pop("weights"), **args)


def test_weighted_loss_against_scikit_learn_log_loss_and_duplication():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, generator=g, dtype=torch.float64)
    y = (torch.rand(50, generator=g) < 0.3).double()
    w = torch.randint(1, 5, (50,), generator=g).double()
    loss = WeightedLoss(nn.BCEWithLogitsLoss(reduction="none"))
    value = float(loss(logits, torch.stack([y, w], 1)))
    p = torch.sigmoid(logits).numpy()
    # scikit-learn averages over the weights; ours over the examples (a weight of k is k copies of the row)
    assert value == pytest.approx(log_loss(y.numpy(), p, sample_weight=w.numpy()) * float(w.sum()) / 50, rel=1e-9)
    copies = w.long()
    duplicated = nn.BCEWithLogitsLoss(reduction="sum")(logits.repeat_interleave(copies), y.repeat_interleave(copies))
    assert value * 50 == pytest.approx(float(duplicated), rel=1e-9)
    # 1-D targets: plain labels, weight 1
    assert float(loss(logits, y)) == pytest.approx(float(nn.BCEWithLogitsLoss()(logits, y)), rel=1e-12)


def test_weighted_loss_trains_with_fit():
    X, y = _rare(3000, intercept=-1.0)
    X = X.float()
    X_d, y_d, w_d = downsample_majority(X, y, factor=3, seed=0)
    model = LogisticRegression(3)
    history = fit(model, weighted_loader(X_d, y_d, w_d, batch_size=256), loss_fn=WeightedLoss(
        nn.BCEWithLogitsLoss(reduction="none")), optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
        epochs=30, progress=False, device="cpu", val_loader=[(X, y.float())])
    assert history.train_loss[-1] < 0.8 * history.train_loss[0]
    assert float(model.predict(X).mean()) == pytest.approx(float(y.float().mean()), rel=0.15)


@pytest.mark.parametrize(
    ("loss_fn", "target", "error", "match"),
    [
        (nn.BCEWithLogitsLoss(), torch.zeros(4, 2), ValueError, "one value per example, shape \\(4,\\)"),
        (nn.BCEWithLogitsLoss(reduction="none"), torch.zeros(4, 3), ValueError, "shape \\(N, 2\\)"),
        (nn.BCEWithLogitsLoss(reduction="none"), torch.zeros(4, 2, 1), ValueError, "with 1 or 2 dimensions"),
        (nn.BCEWithLogitsLoss(reduction="none"), [0.0] * 4, TypeError, "`target` to be a torch.Tensor"),
        (lambda out, y: float(out.sum()), torch.zeros(4, 2), ValueError, "`loss_fn` to be a loss returning"),
    ],
)
def test_weighted_loss_rejects_bad_input(loss_fn, target, error, match):
    with pytest.raises(error, match=match):
        WeightedLoss(loss_fn)(torch.zeros(4), target)


def test_weighted_loss_needs_a_callable():
    with pytest.raises(TypeError, match="`loss_fn` to be callable"):
        WeightedLoss("bce")
    assert "BCEWithLogitsLoss" in repr(WeightedLoss(nn.BCEWithLogitsLoss(reduction="none")))
