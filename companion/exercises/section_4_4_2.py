"""Exercise of notebook 4.4.2 (hardware accelerators): count an MLP's matrix arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from companion.exercises._registry import exercise
from companion.exercises._shortcuts import call_without


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
    "one forward pass of an MLP whose layer widths are `widths` (count a multiply-add as 2 FLOPs), "
    "by hand rather than with PyTorch's FLOP counter.",
    solution=_mlp_flops_solution,
)
def _grade_mlp_flops(answer: Callable[[Sequence[int], int], int]) -> str | None:
    for widths, batch in (([8, 16, 2], 7), ([32, 64, 64, 10], 128), ([4, 3], 3)):
        got, used = call_without(("torch.utils.flop_counter.FlopCounterMode.__init__",), answer, list(widths), batch)
        if used:
            return (
                "count the FLOPs yourself, from the layers' shapes: PyTorch's FlopCounterMode (the "
                "grader's oracle) is switched off while your answer runs."
            )
        try:
            got = float(got)
        except (TypeError, ValueError):
            return "return one number: the FLOPs of one forward pass."
        expected = _counted(widths, batch)
        if got == expected:
            continue
        pairs = list(zip(widths[:-1], widths[1:], strict=False))
        products = [2 * batch * n_in * n_out for n_in, n_out in pairs]
        mistakes = [
            (expected / 2, "you counted multiply-adds; a multiply-add is 2 FLOPs."),
            (expected / batch, "the count does not grow with the batch: every row of the batch goes "
             "through every layer, so multiply by batch_size."),
            (expected / (2 * batch), "that is the number of weights, not of FLOPs: each weight does a "
             "multiply-add (2 FLOPs) for every row of the batch."),
            (expected + sum(batch * n_out for _, n_out in pairs), "count only the matrix products: the "
             "bias additions (and the ReLUs) are not part of them."),
            (expected - products[-1], "you left out the last layer: widths of length L + 1 describe L "
             "Linear layers, one per consecutive pair."),
            (expected - products[0], "you left out the first layer: widths of length L + 1 describe L "
             "Linear layers, one per consecutive pair."),
        ]
        for value, hint in mistakes:
            if got == value != expected and value:
                return hint
        return (
            f"for widths {widths} and batch {batch} PyTorch's FLOP counter says {expected:,}, "
            f"you said {got:g}. One Linear(n_in, n_out) multiplies a (batch, n_in) by an "
            "(n_in, n_out) matrix."
        )
    return None
