"""integrated_gradients: completeness, closed forms and the step-doubling option."""

from __future__ import annotations

import pytest
import torch

from companion.explain import integrated_gradients


def tiny_cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(),
        torch.nn.Conv2d(4, 4, 3, stride=2), torch.nn.Softplus(),
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 3),
    ).eval()


class Quadratic(torch.nn.Module):
    """f(x) = sum(a * x**2): integrated gradients are exactly a * (x**2 - b**2)."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.a * x**2).sum(dim=1)


def test_completeness_on_a_small_cnn():
    torch.manual_seed(1)
    x = torch.rand(4, 3, 16, 16)
    result = integrated_gradients(tiny_cnn(), x, target=torch.tensor([0, 1, 2, 0]), n_steps=50)
    assert result.attributions.shape == x.shape
    assert float(result.error.max()) < 1e-2
    assert result.n_steps == 50


def test_linear_model_gives_weight_times_difference():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2)
    x, b = torch.randn(3, 5), torch.randn(3, 5)
    result = integrated_gradients(model, x, target=1, baselines=b)
    torch.testing.assert_close(result.attributions, model.weight[1].detach() * (x - b), atol=1e-5, rtol=1e-5)


def test_quadratic_closed_form_with_a_scalar_baseline():
    torch.manual_seed(0)
    model, x = Quadratic(torch.randn(6)), torch.randn(2, 6)
    result = integrated_gradients(model, x, target=None, baselines=0.5, n_steps=8)
    expected = model.a.detach() * (x**2 - 0.25)
    torch.testing.assert_close(result.attributions, expected, atol=1e-5, rtol=1e-5)


def test_baseline_equal_to_input_gives_zero():
    x = torch.rand(2, 3, 16, 16)
    result = integrated_gradients(tiny_cnn(), x, target=0, baselines=x.clone())
    assert torch.count_nonzero(result.attributions) == 0


def test_max_error_raises_steps_until_the_error_is_small():
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    torch.manual_seed(0)
    x = 3 * torch.randn(5, 4)
    coarse = integrated_gradients(model, x, target=None, n_steps=2, method="riemann_left")
    assert float(coarse.error.max()) > 0.05  # the planted fault: far too few steps
    fine = integrated_gradients(model, x, target=None, n_steps=2, method="riemann_left", max_error=0.05)
    assert float(fine.error.max()) < 0.05
    assert fine.n_steps > 2 and fine.n_steps & (fine.n_steps - 1) == 0  # doubled from 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_steps": 1}, ValueError, r"Expected `n_steps` to be an int >= 2, but got 1\."),
        ({"method": "simpson"}, ValueError, r"Expected `method` to be one of"),
        ({"target": 1.5}, TypeError, r"Expected `target` to be None, an int >= 0"),
        ({"target": torch.tensor([0])}, ValueError, r"Expected `target` to be None, an int or an integer tensor of shape \(2,\)"),
        ({"baselines": torch.zeros(5)}, ValueError, r"Expected `baselines` to be None, a number or a tensor broadcastable"),
        ({"max_error": 0.0}, ValueError, r"Expected `max_error` to be a float > 0"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    args = {"target": 0, **kwargs}
    with pytest.raises(error, match=match):
        integrated_gradients(torch.nn.Linear(3, 2), torch.rand(2, 3), **args)


class Step(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0).float().sum(dim=1)


def test_bad_model_and_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"Expected `model` to be differentiable"):
        integrated_gradients(Step(), torch.rand(2, 3), target=None)
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module"):
        integrated_gradients(lambda x: x, torch.rand(2, 3), target=0)
    with pytest.raises(ValueError, match=r"Expected `inputs` to be a tensor of finite values"):
        integrated_gradients(torch.nn.Linear(3, 2), torch.full((2, 3), float("nan")), target=0)
