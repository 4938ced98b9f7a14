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
    lam = 0.1
    got = answer(model, lam)
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return (
            "return a single-number tensor (so that backward() can run through it), "
            "not a Python float or a tensor per layer."
        )
    value = got.detach().reshape(())
    weights = [p for name, p in model.named_parameters() if not name.endswith("bias")]
    with torch.no_grad():
        squares = sum(p.pow(2).sum() for p in weights)
        wrong = {
            "you penalized the biases too; skip parameters whose name ends in 'bias'.":
                lam * sum(p.pow(2).sum() for p in model.parameters()),
            "multiply the sum by lam.": squares,
            "that is lam / 2 times the sum of squares; the exercise asks for lam times it.": lam * squares / 2,
            "that is the L1 penalty (absolute values); L2 squares each weight.":
                lam * sum(p.abs().sum() for p in weights),
            "that is lam times the norm of the weights (a square root of the sum); the L2 penalty "
            "is the sum of squares itself, with no square root.": lam * squares.sqrt(),
        }
    expected = l2_penalty(model, lam).detach()
    if torch.isclose(value, expected):
        if not got.requires_grad:
            return "keep the result attached to the graph: don't convert to a Python float or detach."
        return None
    for hint, value_of_mistake in wrong.items():
        if torch.isclose(value, value_of_mistake):
            return hint
    return "the value is off: the penalty is lam * sum(w ** 2) over every weight matrix, biases skipped."
