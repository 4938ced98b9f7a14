"""Exercises of notebook 4.1.4 (generalization): the L2 penalty."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from companion.exercises._registry import exercise
from companion.regularization import l2_penalty


def _l2_solution(model: nn.Module, lam: float) -> torch.Tensor:
    total = 0.0
    for name, parameter in model.named_parameters():
        if not name.endswith("bias"):  # biases are not penalized
            total = total + parameter.pow(2).sum()
    return lam * total


@exercise(
    "4.1.4-l2-penalty",
    "Write my_l2_penalty(model, lam): lambda times the sum of squared weights, biases skipped, "
    "as a differentiable tensor.",
    solution=_l2_solution,
)
def _grade_l2(answer: Callable[[nn.Module, float], torch.Tensor]) -> str | None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    got = answer(model, 0.1)
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return "return a single-number tensor (so that backward() can run through it)."
    expected = l2_penalty(model, 0.1)
    with_biases = 0.1 * sum(p.pow(2).sum() for p in model.parameters())
    if torch.isclose(got.detach(), with_biases.detach()):
        return "you penalized the biases too; skip parameters whose name ends in 'bias'."
    if torch.isclose(got.detach(), expected.detach() / 0.1):
        return "multiply the sum by lam."
    if not torch.isclose(got.detach(), expected.detach()):
        return "square each weight before summing: the penalty is lam * sum(w ** 2)."
    if not got.requires_grad:
        return "keep the result attached to the graph: don't convert to a Python float or detach."
    return None
