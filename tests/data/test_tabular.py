import numpy as np
import pytest
import torch
from sklearn.linear_model import PoissonRegressor

from companion.data import (
    make_categorical,
    make_counts,
    make_gaussian_blobs,
    make_regression,
    make_related_tasks,
)


def test_generators_are_seeded_and_shaped():
    a, b = make_regression(50, 3, seed=1), make_regression(50, 3, seed=1)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    assert a.X.shape == (50, 3) and a.y.shape == (50,)
    X, y = make_gaussian_blobs(30, 4, 3, seed=0)
    assert X.shape == (30, 4) and torch.bincount(y).tolist() == [10, 10, 10]


def test_make_regression_is_linear_with_small_noise():
    X, y = make_regression(500, 2, noise=0.01, seed=0)
    design = np.c_[X.numpy(), np.ones(len(X))]
    _, residual, *_ = np.linalg.lstsq(design, y.numpy(), rcond=None)
    assert residual[0] / len(X) < 1e-3


def test_make_gaussian_blobs_are_unit_variance_around_their_centres():
    X, y = make_gaussian_blobs(6000, 3, 3, class_sep=4.0, seed=0)
    for c in range(3):
        spread = X[y == c] - X[y == c].mean(dim=0)
        assert spread.std(dim=0).numpy() == pytest.approx([1.0, 1.0, 1.0], abs=0.06)
    # one seed, two class_sep: the same labels and noise, centres scaled by class_sep
    near, y_near = make_gaussian_blobs(600, 3, 3, class_sep=1.0, seed=0)
    far, y_far = make_gaussian_blobs(600, 3, 3, class_sep=2.0, seed=0)
    assert torch.equal(y_near, y_far)
    for c in range(3):
        unit_centre = far[y_far == c] - near[y_near == c]  # (2 - 1) * the same N(0, I) draw
        torch.testing.assert_close(unit_centre, unit_centre[:1].expand_as(unit_centre))


def test_make_counts_follows_its_rate():
    X, y = make_counts(20_000, (0.5, -0.3), intercept=1.0, seed=0)
    assert (y >= 0).all() and torch.equal(y, y.round())
    assert abs(float(y.mean()) - float(torch.exp(1.0 + X @ torch.tensor([0.5, -0.3])).mean())) < 0.1
    fit = PoissonRegressor(alpha=0.0).fit(X.numpy(), y.numpy())
    assert fit.coef_ == pytest.approx([0.5, -0.3], abs=0.03) and fit.intercept_ == pytest.approx(1.0, abs=0.03)


def test_make_categorical_shares_one_world_across_seeds():
    # the same world, different rows: identical category -> target map up to noise
    a = make_categorical(5000, n_categories=3, noise=0.0, seed=1)
    b = make_categorical(5000, n_categories=3, noise=0.0, seed=2)
    assert not torch.equal(a.X, b.X)
    for c in range(3):
        torch.testing.assert_close(a.y[a.X == c][0], b.y[b.X == c][0])
    other_world = make_categorical(5000, n_categories=3, noise=0.0, seed=1, world_seed=1)
    assert torch.equal(other_world.X, a.X) and not torch.allclose(other_world.y, a.y)


def test_make_related_tasks_share_inputs_and_differ_in_labels():
    source, target = make_related_tasks(500, task="source"), make_related_tasks(500, task="target")
    assert torch.equal(source.X, target.X)  # same rows for the same seed
    assert int(source.y.max()) == 9 and int(target.y.max()) == 3
    assert source.target_names[-1] == "class 9" and len(target.target_names) == 4


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: make_regression(0), ValueError, "Expected `n_samples` to be an int >= 1"),
        (lambda: make_regression(5, noise=-1), ValueError, "`noise` to be a float >= 0"),
        (lambda: make_regression(5, 2.0), TypeError, r"Expected `n_features` to be an int >= 1, but got 2\.0\."),
        (lambda: make_regression(5, seed=-1), ValueError, r"Expected `seed` to be an int >= 0"),
        (lambda: make_gaussian_blobs(10, n_classes=1), ValueError, "`n_classes` to be an int >= 2"),
        (lambda: make_gaussian_blobs(10, class_sep=0), ValueError, "`class_sep` to be a float > 0"),
        (lambda: make_gaussian_blobs(2, n_classes=3), ValueError, r"Expected `n_samples` to be an int >= 3"),
        (lambda: make_counts(10, ()), ValueError, "`coef` to be a non-empty sequence"),
        (lambda: make_counts(10, 0.5), TypeError, r"Expected `coef` to be a non-empty sequence of floats, but got 0\.5\."),
        (lambda: make_counts(10, (0.5, float("nan"))), ValueError, r"Expected `coef\[1\]` to be a float"),
        (lambda: make_counts(10, intercept="1"), TypeError, r"Expected `intercept` to be a float"),
        (lambda: make_categorical(10, n_categories=1), ValueError,
         r"Expected `n_categories` to be an int >= 2, but got 1\."),
        (lambda: make_categorical(10, n_factors=0), ValueError, r"Expected `n_factors` to be an int >= 1"),
        (lambda: make_categorical(10, world_seed=-1), ValueError, r"Expected `world_seed` to be an int >= 0"),
        (lambda: make_categorical(10, seed=-1), ValueError, r"Expected `seed` to be an int >= 0"),
        (lambda: make_related_tasks(10, task="other"), ValueError,
         r"Expected `task` to be one of \('source', 'target'\), but got 'other'\."),
        (lambda: make_related_tasks(0), ValueError, r"Expected `n_samples` to be an int >= 1"),
        (lambda: make_related_tasks(5, world_seed=-1), ValueError, r"Expected `world_seed` to be an int >= 0"),
    ],
)
def test_bad_input_gets_the_template(call, error, match):
    with pytest.raises(error, match=match):
        call()
