"""Attacks on attributions: the differentiable IG matches captum's, and the attack beats random noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.explain import (
    attack_attributions,
    differentiable_integrated_gradients,
    integrated_gradients,
    top_k_overlap,
)


def smooth_model(seed: int = 0, features: int = 12) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2)).eval()


def test_differentiable_ig_equals_captums_midpoint_rule_and_keeps_its_graph():
    model = smooth_model()
    x = torch.randn(6, 12, dtype=torch.float64, requires_grad=True)
    model = model.double()
    ours = differentiable_integrated_gradients(model, x, target=1, n_steps=16)
    reference = integrated_gradients(model, x.detach(), target=1, n_steps=16, method="riemann_middle").attributions
    torch.testing.assert_close(ours.detach(), reference, rtol=1e-9, atol=1e-12)
    (second,) = torch.autograd.grad(ours.abs().sum(), x)  # attributions can be differentiated
    assert second.abs().sum() > 0


def test_top_k_overlap_counts_shared_top_features():
    a = torch.tensor([[5.0, -4.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[-5.0, 0.0, 4.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    torch.testing.assert_close(top_k_overlap(a, b, 2), torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(top_k_overlap(a, -a, 4), torch.tensor([1.0, 1.0]))


def test_attack_moves_the_explanation_far_more_than_random_changes_of_the_same_size():
    model = smooth_model()
    before = [p.clone() for p in model.parameters()]
    x = torch.randn(16, 12, generator=torch.Generator().manual_seed(1))
    eps, tol = 0.5, 0.05
    result = attack_attributions(model, x, target=1, k=4, epsilon=eps, tolerance=tol, steps=30)
    assert (result.inputs - x).abs().max() <= eps + 1e-6, "changes stay in the box"
    p0, p1 = (model(z).softmax(1)[:, 1] for z in (x, result.inputs))
    assert ((p1 - p0).abs() < tol).all() and ((p1 > 0.5) == (p0 > 0.5)).all(), "the prediction is kept"
    torch.testing.assert_close(result.probability_change, (p1 - p0).abs().detach())
    signs = 2.0 * torch.randint(0, 2, (10, *x.shape), generator=torch.Generator().manual_seed(2)) - 1
    noisy = (x + eps * signs).reshape(-1, 12)
    random_overlap = top_k_overlap(
        integrated_gradients(model, noisy, target=1, n_steps=32).attributions,
        result.original.repeat(10, 1), 4)
    assert result.overlap.mean() < random_overlap.mean() - 0.15, (result.overlap, random_overlap.mean())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the model is unchanged"
    assert all(p.requires_grad for p in model.parameters()), "requires_grad is restored"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inputs": [[1.0, 2.0]]}, TypeError, "`inputs`"),
        ({"inputs": torch.ones(3)}, ValueError, "2 dimensions"),
        ({"inputs": torch.ones(3, 12, dtype=torch.long)}, TypeError, "floating-point"),
        ({"inputs": torch.full((3, 12), float("nan"))}, ValueError, "finite"),
        ({"model": "model"}, TypeError, "`model`"),
        ({"k": 0}, ValueError, "`k`"),
        ({"k": 13}, ValueError, "`k`"),
        ({"epsilon": 0.0}, ValueError, "`epsilon`"),
        ({"tolerance": 1.0}, ValueError, "`tolerance`"),
        ({"steps": 0}, ValueError, "`steps`"),
        ({"check_every": 40}, ValueError, "`check_every`"),
        ({"penalty": -1.0}, ValueError, "`penalty`"),
        ({"reference_steps": 1}, ValueError, "`reference_steps`"),
        ({"target": 2}, ValueError, "`target`"),
    ],
)
def test_attack_rejects_bad_input(kwargs, error, match):
    arguments = {"model": smooth_model(), "inputs": torch.randn(3, 12), "target": 1, "steps": 5,
                 "check_every": 5} | kwargs
    model, inputs = arguments.pop("model"), arguments.pop("inputs")
    with pytest.raises(error, match=match):
        attack_attributions(model, inputs, **arguments)


def test_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="shape of `a`"):
        top_k_overlap(torch.ones(2, 3), torch.ones(2, 4), 1)
    with pytest.raises(ValueError, match="`k`"):
        top_k_overlap(torch.ones(2, 3), torch.ones(2, 3), 4)
    with pytest.raises(ValueError, match="`n_steps`"):
        differentiable_integrated_gradients(smooth_model(), torch.ones(2, 12), target=0, n_steps=0)
