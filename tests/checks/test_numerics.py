"""Tests for companion.checks.numerics: finite weights, gradients and layer outputs; units alive."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.checks import ModelCheckError, check_finite, check_units_alive


def mlp(in_features: int = 3, out_features: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, out_features))


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


# ---------------------------------------------------------------- check_finite


def test_check_finite_passes_on_a_healthy_model():
    model = mlp()
    check_finite(model, torch.randn(4, 3))
    check_finite(torch.ones(3), name="weights")
    assert no_hooks(model)


def test_check_finite_names_the_parameter_with_a_planted_nan():
    model = mlp()
    with torch.no_grad():
        model[2].weight[1, 5] = float("nan")
    with pytest.raises(ModelCheckError, match=r"parameter `2.weight` holds 1 NaN and 0 Inf among 32 values; "
                                               r"the first at index \(1, 5\)"):
        check_finite(model)


def test_check_finite_names_the_first_layer_output_with_inf():
    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    model = nn.Sequential(nn.Linear(3, 4), Exp(), nn.Linear(4, 1)).train()
    with torch.no_grad():
        model[0].bias.fill_(1000.0)  # exp overflows to Inf
    x = torch.randn(2, 3)
    with pytest.raises(ModelCheckError, match=r"check_finite failed: the output of layer `1` \(Exp\) holds 0 NaN and 8 Inf"):
        check_finite(model, x)
    assert no_hooks(model)  # removed after a failure too
    assert model.training  # and the mode restored


def test_check_finite_names_the_model_itself_when_only_its_own_forward_overflows():
    class Overflow(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, x):
            return self.linear(x) * float("inf")

    with pytest.raises(ModelCheckError, match=r"output of layer `<model>` \(Overflow\)"):
        check_finite(Overflow(), torch.ones(3, 2))


def test_check_finite_checks_gradients_and_tensors_and_inputs():
    model = mlp()
    model(torch.randn(2, 3)).sum().backward()
    model[0].bias.grad[0] = float("inf")
    with pytest.raises(ModelCheckError, match="gradient of `0.bias` holds 0 NaN and 1 Inf"):
        check_finite(model)
    with pytest.raises(ModelCheckError, match="`activations` holds 1 NaN"):
        check_finite(torch.tensor([0.0, float("nan")]), name="activations")
    with pytest.raises(ModelCheckError, match="the input holds"):
        check_finite(mlp(), torch.tensor([[float("nan"), 0.0, 0.0]]))
    with pytest.raises(TypeError, match="Expected `model_or_tensor` to be an nn.Module or a tensor"):
        check_finite([1.0])


# ---------------------------------------------------------------- check_units_alive


def test_check_units_alive_names_a_dead_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(64, 3)
    with torch.no_grad():
        model[0].bias.fill_(2.0)
        model[2].bias.fill_(2.0)
    table = check_units_alive(model, x)
    assert list(table.index) == ["1", "3"] and table.loc["3", "dead_fraction"] < 0.5
    with torch.no_grad():
        model[2].bias.fill_(-50.0)  # planted: the second ReLU layer dies
    with pytest.raises(ModelCheckError, match=r"check_units_alive failed: 1 layer\(s\) have at most 50% alive "
                                               r"units \(non-zero for some example\): `3` 0%"):
        check_units_alive(model, x)
    with pytest.raises(ValueError, match=r"Expected `min_fraction` to be a float in \[0, 1\)"):
        check_units_alive(model, x, min_fraction=1.0)
    with pytest.raises(TypeError, match="Expected `layer_types` to be a type or a tuple of types"):
        check_units_alive(model, x, layer_types="relu")
    assert no_hooks(model)


def test_check_units_alive_per_value_counts_every_output_value():
    torch.manual_seed(0)
    model = mlp()
    # A unit that is on for some inputs counts fully per unit, but only for its share per value.
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[:, 0] = 1.0
        model[0].bias.zero_()
    x = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [-3.0, 0.0, 0.0]])
    assert check_units_alive(model, x)["dead"].tolist() == [0]
    with pytest.raises(ModelCheckError, match=r"at most 50% non-zero output values: `1` 25%"):
        check_units_alive(model, x, per="value")
    table = check_units_alive(model, x, per="value", min_fraction=0.2)
    assert table["nonzero_fraction"].tolist() == [0.25]
    with pytest.raises(ValueError, match=r"Expected `per` to be one of \('unit', 'value'\), but got 'units'"):
        check_units_alive(model, x, per="units")
    assert no_hooks(model)
