"""Exercise of notebook 4.1.5: undo the prior shift of a model trained on downsampled negatives."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _correct_probability_solution(p: torch.Tensor, factor: float) -> torch.Tensor:
    # Downsampling multiplied the odds of a positive by `factor`; Bayes' rule divides them back.
    return p / (p + (1 - p) * factor)


def _cases() -> list[tuple[torch.Tensor, float]]:
    g = torch.Generator().manual_seed(0)
    p = torch.cat([torch.rand(50, generator=g, dtype=torch.float64), torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)])
    return [(p, 10.0), (p, 4.0), (torch.tensor([0.2, 0.9], dtype=torch.float64), 1.0)]


@exercise(
    "4.1.5-undo-downsampling",
    "Write correct_probability(p, factor): a model was trained on data where one negative in `factor` "
    "was kept, without weights; return its probabilities p (a tensor) corrected for the original data.",
    solution=_correct_probability_solution,
)
def _grade_correct_probability(answer: Callable[[torch.Tensor, float], torch.Tensor]) -> str | None:
    for p, factor in _cases():
        got = answer(p.clone(), factor)
        try:
            got = torch.as_tensor(got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return "return a tensor of probabilities, one per entry of p."
        if got.shape != p.shape:
            return f"return one probability per entry of p: shape {tuple(p.shape)}, not {tuple(got.shape)}."
        expected = _correct_probability_solution(p, factor)
        if torch.allclose(got, expected, atol=1e-9, equal_nan=False):
            continue
        inner = (p > 0) & (p < 1)
        if not torch.isfinite(got).all() and torch.allclose(got[inner], expected[inner], atol=1e-9):
            return "at p = 0 or p = 1 your answer gives nan or inf: write it as p / (p + (1 - p) * factor)."
        odds = p / (1 - p)
        mistakes = [
            (p / factor, "dividing the probability by the factor is only close for tiny p: it is the odds that "
             "downsampling multiplied, so divide the odds."),
            (p * factor / (p * factor + 1 - p), "that multiplies the odds by the factor, which is what "
             "downsampling already did: divide them instead."),
            (p, "the model's probabilities are inflated: the negatives it saw were `factor` times too rare."),
            (odds / factor, "that is the corrected odds: turn odds o back into a probability, o / (1 + o)."),
            (p * factor, "multiplying the probability makes it larger still; the correction must make it smaller."),
        ]
        for value, hint in mistakes:
            close = torch.isclose(got[inner], value[inner], atol=1e-9).all()
            if close and not torch.allclose(value[inner], expected[inner], atol=1e-9):
                return hint
        return "divide the odds p / (1 - p) by the factor, then turn the odds back into a probability."
    return None
