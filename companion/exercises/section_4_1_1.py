"""Exercises of notebook 4.1.1 (choosing a model): a numerically stable softmax."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise
from companion.exercises._shortcuts import SOFTMAX, call_without


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
    cases = {  # name -> (logits, what a wrong answer there shows)
        "random": z,
        "large": torch.tensor([[1000.0, 999.0, 0.0]], dtype=torch.float64),
        "very negative": torch.tensor([[-1000.0, -1001.0, -1002.0]], dtype=torch.float64),
        "rows far apart": torch.tensor([[1000.0, 999.0], [0.0, -1.0]], dtype=torch.float64),
    }
    for name, logits in cases.items():
        got, used = call_without(SOFTMAX, answer, logits.clone())
        if used:
            return (
                f"this exercise asks you to write the softmax yourself: {used[0]} (like every "
                "softmax and log_softmax of PyTorch) is switched off while it is graded."
            )
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            return "return a tensor with the same shape as z, (N, C): one probability per class."
        got = got.detach().double()
        want = torch.softmax(logits, dim=1)
        if torch.allclose(got, want, atol=1e-8):
            continue
        if name == "random":
            rows, columns = torch.ones(len(z), dtype=torch.float64), torch.ones(z.shape[1], dtype=torch.float64)
            if torch.allclose(got.sum(dim=0), columns) and not torch.allclose(got.sum(dim=1), rows):
                return "your columns sum to 1; normalize over the classes, dim=1, so that each row sums to 1."
            if torch.allclose(got, torch.log_softmax(logits, dim=1), atol=1e-8):
                return "these are log-probabilities (all negative); exponentiate before normalizing."
            return "the values differ from the softmax: exponentiate, then divide by each row's sum."
        if name == "rows far apart":
            return (
                "the row [0, -1] comes out wrong (NaN) next to the row [1000, 999]: you subtracted "
                "one maximum for the whole batch, so exp() of the second row underflows to 0 / 0. "
                "Subtract each row's own maximum (max over dim=1, keepdim=True)."
            )
        kind = "overflow exp() and give inf / inf" if name == "large" else "underflow exp() to 0 / 0"
        return (
            f"{name} logits ({logits[0, 0]:.0f}, ...) {kind}, so you return NaN or wrong values. "
            "Softmax does not change when the same number is subtracted from every logit of a "
            "row: subtract the row's maximum."
        )
    return None
