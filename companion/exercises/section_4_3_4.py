"""Exercise of notebook 4.3.4: count dead ReLU units from a layer's activations."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _count_dead_units_solution(activations: torch.Tensor) -> int:
    alive = (activations > 0).any(dim=0)  # a unit is alive if some example makes it positive
    return int((~alive).sum())


@exercise(
    "4.3.4-count-dead-units",
    "Write count_dead_units(activations): for a ReLU layer's outputs of shape (N, U), the number "
    "of units that are 0 for every example.",
    solution=_count_dead_units_solution,
)
def _grade_count_dead_units(answer: Callable[[torch.Tensor], int]) -> str | None:
    g = torch.Generator().manual_seed(0)
    for n, units, dead in ((10, 6, 2), (50, 20, 7), (5, 4, 0)):
        activations = torch.relu(torch.randn(n, units, generator=g))
        activations[:, :dead] = 0.0
        activations[0, dead:] = 1.0  # every other unit fires at least once
        activations[1:, -1] = 0.0  # alive on one example only: still alive
        got = answer(activations)
        try:
            got = int(got)
        except (TypeError, ValueError):
            return "return one whole number."
        if got == n * units - int((activations > 0).sum()):
            return "count units (columns), not zero entries."
        if got != dead:
            return "a unit is dead only if its activation is 0 for every example (every row)."
    return None
