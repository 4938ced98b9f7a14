"""Exercises of notebook 4.3.5: feature attributions."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _integrated_gradients_solution(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor, n_steps: int
) -> torch.Tensor:
    alphas = (torch.arange(n_steps, dtype=x.dtype) + 0.5) / n_steps  # midpoints of n_steps slices of [0, 1]
    path = baseline + alphas[:, None, None] * (x - baseline)  # (n_steps, N, F)
    path.requires_grad_(True)
    (grads,) = torch.autograd.grad(model(path.reshape(-1, x.shape[1])).sum(), path)
    return (x - baseline) * grads.mean(dim=0)  # (N, F)


@exercise(
    "4.3.5-integrated-gradients",
    "Write integrated_gradients(model, x, baseline, n_steps) for a model mapping (N, F) to (N,): "
    "the attributions (N, F), with autograd for the gradients along the straight path.",
    solution=_integrated_gradients_solution,
)
def _grade_integrated_gradients(answer: Callable[..., torch.Tensor]) -> str | None:
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn(4, 8, generator=g, dtype=torch.float64)
    w2 = torch.randn(8, generator=g, dtype=torch.float64)

    def model(z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z @ w1) @ w2

    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    baseline = torch.zeros_like(x)
    got = answer(model, x.clone(), baseline.clone(), 64)
    if not isinstance(got, torch.Tensor) or got.shape != x.shape:
        return "return a tensor shaped like x: one attribution per feature of every row."
    expected = _integrated_gradients_solution(model, x, baseline, 256)
    change = model(x) - model(baseline)
    if not torch.allclose(got.detach().double().sum(dim=1), change, rtol=1e-2, atol=1e-3):
        return (
            "each row's attributions should add up to model(x) - model(baseline) (completeness). "
            "Average the gradient over points along the path, then multiply by (x - baseline)."
        )
    if not torch.allclose(got.detach().double(), expected, rtol=1e-2, atol=1e-3):
        return "the totals are right but not the split among features: take the gradient with respect to each feature."
    return None
