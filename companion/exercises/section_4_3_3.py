"""Exercise of notebook 4.3.3: the mean baseline's test error."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _mean_baseline_mse_solution(y_train: torch.Tensor, y_test: torch.Tensor) -> float:
    prediction = y_train.float().mean()  # the baseline learns one number, from training data only
    return float(((y_test.float() - prediction) ** 2).mean())


@exercise(
    "4.3.3-mean-baseline-mse",
    "Write mean_baseline_mse(y_train, y_test): the test MSE of a regressor that always predicts "
    "the training mean.",
    solution=_mean_baseline_mse_solution,
)
def _grade_mean_baseline_mse(answer: Callable[[torch.Tensor, torch.Tensor], float]) -> str | None:
    g = torch.Generator().manual_seed(0)
    for n_train, n_test, shift in ((200, 80, 3.0), (50, 20, 0.0)):
        y_train = torch.randn(n_train, generator=g) ** 3 * 2 + 1  # skewed: its median is not its mean
        y_test = torch.randn(n_test, generator=g) * 2 + 1 + shift
        got = answer(y_train.clone(), y_test.clone())
        try:
            got = float(got)
        except (TypeError, ValueError, RuntimeError):
            return "return one number (a float)."
        expected = _mean_baseline_mse_solution(y_train, y_test)

        def near(a: float | torch.Tensor, b: float | torch.Tensor) -> bool:
            return abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(b)))

        if near(got, expected):
            continue
        errors = y_test - y_train.mean()
        mistakes = [
            (y_test.var(unbiased=False), "the baseline may only learn from training data: predict the "
             "mean of y_train, not y_test."),
            (errors.pow(2).mean().sqrt(), "that is the root of the MSE (RMSE): leave out the square root."),
            (errors.abs().mean(), "that is the mean absolute error: square the errors instead."),
            (errors.pow(2).sum() / (n_test - 1), "the mean divides by the number of test rows, n, "
             "not n - 1."),
            ((y_test - y_train.median()).pow(2).mean(), "the baseline predicts the mean of y_train, "
             "not its median."),
            ((y_train - y_train.mean()).pow(2).mean(), "that is the error on the training rows: "
             "score the constant prediction on y_test."),
        ]
        for value, hint in mistakes:
            if near(got, value) and not near(value, expected):
                return hint
        return "predict y_train's mean for every test row, then average the squared errors."
    return None
