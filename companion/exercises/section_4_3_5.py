"""Exercises of notebook 4.3.5: feature attributions."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise
from companion.exercises._shortcuts import call_without


def _integrated_gradients_solution(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor, n_steps: int
) -> torch.Tensor:
    alphas = (torch.arange(n_steps, dtype=x.dtype) + 0.5) / n_steps  # midpoints of n_steps slices of [0, 1]
    path = baseline + alphas[:, None, None] * (x - baseline)  # (n_steps, N, F)
    path.requires_grad_(True)
    (grads,) = torch.autograd.grad(model(path.reshape(-1, x.shape[1])).sum(), path)
    return (x - baseline) * grads.mean(dim=0)  # (N, F)


_LIBRARY_IG = ("captum.attr.IntegratedGradients.attribute",)
"""captum's integrated gradients, which the package's ``explain.integrated_gradients`` also runs."""


def _gradient_along(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor, alphas: torch.Tensor
) -> torch.Tensor:
    """The model's gradient at ``baseline + alpha * (x - baseline)`` for each alpha: (len(alphas), N, F)."""
    path = (baseline + alphas[:, None, None] * (x - baseline)).requires_grad_(True)
    (grads,) = torch.autograd.grad(model(path.reshape(-1, x.shape[1])).sum(), path)
    return grads.reshape(path.shape)


@exercise(
    "4.3.5-integrated-gradients",
    "Write integrated_gradients(model, x, baseline, n_steps) for a model mapping (N, F) to (N,): "
    "the attributions (N, F), with autograd for the gradients along the straight path "
    "(not with captum).",
    solution=_integrated_gradients_solution,
)
def _grade_integrated_gradients(answer: Callable[..., torch.Tensor]) -> str | None:
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn(4, 8, generator=g, dtype=torch.float64)
    w2 = torch.randn(8, generator=g, dtype=torch.float64)

    def model(z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z @ w1) @ w2

    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    n_steps = 64
    # Any Riemann sum of n steps (left, right, midpoint, trapezoid) is within about 1/n of the
    # integral, relative to the row's largest attribution; 3/n leaves room and still rejects mistakes.
    tolerance = 3 / n_steps
    for baseline in (torch.zeros_like(x), 0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)):
        got, used = call_without(_LIBRARY_IG, answer, model, x.clone(), baseline.clone(), n_steps)
        if used:
            return (
                "write the integral yourself with torch.autograd.grad: captum's IntegratedGradients "
                "(which the package's explain.integrated_gradients runs) is switched off while this "
                "exercise is graded."
            )
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            return "return a tensor shaped like x: one attribution per feature of every row."
        got = got.detach().double()
        delta = x - baseline
        mean_gradient = _gradient_along(model, x, baseline, (torch.arange(2048) + 0.5) / 2048).mean(0)
        reference = delta * mean_gradient  # a fine midpoint sum: the integral, to about 1e-7
        scale = reference.abs().amax(dim=1, keepdim=True)

        def near(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor = scale) -> bool:
            return bool(((a - b).abs() <= tolerance * scale + 1e-6).all())

        if near(got, reference):
            continue
        from_zero = x * _gradient_along(model, x, torch.zeros_like(x), (torch.arange(256) + 0.5) / 256).mean(0)
        mistakes = [
            (n_steps * reference, "you summed the gradients over the n_steps points; average them "
             "(the integral over [0, 1] is the mean, not the sum)."),
            (-reference, "the sign is flipped: multiply by (x - baseline), not (baseline - x)."),
            (mean_gradient, "multiply the averaged gradient by (x - baseline): an attribution is a "
             "gradient times a distance."),
            (delta * _gradient_along(model, x, baseline, torch.ones(1)).mean(0), "you took the gradient "
             "at x only (gradient times input); integrated gradients averages the gradient at points "
             "all along the path from baseline to x."),
            (from_zero, "your attributions ignore the baseline: the path runs from baseline to x "
             "(baseline + alpha * (x - baseline)), and the factor is (x - baseline), not x."),
        ]
        for value, hint in mistakes:
            if near(got, value) and not near(value, reference):
                return hint
        change = model(x) - model(baseline)
        if not near(got.sum(dim=1, keepdim=True), change[:, None]):
            return (
                "each row's attributions should add up to model(x) - model(baseline) (completeness). "
                "Average the gradient over points along the path, then multiply by (x - baseline)."
            )
        return "the totals are right but not the split among features: take the gradient with respect to each feature."
    return None
