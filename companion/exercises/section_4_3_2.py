"""Exercise of notebook 4.3.2: the population stability index, the skew check's distribution measure."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.checks import population_stability_index
from companion.exercises._registry import exercise


def _psi_solution(expected: torch.Tensor, actual: torch.Tensor) -> float:
    e = (expected / expected.sum()).clamp(min=1e-4)
    a = (actual / actual.sum()).clamp(min=1e-4)
    return float(((a - e) * torch.log(a / e)).sum())


@exercise(
    "4.3.2-psi",
    "Write psi(expected, actual): the population stability index of two histograms of counts.",
    solution=_psi_solution,
)
def _grade_psi(answer: Callable[[torch.Tensor, torch.Tensor], float]) -> str | None:
    cases = [
        (torch.tensor([50.0, 50.0]), torch.tensor([50.0, 50.0])),
        (torch.tensor([50.0, 50.0]), torch.tensor([80.0, 20.0])),
        (torch.tensor([10.0, 30.0, 60.0]), torch.tensor([200.0, 300.0, 500.0])),
        (torch.tensor([5.0, 0.0, 95.0]), torch.tensor([30.0, 40.0, 30.0])),
    ]
    for expected, actual in cases:
        got = float(answer(expected, actual))
        want = population_stability_index(expected.numpy(), actual.numpy())
        if abs(got - want) > 1e-4 * max(1.0, abs(want)):
            if expected[1] == 0:
                return "an empty bin must not give an infinite value: floor the shares at 1e-4."
            if want == 0:
                return "two identical histograms must give 0."
            return (f"for {expected.tolist()} vs {actual.tolist()} the PSI is not {got:.4g}: use shares, "
                    "not counts, and sum (a - e) * log(a / e) over the bins.")
    return None
