"""Exercise of notebook 4.4.4 (serving optimization and rollout): int8 quantization of a weight matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from companion.exercises._registry import exercise


def _quantize_solution(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    largest = float(w.abs().max())
    scale = largest / 127 if largest > 0 else 1.0  # the largest weight becomes +-127
    q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
    return q, scale


def _weights() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(64, 32, generator=generator) * 0.05
    w[3, 7] = -0.4  # the largest magnitude is negative: the range must be symmetric
    return {"weights": w, "a small matrix": torch.tensor([[0.5, -0.25], [0.1, 0.0]]),
            "a matrix of zeros": torch.zeros(3, 3)}


@exercise(
    "4.4.4-int8-weights",
    "Write quantize_int8(w) for a float weight tensor: return (q, scale) with q a torch.int8 tensor of "
    "w's shape and scale a positive float, such that q * scale approximates w as closely as int8 allows "
    "(symmetric: the weight of largest magnitude maps to +-127, each weight rounds to the nearest step).",
    solution=_quantize_solution,
)
def _grade_quantize(answer: Callable[[torch.Tensor], Any]) -> str | None:
    if not callable(answer):
        return "give a function quantize_int8(w) that returns (q, scale)."
    for what, w in _weights().items():
        result = answer(w.clone())
        if not (isinstance(result, tuple) and len(result) == 2):
            return "return a pair (q, scale): the int8 tensor and the float step it stands for."
        q, scale = result
        if not isinstance(q, torch.Tensor) or q.shape != w.shape:
            return "q must be a tensor of the same shape as w."
        if q.dtype == torch.uint8:
            return ("uint8 holds 0..255 and cannot store negative weights: use torch.int8 (-128..127) "
                    "with a symmetric range.")
        if q.dtype != torch.int8:
            return (f"q is {q.dtype}: store it as torch.int8 (one byte per weight, the point of "
                    "quantizing); round first, then convert with .to(torch.int8).")
        try:
            scale = float(scale)  # a float, an int or a one-element tensor
        except (TypeError, ValueError, RuntimeError):
            scale = None
        if scale is None or not 0 < scale < float("inf"):
            if what == "a matrix of zeros":
                return ("for a matrix of zeros max|w| is 0, and dividing by a scale of 0 gives NaN: use any "
                        "positive scale (e.g. 1.0) when every weight is 0.")
            return "scale must be one positive, finite float (the value of one int8 step)."
        restored = q.float() * scale
        largest = float(w.abs().max())
        if largest == 0:
            if q.any():
                return "a matrix of zeros must quantize to zeros."
            continue
        if (q.float() - w / scale).abs().max() > 64:
            return (f"on {what}, q * scale lands far from w (a sign flip?): values past +-127 wrap around "
                    "in int8. Scale by max|w| / 127 so the largest weight maps to exactly +-127.")
        if int(q.float().abs().max()) < 120:  # (int8 -128 has no int8 absolute value)
            return (f"on {what}, your largest |q| is {int(q.float().abs().max())}: you use only part of the int8 "
                    "range, so each step is coarser than it needs to be. Scale by max|w| / 127.")
        if abs(scale - largest / 127) > 1e-6 * largest:
            return ("the scale should be max|w| / 127 (the largest weight maps to +-127); yours is "
                    f"{scale:.4g}, not {largest / 127:.4g}.")
        error = (restored - w).abs().max()
        if error > scale / 2 + 1e-6:
            return (f"on {what}, some weights are off by up to {error / scale:.2f} steps: round to the "
                    "nearest step (torch.round), since .to(torch.int8) alone truncates toward zero.")
    return None
