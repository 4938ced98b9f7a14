"""The 4.3.6 exercise: equalized_odds_gap, graded against fairlearn's equalized_odds_difference."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from companion.exercises import check, get_exercise
from companion.exercises.section_4_3_6 import _cases, _equalized_odds_gap_solution

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")

ID = "4.3.6-equalized-odds-gap"


def _fairlearn(y_true, y_pred, group):
    return fairlearn_metrics.equalized_odds_difference(y_true, y_pred, sensitive_features=group)


def _pandas(y_true, y_pred, group):
    frame = pd.DataFrame({"y": y_true, "p": y_pred, "g": group})
    rates = frame.groupby(["g", "y"])["p"].mean().unstack()  # rows: groups; columns: label 0 (FPR), 1 (TPR)
    return (rates.max() - rates.min()).max()


def _per_group(rate):
    def answer(y_true, y_pred, group):
        values = [rate(y_true[group == g], y_pred[group == g]) for g in np.unique(group)]
        return max(values) - min(values)
    return answer


def _tpr(t, p):
    return p[t == 1].mean()


def _fpr(t, p):
    return p[t == 0].mean()


def _combine(how):
    def answer(y_true, y_pred, group):
        return how(_per_group(_tpr)(y_true, y_pred, group), _per_group(_fpr)(y_true, y_pred, group))
    return answer


def _first_minus_second(y_true, y_pred, group):
    a, b = np.unique(group)[:2]
    return max(rate(y_true[group == a], y_pred[group == a]) - rate(y_true[group == b], y_pred[group == b])
               for rate in (_tpr, _fpr))


def _abs_first_minus_second(y_true, y_pred, group):
    a, b = np.unique(group)[:2]
    return max(abs(rate(y_true[group == a], y_pred[group == a]) - rate(y_true[group == b], y_pred[group == b]))
               for rate in (_tpr, _fpr))


def _over_all_rows(y_true, y_pred, group):
    return max(_per_group(lambda t, p: (p * t).mean())(y_true, y_pred, group),
               _per_group(lambda t, p: (p * (1 - t)).mean())(y_true, y_pred, group))


WRONG = [
    ("tpr only", _per_group(_tpr), r"true-positive rates alone.*equal opportunity"),
    ("fpr only", _per_group(_fpr), r"false-positive rates alone"),
    ("mean of the gaps", _combine(lambda a, b: (a + b) / 2), r"not their mean"),
    ("sum of the gaps", _combine(lambda a, b: a + b), r"not their sum"),
    ("selection rate", _per_group(lambda t, p: p.mean()), r"selection rates \(demographic parity\)"),
    ("accuracy", _per_group(lambda t, p: (t == p).mean()), r"gap in accuracy"),
    ("rates over all rows", _over_all_rows, r"divides by the group's positives"),
    ("signed difference", _first_minus_second, r"never negative"),
    ("two groups only", _abs_first_minus_second, r"over all groups"),
    ("not a number", lambda y, p, g: [0.2, 0.1], r"one number"),
    ("anything else", lambda y, p, g: 0.5, r"larger of the two spreads"),
]


def test_the_solution_is_fairlearns_equalized_odds_difference():
    rng = np.random.default_rng(1)
    cases = _cases() + [(rng.integers(0, 2, 500), rng.integers(0, 2, 500), rng.choice(list("pqrs"), 500))]
    for y_true, y_pred, group in cases:
        assert _equalized_odds_gap_solution(y_true, y_pred, group) == pytest.approx(_fairlearn(y_true, y_pred, group))


def test_the_cases_tell_the_two_rates_apart():
    # One case where the true-positive gap is the larger and one where the false-positive gap is: an answer
    # that computes only one of them passes at most one case.
    larger = {_per_group(_tpr)(*case) > _per_group(_fpr)(*case) for case in _cases()}
    assert larger == {True, False}


@pytest.mark.parametrize("answer", [_equalized_odds_gap_solution, _fairlearn, _pandas, _combine(max)],
                         ids=["solution", "fairlearn", "pandas", "max-of-gaps"])
def test_right_answers_pass(answer, capsys):
    assert check(ID, answer) is True, capsys.readouterr().out


@pytest.mark.parametrize(("answer", "words"), [pytest.param(a, w, id=name) for name, a, w in WRONG])
def test_wrong_answers_get_a_hint_about_their_mistake(answer, words, capsys):
    assert check(ID, answer) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {ID}: not yet. Hint: ") and out.count("\n") == 1, out
    assert re.search(words, out, flags=re.IGNORECASE | re.DOTALL), out


def test_the_grader_does_not_change_when_the_answer_edits_its_inputs():
    def vandal(y_true, y_pred, group):
        value = _equalized_odds_gap_solution(y_true, y_pred, group)
        y_true[:] = 0
        group[:] = "A"
        return value

    assert get_exercise(ID).grade(vandal) is None
