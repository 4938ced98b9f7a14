"""sampled_shapley: efficiency, exact values on additive models, convergence to exact Shapley values."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from companion.explain import sampled_shapley


class Additive(torch.nn.Module):
    """f(x) = sum_i w_i sin(x_i) + x_i**2: each feature's Shapley value is g_i(x_i) - g_i(b_i)."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def g(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * torch.sin(x) + x**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(x).sum(dim=1)


def exact_shapley(f, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Shapley values of one row by enumerating every coalition (the oracle)."""
    n = len(x)
    phi = torch.zeros(n, dtype=torch.float64)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for k in range(n):
            for subset in itertools.combinations(others, k):
                with_i = b.clone()
                with_i[list(subset)] = x[list(subset)]
                without_i = with_i.clone()
                with_i[i] = x[i]
                weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
                phi[i] += weight * (f(with_i[None]) - f(without_i[None])).item()
    return phi


def mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def test_efficiency_holds_to_round_off():
    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64)
    model = mlp().double()
    result = sampled_shapley(model, x, target=torch.tensor([0, 1, 2, 0, 1, 2]), n_samples=5)
    assert float(result.error.max()) < 1e-5
    assert result.attributions.shape == x.shape and result.n_steps == 5


def test_exact_on_an_additive_model():
    torch.manual_seed(0)
    model = Additive(torch.randn(5))
    x, b = torch.randn(3, 5), torch.randn(3, 5)
    result = sampled_shapley(model, x, target=None, baselines=b, n_samples=3)
    torch.testing.assert_close(result.attributions, model.g(x) - model.g(b), atol=1e-5, rtol=1e-5)


def test_feature_groups_share_their_value_and_keep_efficiency():
    torch.manual_seed(0)
    model = Additive(torch.randn(4))
    x = torch.randn(2, 4)
    groups = torch.tensor([[0, 0, 1, 1]])
    result = sampled_shapley(model, x, target=None, feature_mask=groups, n_samples=4)
    g = model.g(x) - model.g(torch.zeros_like(x))
    expected = torch.stack([g[:, :2].sum(1), g[:, :2].sum(1), g[:, 2:].sum(1), g[:, 2:].sum(1)], dim=1)
    torch.testing.assert_close(result.attributions, expected, atol=1e-5, rtol=1e-5)
    assert float(result.error.max()) < 1e-5


def test_converges_to_exact_shapley_values_with_interactions():
    model = mlp(3).double()
    torch.manual_seed(1)
    x = torch.randn(1, 4, dtype=torch.float64)
    exact = exact_shapley(lambda z: model(z)[:, 1], x[0], torch.zeros(4, dtype=torch.float64))
    few = sampled_shapley(model, x, target=1, n_samples=2).attributions[0]
    many = sampled_shapley(model, x, target=1, n_samples=400).attributions[0]
    assert (many - exact).abs().max() < 0.02 * exact.abs().max()
    assert (many - exact).abs().max() < (few - exact).abs().max()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_samples": 0}, ValueError, r"Expected `n_samples` to be an int >= 1, but got 0\."),
        ({"feature_mask": torch.zeros(2, 3)}, TypeError, r"Expected `feature_mask` to be an integer tensor"),
        ({"feature_mask": torch.zeros(5, dtype=torch.long)}, ValueError, r"Expected `feature_mask` to be a tensor broadcastable"),
        ({"perturbations_per_eval": 0}, ValueError, r"Expected `perturbations_per_eval` to be an int >= 1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        sampled_shapley(torch.nn.Linear(3, 2), torch.rand(2, 3), target=0, **kwargs)
