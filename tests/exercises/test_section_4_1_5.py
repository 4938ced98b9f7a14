"""The 4.1.5 exercise: correct the probabilities of a model trained on downsampled negatives."""

from __future__ import annotations

import pytest

from companion.exercises import check, get_exercise
from companion.imbalance import correct_downsampled_probability

ID = "4.1.5-undo-downsampling"


def _grade(answer):
    return get_exercise(ID).grade(answer)


def test_the_solution_and_other_right_answers_pass():
    assert _grade(get_exercise(ID).solution) is None
    assert _grade(lambda p, factor: correct_downsampled_probability(p, factor=factor)) is None
    assert _grade(lambda p, factor: 1 / (1 + factor * (1 - p) / p.clamp(min=1e-300)) * (p > 0)) is None
    assert _grade(lambda p, factor: (p / (p + (1 - p) * factor)).tolist()) is None  # a list is fine too


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda p, f: p / f, "divide the odds"),
        (lambda p, f: p * f / (p * f + 1 - p), "multiplies the odds"),
        (lambda p, f: p.clone(), "inflated"),
        (lambda p, f: p / (1 - p) / f, "back into a probability"),
        (lambda p, f: p * f, "makes it larger"),
        (lambda p, f: (p / (1 - p) / f) / (1 + p / (1 - p) / f), "p = 0 or p = 1"),
        (lambda p, f: p[:-1] / (p[:-1] + (1 - p[:-1]) * f), "one probability per entry"),
        (lambda p, f: "p", "return a tensor"),
        (lambda p, f: p / (p + (1 - p) * f * 2), "divide the odds p / (1 - p) by the factor, then"),
    ],
)
def test_each_typical_mistake_gets_its_own_hint(answer, words):
    hint = _grade(answer)
    assert hint is not None and words in hint, hint


def test_check_prints_the_verdict(capsys):
    assert check(ID, get_exercise(ID).solution) is True
    assert check(ID, lambda p, f: p / f) is False
    assert "divide the odds" in capsys.readouterr().out
