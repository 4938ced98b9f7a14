"""Exercise of notebook 4.4.2 (hardware accelerators): count an MLP's matrix arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from companion.exercises._registry import exercise


def _mlp_flops_solution(widths: Sequence[int], batch_size: int) -> int:
    # each Linear(n_in, n_out) does batch_size * n_in * n_out multiply-adds = 2x that in FLOPs
    return sum(2 * batch_size * n_in * n_out for n_in, n_out in zip(widths[:-1], widths[1:], strict=False))


def _counted(widths: Sequence[int], batch_size: int) -> int:
    """PyTorch's own FLOP counter on a real MLP forward pass: the oracle."""
    layers = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=False)]
    model = nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())][:-1])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(batch_size, widths[0]))
    return int(counter.get_total_flops())


@exercise(
    "4.4.2-mlp-flops",
    "Write mlp_flops(widths, batch_size): the floating-point operations of the matrix products in "
    "one forward pass of an MLP whose layer widths are `widths` (count a multiply-add as 2 FLOPs).",
    solution=_mlp_flops_solution,
)
def _grade_mlp_flops(answer: Callable[[Sequence[int], int], int]) -> str | None:
    for widths, batch in (([4, 3], 2), ([8, 16, 2], 5), ([32, 64, 64, 10], 128)):
        got, expected = answer(list(widths), batch), _counted(widths, batch)
        if got == expected / 2:
            return "you counted multiply-adds; a multiply-add is 2 FLOPs."
        if got != expected:
            return (
                f"for widths {widths} and batch {batch} PyTorch's FLOP counter says {expected:,}, "
                f"you said {got}. One Linear(n_in, n_out) multiplies a (batch, n_in) by an "
                "(n_in, n_out) matrix."
            )
    return None
