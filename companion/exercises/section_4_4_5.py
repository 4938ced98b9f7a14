"""Exercise of notebook 4.4.5 (distributed strategies): the learning rate of a scaled-up job."""

from __future__ import annotations

import math
from collections.abc import Callable

from companion.exercises._registry import exercise


def _large_batch_lr_solution(
    step: int, base_lr: float, base_batch_size: int, batch_size: int, warmup_steps: int
) -> float:
    target = base_lr * batch_size / base_batch_size  # linear scaling rule
    if warmup_steps == 0:
        return target
    return target * min(1.0, (step + 1) / warmup_steps)  # ramp, then hold


# (step, base_lr, base_batch_size, batch_size, warmup_steps): scaled up, during and after the warm-up, without one,
# and at the base batch size.
_CASES = [
    (0, 0.1, 32, 256, 5), (2, 0.1, 32, 256, 5), (4, 0.1, 32, 256, 5), (10, 0.1, 32, 256, 5),
    (3, 0.05, 16, 64, 0), (0, 0.2, 64, 64, 4), (7, 0.2, 64, 64, 4), (1, 0.01, 8, 1024, 10),
]


@exercise(
    "4.4.5-large-batch-lr",
    "Write large_batch_lr(step, base_lr, base_batch_size, batch_size, warmup_steps): the rate at step `step` "
    "(from 0) under the linear scaling rule with a linear warm-up of `warmup_steps` steps (0: none).",
    solution=_large_batch_lr_solution,
)
def _grade_large_batch_lr(answer: Callable[[int, float, int, int, int], float]) -> str | None:
    for case in _CASES:
        step, base_lr, base_batch, batch, warmup = case
        try:
            got = answer(*case)
        except ZeroDivisionError:
            return "with warmup_steps = 0 there is no warm-up: return the scaled rate, don't divide by 0."
        try:
            got = float(got)
        except (TypeError, ValueError):
            return f"return the learning rate as a number; for {case} you returned {got!r}."
        expected = _large_batch_lr_solution(*case)
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        k = batch / base_batch
        factor = min(1.0, (step + 1) / warmup) if warmup else 1.0
        call = (f"large_batch_lr({step}, {base_lr}, {base_batch}, {batch}, {warmup}) "
                f"returned {got:.6g} where {expected:.6g} was expected")
        if math.isclose(got, base_lr * factor, rel_tol=1e-6) and k != 1:
            return f"{call}: the rate is not scaled; multiply base_lr by batch_size / base_batch_size."
        if math.isclose(got, base_lr / k * factor, rel_tol=1e-6):
            return f"{call}: the scaling is upside down; a larger batch needs a larger rate."
        if math.isclose(got, base_lr * math.sqrt(k) * factor, rel_tol=1e-6):
            return f"{call}: that is the square-root rule; the linear rule multiplies by k itself."
        if warmup and math.isclose(got, base_lr * k * (step / warmup), rel_tol=1e-6):
            return f"{call}: at step 0 the rate must be 1 / warmup_steps of the target, not 0: use (step + 1)."
        if warmup and step >= warmup and math.isclose(got, base_lr * k * (step + 1) / warmup, rel_tol=1e-6):
            return f"{call}: after the warm-up the rate must stay at the scaled rate, not keep growing."
        if warmup and step < warmup - 1 and math.isclose(got, base_lr * k, rel_tol=1e-6):
            return f"{call}: during the warm-up the rate ramps up to the scaled rate; it is not there yet."
        return f"{call}."
    return None
