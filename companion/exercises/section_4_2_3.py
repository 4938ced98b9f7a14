"""Exercise of notebook 4.2.3: precision and recall from their definitions."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._registry import exercise
from companion.exercises._shortcuts import call_without

_SKLEARN_METRICS = (
    "sklearn.metrics.precision_score",
    "sklearn.metrics.recall_score",
    "sklearn.metrics.precision_recall_fscore_support",
    "sklearn.metrics._classification.multilabel_confusion_matrix",  # what all of them count with
)


def _precision_recall_solution(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[float, float]:
    tp = ((y_true == 1) & (y_pred == 1)).sum().item()
    predicted_positives = (y_pred == 1).sum().item()
    actual_positives = (y_true == 1).sum().item()
    precision = tp / predicted_positives if predicted_positives else 0.0  # nothing called positive
    recall = tp / actual_positives if actual_positives else 0.0  # nothing to find
    return precision, recall


@exercise(
    "4.2.3-precision-recall",
    "Write precision_recall(y_true, y_pred) returning (precision, recall) for binary 0/1 tensors, "
    "from their definitions (not with scikit-learn); a ratio whose denominator is 0 is 0.0.",
    solution=_precision_recall_solution,
)
def _grade_precision_recall(answer: Callable[..., tuple[float, float]]) -> str | None:
    from sklearn.metrics import precision_score, recall_score

    g = torch.Generator().manual_seed(0)
    cases: list[tuple[torch.Tensor, torch.Tensor, str | None]] = [
        ((torch.rand(200, generator=g) < 0.2).long(), (torch.rand(200, generator=g) < 0.4).long(), None)
        for _ in range(5)
    ]
    cases += [  # the special cases: a denominator of 0
        (torch.tensor([1, 0, 1, 0, 0, 1]), torch.zeros(6, dtype=torch.long),
         "when the model predicts no positive at all, precision's denominator (TP + FP) is 0: "
         "return 0.0 for it then, scikit-learn's convention."),
        (torch.zeros(6, dtype=torch.long), torch.tensor([1, 0, 1, 0, 0, 0]),
         "when y_true holds no positive at all, recall's denominator (TP + FN) is 0: "
         "return 0.0 for it then, scikit-learn's convention."),
    ]
    for y_true, y_pred, special in cases:
        try:
            got, used = call_without(_SKLEARN_METRICS, answer, y_true.clone(), y_pred.clone())
        except ZeroDivisionError:
            return special or "you divided by zero: a count you divide by is 0 here."
        if used:
            return (
                "compute precision and recall from their definitions, with counts of true and false "
                "positives: scikit-learn's metrics are switched off while this exercise is graded."
            )
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return "return a pair (precision, recall)."
        p, r = float(got[0]), float(got[1])
        if not (math.isfinite(p) and math.isfinite(r)):
            return special or "you return NaN or inf: a count you divide by is 0 here."
        expected_p = precision_score(y_true.numpy(), y_pred.numpy(), zero_division=0.0)
        expected_r = recall_score(y_true.numpy(), y_pred.numpy(), zero_division=0.0)
        if abs(p - expected_r) < 1e-6 and abs(r - expected_p) < 1e-6 and expected_p != expected_r:
            return "precision and recall are swapped."
        if abs(p - expected_p) > 1e-6:
            return special or "precision is off: which examples did the model call positive?"
        if abs(r - expected_r) > 1e-6:
            return special or "recall is off: which examples are actually positive?"
    return None
