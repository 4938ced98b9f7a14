"""Exercise of notebook 4.3.2: the population stability index, the skew check's distribution measure."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.checks import population_stability_index
from companion.exercises._registry import exercise


def _psi_solution(expected: torch.Tensor, actual: torch.Tensor) -> float:
    e = (expected / expected.sum()).clamp(min=1e-4)
    a = (actual / actual.sum()).clamp(min=1e-4)
    return float(((a - e) * torch.log(a / e)).sum())


def _variants(expected: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
    """What common mistakes compute on these histograms, with the hint for each."""
    e64, a64 = expected.double(), actual.double()
    e = (e64 / e64.sum()).clamp(min=1e-4)
    a = (a64 / a64.sum()).clamp(min=1e-4)
    e_counts, a_counts = e64.clamp(min=1e-4), a64.clamp(min=1e-4)
    e_late = e64.clamp(min=1e-4) / e64.clamp(min=1e-4).sum()
    a_late = a64.clamp(min=1e-4) / a64.clamp(min=1e-4).sum()
    return {
        "you used counts where PSI needs shares: divide each histogram by its total first.":
            float(((a_counts - e_counts) * torch.log(a_counts / e_counts)).sum()),
        "that is the KL divergence of actual from expected, sum(a * log(a / e)), one way only; "
        "PSI weighs each bin's log ratio by (a - e), which makes it symmetric.":
            float((a * torch.log(a / e)).sum()),
        "the log ratio is upside down: with log(e / a) every term is negative; PSI uses log(a / e), "
        "which has the sign of (a - e), so PSI is never negative.":
            float(((a - e) * torch.log(e / a)).sum()),
        "floor the shares at 1e-4 after dividing by the total, not the counts before: a floored "
        "count of 1e-4 is a share far below 1e-4.":
            float(((a_late - e_late) * torch.log(a_late / e_late)).sum()),
    }


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
        got = answer(expected.clone(), actual.clone())
        try:
            got = float(got)
        except (TypeError, ValueError, RuntimeError):
            return "return one number (a float)."
        want = population_stability_index(expected.numpy(), actual.numpy())

        def near(value: float, target: float) -> bool:
            return abs(value - target) <= 1e-4 * max(1.0, abs(target))

        if near(got, want):
            continue
        if not math.isfinite(got):
            return "an empty bin must not give an infinite value or NaN: floor each share at 1e-4."
        if want == 0:
            return "two identical histograms must give 0."
        for hint, value in _variants(expected, actual).items():
            if near(got, value) and not near(value, want):
                return hint
        return (f"for {expected.tolist()} vs {actual.tolist()} the PSI is not {got:.4g}: use shares, "
                "not counts, and sum (a - e) * log(a / e) over the bins.")
    return None
