"""Exercise of notebook 4.2.1: verify a batch of offline predictions before pushing it."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _ok_to_push_solution(new: torch.Tensor, previous: torch.Tensor) -> bool:
    if not torch.isfinite(new).all():
        return False
    if ((new < 0) | (new > 1)).any():
        return False
    return abs(float(new.mean()) - float(previous.mean())) <= 0.1


@exercise(
    "4.2.1-ok-to-push",
    "Write ok_to_push(new, previous): False if any new probability is NaN/infinite or outside "
    "[0, 1], or if the mean moved by more than 0.1 from the previous batch's mean; else True.",
    solution=_ok_to_push_solution,
)
def _grade_ok_to_push(answer: Callable[[torch.Tensor, torch.Tensor], bool]) -> str | None:
    g = torch.Generator().manual_seed(0)
    previous = torch.rand(500, generator=g) * 0.5 + 0.25
    good = (previous + 0.02 * torch.randn(500, generator=g)).clamp(0.01, 0.99)

    def with_values(*values: float) -> torch.Tensor:  # the healthy batch, its first values replaced
        batch = good.clone()
        batch[: len(values)] = torch.tensor(values)
        return batch

    # (batch, expected verdict, the hint when the answer gets it wrong); each bad batch breaks one rule
    cases = [
        (good, True, "a healthy batch close to the previous one."),
        (with_values(0.0, 1.0), True,
         "a healthy batch that contains exactly 0.0 and 1.0: the range [0, 1] includes its ends."),
        (with_values(float("nan")), False,
         "a batch with one NaN. Every comparison with NaN is False, so range checks let it through "
         "and a test like `moved > 0.1` does too: test torch.isfinite first."),
        (with_values(float("inf")), False, "a batch with an infinite value: test torch.isfinite."),
        (with_values(1.2), False,
         "a batch with one value of 1.2 although its mean hardly moved: check every value, "
         "not only the mean."),
        (with_values(-0.2), False,
         "a batch with one value of -0.2 although its mean hardly moved: check every value, "
         "not only the mean."),
        ((good + 0.2).clamp(0, 1), False, "a batch whose mean rose by 0.2."),
        ((good - 0.2).clamp(0, 1), False,
         "a batch whose mean dropped by 0.2: a move in either direction counts (take the absolute "
         "difference)."),
        (good + 0.05, True, "a batch whose mean moved by only 0.05, within the 0.1 allowed."),
    ]
    for new, expected, what in cases:
        verdict = answer(new.clone(), previous.clone())
        if verdict is None or (hasattr(verdict, "numel") and verdict.numel() != 1):
            return "return True or False (one verdict for the whole batch)."
        if bool(verdict) != expected:
            return f"your function {'accepted' if not expected else 'rejected'} {what}"
    return None
