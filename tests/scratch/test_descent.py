"""Tests for companion.scratch.descent: one loop for gradient descent, SGD and mini-batch SGD."""

import pytest
import torch

from companion.scratch.descent import gradient_noise, minibatch_descent


def _mse(w, X, y):
    return ((X @ w - y) ** 2).mean()


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 3, generator=g, dtype=torch.float64)
    w_true = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    return X, X @ w_true, w_true


def test_full_batch_descent_equals_the_textbook_update(problem):
    X, y, _ = problem
    w0 = torch.zeros(3, dtype=torch.float64)
    run = minibatch_descent(_mse, w0, X, y, batch_size=64, lr=0.1, epochs=3)
    w = w0.clone()
    for _ in range(3):
        w = w - 0.1 * 2 * X.T @ (X @ w - y) / len(y)
    assert torch.allclose(run.params, w)
    assert run.examples_seen == [0, 64, 128, 192] and len(run.loss) == 4
    assert all(b < a for a, b in zip(run.loss, run.loss[1:]))  # convex + small rate: monotone


def test_minibatch_converges_and_counts_steps(problem):
    X, y, w_true = problem
    run = minibatch_descent(_mse, torch.zeros(3, dtype=torch.float64), X, y, batch_size=10, lr=0.05, epochs=30)
    assert len(run.loss) - 1 == 30 * 7  # ceil(64 / 10) steps per epoch
    assert run.examples_seen[-1] == 30 * 64
    assert torch.allclose(run.params, w_true, atol=1e-3)
    assert run.loss_at_budget(64) == run.loss[7]
    assert run.seconds_per_step > 0


def test_gradient_noise_shrinks_like_one_over_b(problem):
    X, y, _ = problem
    w = torch.zeros(3, dtype=torch.float64)
    noise = {b: gradient_noise(_mse, w, X, y, batch_size=b, n_batches=400) for b in (1, 4, 16, 64)}
    assert noise[64] == 0.0
    # sampling without replacement: variance ∝ (N - b) / (b (N - 1)); check within 35%
    for b in (4, 16):
        expected = noise[1] * (64 - b) / (b * 63)
        assert noise[b] == pytest.approx(expected, rel=0.35)


def test_bad_input(problem):
    X, y, _ = problem
    w = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"`batch_size` to be an int in \[1, 64\], but got 65"):
        minibatch_descent(_mse, w, X, y, batch_size=65, lr=0.1)
    with pytest.raises(ValueError, match="`lr` to be a float > 0"):
        minibatch_descent(_mse, w, X, y, batch_size=8, lr=0)
    with pytest.raises(ValueError, match="same length"):
        gradient_noise(_mse, w, X, y[:5], batch_size=2)
    with pytest.raises(ValueError, match="scalar tensor"):
        gradient_noise(lambda w, X, y: X @ w - y, w, X, y, batch_size=2)
    with pytest.raises(ValueError, match="`params` to be a tensor with 1 dimensions"):
        minibatch_descent(_mse, w.unsqueeze(0), X, y, batch_size=8, lr=0.1)
