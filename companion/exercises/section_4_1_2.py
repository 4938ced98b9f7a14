"""Exercises of notebook 4.1.2 (interpretable models): a Poisson model's expected counts by hand."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from companion.data import make_counts
from companion.exercises._registry import exercise
from companion.models import PoissonRegression


def _expected_counts_solution(
    coef: torch.Tensor, intercept: torch.Tensor, X: torch.Tensor
) -> torch.Tensor:
    return torch.exp(X @ coef + intercept)  # the log link, inverted


@functools.cache
def _fitted() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A Poisson regression fitted once: X (N, F), coef (F,), intercept () and its predictions (N,)."""
    X, y = make_counts(300, (0.4, -0.6), intercept=0.8, seed=11)
    model = PoissonRegression(2).fit(X, y)
    return X, model.coef.detach(), model.intercept.detach(), model.predict(X).detach()


@exercise(
    "4.1.2-expected-counts",
    "Write expected_counts(coef, intercept, X): a fitted Poisson regression's expected count for "
    "each row of X, from its coefficients, without calling the model.",
    solution=_expected_counts_solution,
)
def _grade_expected_counts(answer: Callable[..., torch.Tensor]) -> str | None:
    X, coef, intercept, expected = _fitted()
    got = answer(coef.clone(), intercept.clone(), X.clone())
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return "return one expected count per row of X: a tensor of shape (N,)."
    got = got.detach().to(expected.dtype)
    if torch.allclose(got, expected, rtol=1e-4):
        return None
    eta = X @ coef + intercept
    if torch.allclose(got, eta, atol=1e-4):
        return "these are log-rates (they can be negative); a count's expected value needs the inverse link."
    if not torch.isfinite(got).all() or (got < 0).any():
        return (
            "some of your values are negative, NaN or infinite, which a count's expected value never "
            "is: the model's link is the log, so its inverse is exp (not log)."
        )
    if torch.allclose(got, torch.exp(-eta), rtol=1e-4):
        return "the sign is flipped: exp(-(X @ coef + intercept)) shrinks the count where it should grow."
    ratio = got / expected
    if torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-4):
        return (
            "close: every prediction is off by the same factor, so the intercept is misplaced. It is on "
            "the log scale, like X @ coef: add it inside exp(), don't leave it out or multiply by it."
        )
    return "the values differ from the model's: expected count = exp(linear predictor)."
