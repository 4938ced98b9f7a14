"""Exercises of notebook 4.1.1 (choosing a model): a numerically stable softmax."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _softmax_solution(z: torch.Tensor) -> torch.Tensor:
    shifted = z - z.max(dim=1, keepdim=True).values  # exp of large logits would overflow
    e = torch.exp(shifted)
    return e / e.sum(dim=1, keepdim=True)


@exercise(
    "4.1.1-softmax",
    "Write softmax(z) for logits z of shape (N, C): one probability per class, each row summing "
    "to 1, without overflow for large logits and without calling torch.softmax.",
    solution=_softmax_solution,
)
def _grade_softmax(answer: Callable[[torch.Tensor], torch.Tensor]) -> str | None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 5, generator=g, dtype=torch.float64) * 3
    got = answer(z.clone())
    if not isinstance(got, torch.Tensor) or got.shape != z.shape:
        return "return a tensor with the same shape as z, (N, C): one probability per class."
    got = got.double()
    if torch.allclose(got.sum(dim=0), torch.ones(5, dtype=torch.float64)) and not torch.allclose(
        got.sum(dim=1), torch.ones(6, dtype=torch.float64)
    ):
        return (
            "your columns sum to 1; normalize over the classes, dim=1, so that each row sums to 1."
        )
    if not torch.allclose(got, torch.softmax(z, dim=1), atol=1e-8):
        return "the values differ from the softmax: exponentiate, then divide by each row's sum."
    big = torch.tensor([[1000.0, 999.0, 0.0]], dtype=torch.float64)
    got_big = answer(big.clone()).double()
    if not torch.isfinite(got_big).all() or not torch.allclose(got_big, torch.softmax(big, dim=1)):
        return (
            "logits of 1000 overflow exp() and give NaN. Softmax does not change when the "
            "same number is subtracted from every logit of a row: use that."
        )
    return None
