"""Exercises of notebook 4.1.2 (interpretable models): a Poisson model's expected counts by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _expected_counts_solution(
    coef: torch.Tensor, intercept: torch.Tensor, X: torch.Tensor
) -> torch.Tensor:
    return torch.exp(X @ coef + intercept)  # the log link, inverted


@exercise(
    "4.1.2-expected-counts",
    "Write expected_counts(coef, intercept, X): a fitted Poisson regression's expected count for "
    "each row of X, from its coefficients, without calling the model.",
    solution=_expected_counts_solution,
)
def _grade_expected_counts(answer: Callable[..., torch.Tensor]) -> str | None:
    from companion.data import make_counts
    from companion.models import PoissonRegression

    X, y = make_counts(300, (0.4, -0.6), intercept=0.8, seed=11)
    model = PoissonRegression(2).fit(X, y)
    coef, intercept = model.coef, model.intercept
    got = answer(coef.clone(), intercept.clone(), X.clone())
    expected = model.predict(X)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return "return one expected count per row of X: a tensor of shape (N,)."
    got = got.to(expected.dtype)
    eta = X @ coef + intercept
    if torch.allclose(got, eta, atol=1e-4):
        return "these are log-rates (they can be negative); a count's expected value needs the inverse link."
    if torch.allclose(got, torch.exp(X @ coef), rtol=1e-4):
        return (
            "close: every prediction is off by the same factor. What multiplies the rate at X = 0?"
        )
    if not torch.allclose(got, expected, rtol=1e-4):
        return "the values differ from the model's: expected count = exp(linear predictor)."
    return None
