"""Exercise of notebook 4.3.1: the label as feature columns, for the label-in-the-features check."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _with_label_columns_solution(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    one_hot = torch.nn.functional.one_hot(y.long(), int(y.max()) + 1).to(X.dtype)
    return torch.cat([X, one_hot], dim=1)


@exercise(
    "4.3.1-label-columns",
    "Write with_label_columns(X, y): X (N, F) followed by the one-hot encoding of y (N,), shape (N, F + C).",
    solution=_with_label_columns_solution,
)
def _grade_label_columns(answer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> str | None:
    g = torch.Generator().manual_seed(0)
    for n, f, c in ((6, 2, 2), (20, 5, 4)):
        X = torch.randn(n, f, generator=g)
        y = torch.arange(n) % c
        got = answer(X, y)
        if not isinstance(got, torch.Tensor):
            return "return a tensor."
        if tuple(got.shape) != (n, f + c):
            return f"for X of shape {(n, f)} and {c} classes the result should have {f + c} columns."
        if not got.is_floating_point():
            return "the result must be a float tensor (cast the one-hot part to X's dtype)."
        if not torch.equal(got[:, :f], X):
            return "the first F columns must be X itself, unchanged."
        if not torch.equal(got[:, f:], _with_label_columns_solution(X, y)[:, f:]):
            return "the extra columns must hold a 1 in the column of each row's class and 0 elsewhere."
    return None
