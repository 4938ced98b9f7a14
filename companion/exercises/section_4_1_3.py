"""Exercises of notebook 4.1.3 (transfer learning): freezing a module."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from companion.exercises._registry import exercise


def _freeze_solution(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        parameter.requires_grad_(False)  # no gradient, so no optimizer can change it
    return module


@exercise(
    "4.1.3-freeze",
    "Write freeze(module): make every parameter of module untrainable and return the module itself.",
    solution=_freeze_solution,
)
def _grade_freeze(answer: Callable[[nn.Module], nn.Module]) -> str | None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)))
    before = [p.detach().clone() for p in module.parameters()]
    returned = answer(module)
    if returned is not module:
        return "return the module you were given (the same object, not a copy), so it can be used inline."
    trainable = sum(p.requires_grad for p in module.parameters())
    total = len(before)
    if trainable and vars(module).get("requires_grad") is False:
        return (
            "module.requires_grad = False only sets a new attribute on the module object; autograd "
            "reads requires_grad on each parameter (module.requires_grad_(False) sets them all)."
        )
    if trainable and not module.training:
        return (
            "eval() switches dropout and batch norm to inference behaviour but leaves every parameter "
            "trainable: turn off requires_grad on the parameters."
        )
    if trainable:
        return (f"{trainable} of the {total} parameter tensors are still trainable: visit all of them, "
                "including those of nested layers (module.parameters() recurses).")
    if any(not torch.equal(a, p) for a, p in zip(before, module.parameters(), strict=True)):
        return "freezing must not change the weights' values, only whether they can be trained."
    return None
