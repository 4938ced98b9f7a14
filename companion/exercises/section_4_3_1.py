"""Exercise of notebook 4.3.1: the label as feature columns, for the label-in-the-features check."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _with_label_columns_solution(X: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    # the class count is given: a batch need not contain its highest class, so y.max() can't tell it
    one_hot = torch.nn.functional.one_hot(y.long(), num_classes).to(X.dtype)
    return torch.cat([X, one_hot], dim=1)


@exercise(
    "4.3.1-label-columns",
    "Write with_label_columns(X, y, num_classes): X (N, F) followed by the one-hot encoding of the "
    "labels y (N,) in 0 ... num_classes - 1, shape (N, F + num_classes).",
    solution=_with_label_columns_solution,
)
def _grade_label_columns(answer: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> str | None:
    try:
        inspect.signature(answer).bind(torch.zeros(1, 1), torch.zeros(1), 1)
    except TypeError:
        return (
            "with_label_columns takes three arguments, (X, y, num_classes): the class count can't be "
            "read from y, whose highest class may be missing from a batch."
        )
    except ValueError:  # no signature to read (a builtin): just call it
        pass
    g = torch.Generator().manual_seed(0)
    cases = [  # (N, F, classes, labels, what the case shows)
        (6, 2, 2, torch.arange(6) % 2, None),
        (20, 5, 4, torch.arange(20) % 4, None),
        (6, 3, 5, torch.tensor([0, 1, 2, 1, 0, 2]), "the classes 3 and 4 appear in no row here"),
        (5, 2, 3, torch.tensor([0, 2, 2, 0, 0]), "the class 1 appears in no row here"),
    ]
    for n, f, c, y, missing in cases:
        X = torch.randn(n, f, generator=g, dtype=torch.float64 if missing else torch.float32)
        got = answer(X.clone(), y.clone(), c)
        if not isinstance(got, torch.Tensor):
            return "return a tensor."
        if got.ndim == 2 and got.shape[0] == n and got.shape[1] == f + 1:
            return "append one column per class (the one-hot encoding), not the label as a single number."
        if tuple(got.shape) != (n, f + c):
            if missing:
                return (
                    f"for num_classes = {c} the result needs {f + c} columns, but {missing}: take the "
                    "width of the one-hot part from num_classes, not from the labels present."
                )
            return f"for X of shape {(n, f)} and {c} classes the result should have {f + c} columns."
        if not got.is_floating_point():
            return "the result must be a float tensor (cast the one-hot part to X's dtype)."
        got = got.to(X.dtype)
        if torch.equal(got[:, c:], X):
            return "the first F columns must be X itself: put the label columns after X, not before."
        if not torch.equal(got[:, :f], X):
            return "the first F columns must be X itself, unchanged."
        if not torch.equal(got[:, f:], _with_label_columns_solution(X, y, c)[:, f:]):
            return "the extra columns must hold a 1 in the column of each row's class and 0 elsewhere."
    return None
