"""Exercise of notebook 4.3.6: the equalized-odds gap of a classifier's decisions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from companion.exercises._registry import exercise


def _equalized_odds_gap_solution(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> float:
    y_true, y_pred, group = np.asarray(y_true), np.asarray(y_pred), np.asarray(group)
    tpr, fpr = [], []
    for g in np.unique(group):
        truth, decision = y_true[group == g], y_pred[group == g]
        tpr.append(decision[truth == 1].mean())  # true-positive rate: among the group's positives
        fpr.append(decision[truth == 0].mean())  # false-positive rate: among the group's negatives
    return float(max(max(tpr) - min(tpr), max(fpr) - min(fpr)))


def _rates(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group rates, in the order of ``np.unique(group)``: the grader's catalogue of mistakes."""
    names = np.unique(group)
    pick = [(y_true[group == g], y_pred[group == g]) for g in names]
    return {
        "tpr": np.array([d[t == 1].mean() for t, d in pick]),
        "fpr": np.array([d[t == 0].mean() for t, d in pick]),
        "selection": np.array([d.mean() for t, d in pick]),
        "accuracy": np.array([(d == t).mean() for t, d in pick]),
        "fp_share": np.array([(d * (1 - t)).mean() for t, d in pick]),  # FP / all rows, not / negatives
        "tp_share": np.array([(d * t).mean() for t, d in pick]),
    }


def _spread(values: np.ndarray) -> float:
    return float(values.max() - values.min())


def _cases() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    cases = []
    for names, base_rates, bars in ((("A", "B"), (0.5, 0.2), (0.0, 0.8)),
                                    (("north", "south", "west"), (0.6, 0.3, 0.4), (-0.8, 0.0, 0.5))):
        group = rng.choice(np.array(names), size=3000)
        index = np.searchsorted(np.array(names), group)
        y_true = (rng.random(3000) < np.array(base_rates)[index]).astype(int)
        score = y_true * 1.5 + rng.normal(size=3000)
        y_pred = (score > 0.5 + np.array(bars)[index]).astype(int)  # each group held to its own bar
        cases.append((y_true, y_pred, group))
    # Swap the names: A becomes the group held to the higher bar, so A's rates minus B's are negative.
    y_true, y_pred, group = cases[0]
    cases[0] = (y_true, y_pred, np.where(group == "A", "B", "A"))
    return cases


@exercise(
    "4.3.6-equalized-odds-gap",
    "Write equalized_odds_gap(y_true, y_pred, group): the larger of the spreads across groups "
    "(largest minus smallest) of the true-positive rate and of the false-positive rate.",
    solution=_equalized_odds_gap_solution,
)
def _grade_equalized_odds_gap(answer: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]) -> str | None:
    for y_true, y_pred, group in _cases():
        got = answer(y_true.copy(), y_pred.copy(), group.copy())
        try:
            got = float(got)
        except (TypeError, ValueError):
            return "return one number (a float)."
        expected = _equalized_odds_gap_solution(y_true, y_pred, group)

        def near(a: float, b: float) -> bool:
            return abs(a - b) <= 1e-6

        if near(got, expected):
            continue
        r = _rates(y_true, y_pred, group)
        first_minus_second = {k: float(v[0] - v[1]) for k, v in r.items()}
        one_pair = ("a gap is the largest rate minus the smallest over all groups (never negative), not "
                    "one group's rate minus another's.")
        mistakes = [
            (_spread(r["tpr"]), "that is the gap in true-positive rates alone (equal opportunity): "
             "equalized odds also compares false-positive rates, and takes the larger gap."),
            (_spread(r["fpr"]), "that is the gap in false-positive rates alone: equalized odds also "
             "compares true-positive rates, and takes the larger gap."),
            ((_spread(r["tpr"]) + _spread(r["fpr"])) / 2, "take the larger of the two gaps (the worst "
             "case), not their mean."),
            (_spread(r["tpr"]) + _spread(r["fpr"]), "take the larger of the two gaps, not their sum."),
            (_spread(r["selection"]), "that is the gap in selection rates (demographic parity): "
             "equalized odds compares rates among each group's positives and among its negatives."),
            (_spread(r["accuracy"]), "that is the gap in accuracy: compare true- and false-positive rates."),
            (max(_spread(r["tp_share"]), _spread(r["fp_share"])), "a true-positive rate divides by the "
             "group's positives and a false-positive rate by its negatives, not by all the group's rows."),
            (max(first_minus_second["tpr"], first_minus_second["fpr"]), one_pair),
            (max(abs(first_minus_second["tpr"]), abs(first_minus_second["fpr"])), one_pair),
        ]
        for value, hint in mistakes:
            if near(got, value) and not near(value, expected):
                return hint
        return ("for each group compute the true-positive rate (among its positives) and the "
                "false-positive rate (among its negatives); return the larger of the two spreads.")
    return None
