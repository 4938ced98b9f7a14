"""Exercise of notebook 4.2.3: precision and recall from their definitions."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _precision_recall_solution(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[float, float]:
    tp = ((y_true == 1) & (y_pred == 1)).sum().item()
    predicted_positives = (y_pred == 1).sum().item()
    actual_positives = (y_true == 1).sum().item()
    return tp / predicted_positives, tp / actual_positives


@exercise(
    "4.2.3-precision-recall",
    "Write precision_recall(y_true, y_pred) returning (precision, recall) for binary 0/1 tensors.",
    solution=_precision_recall_solution,
)
def _grade_precision_recall(answer: Callable[..., tuple[float, float]]) -> str | None:
    from sklearn.metrics import precision_score, recall_score

    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        y_true = (torch.rand(200, generator=g) < 0.2).long()
        y_pred = (torch.rand(200, generator=g) < 0.4).long()
        got = answer(y_true, y_pred)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return "return a pair (precision, recall)."
        p, r = float(got[0]), float(got[1])
        expected_p = precision_score(y_true.numpy(), y_pred.numpy())
        expected_r = recall_score(y_true.numpy(), y_pred.numpy())
        if abs(p - expected_r) < 1e-9 and abs(r - expected_p) < 1e-9 and expected_p != expected_r:
            return "precision and recall are swapped."
        if abs(p - expected_p) > 1e-9:
            return "precision is off: which examples did the model call positive?"
        if abs(r - expected_r) > 1e-9:
            return "recall is off: which examples are actually positive?"
    return None
