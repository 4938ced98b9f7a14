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
        activations[1:, -1] = 0.0  # alive on one example only, and only just: still alive
        activations[0, -1] = 1e-3
        activations[-1, :] = 0.0  # an example that activates no unit: not a dead unit
        got = answer(activations.clone())
        try:
            got = int(got)
        except (TypeError, ValueError, RuntimeError):
            return "return one whole number."
        if got == dead:
            continue
        zero = activations == 0
        mistakes = [
            (int(zero.sum()), "count units (columns), not zero entries."),
            (int(zero.all(dim=1).sum()), "you counted examples (rows) that are 0 on every unit; a unit "
             "is a column: reduce over the examples, dim=0."),
            (units - dead, "you counted the units that are alive; the exercise asks for the dead ones."),
            (int(zero.any(dim=0).sum()), "you counted units that are 0 on some example, which every "
             "ReLU unit is now and then; a dead unit is 0 on every example."),
            (int((activations.mean(dim=0) < 1e-2).sum()), "a unit with a small but positive activation, "
             "even on a single example, is alive (it still gets gradient); dead means exactly 0 "
             "for every example."),
            (int((activations.max(dim=0).values < 1e-2).sum()), "a unit with a small but positive "
             "activation, even on a single example, is alive (it still gets gradient); dead means "
             "exactly 0 for every example."),
        ]
        for value, hint in mistakes:
            if got == value != dead:
                return hint
        return "a unit is dead only if its activation is 0 for every example (every row)."
    return None
