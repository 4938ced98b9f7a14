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
    good = previous + 0.02 * torch.randn(500, generator=g).clamp(-1, 1)
    cases = [
        (good, True, "a healthy batch close to the previous one"),
        (torch.where(good > 0.7, float("nan"), good), False, "a batch with NaN values"),
        (good * 2, False, "a batch with values above 1"),
        (good - 0.3, False, "a batch with negative values"),
        ((good + 0.2).clamp(0, 1), False, "a batch whose mean moved by 0.2"),
    ]
    for new, expected, what in cases:
        if bool(answer(new, previous)) != expected:
            verdict = "accepted" if not expected else "rejected"
            return f"your function {verdict} {what}."
    return None
