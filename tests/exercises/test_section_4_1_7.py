"""The 4.1.7 exercise: the distillation loss."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from companion.distillation import distillation_loss, soft_targets
from companion.exercises import check, get_exercise

ID = "4.1.7-distillation-loss"


def _grade(answer):
    return get_exercise(ID).grade(answer)


def _kl_div(s, t, T, reduction="batchmean"):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction=reduction)


def test_the_solution_and_other_right_answers_pass():
    assert _grade(get_exercise(ID).solution) is None
    assert _grade(lambda s, t, T: distillation_loss(s, soft_targets(t, temperature=T), temperature=T)) is None
    assert _grade(_kl_div) is None
    assert _grade(lambda s, t, T: T * T * (F.softmax(t / T, 1) * (F.log_softmax(t / T, 1) - F.log_softmax(s / T, 1)))
                  .sum() / len(s)) is None


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda s, t, T: _kl_div(s, t, T) / T**2, "multiply the KL divergence by T\\*\\*2"),
        (lambda s, t, T: T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1), reduction="batchmean"),
         "soften the teacher"),
        (lambda s, t, T: T**2 * F.kl_div(F.log_softmax(s, 1), F.softmax(t / T, 1), reduction="batchmean"),
         "soften the student"),
        (lambda s, t, T: T**2 * F.kl_div(F.log_softmax(t / T, 1), F.softmax(s / T, 1), reduction="batchmean"),
         "wrong way round"),
        (lambda s, t, T: _kl_div(s, t, T) / s.shape[1], "batchmean"),  # what reduction="mean" computes
        (lambda s, t, T: _kl_div(s, t, T, reduction="none").sum(1), "scalar"),
        (lambda s, t, T: torch.zeros(()), "0 for every input"),
        (lambda s, t, T: T**2 * F.cross_entropy(s / T, t.argmax(1)), "compare with T\\*\\*2"),
        (lambda s, t, T: 1.5, "tensor with one value"),
    ],
)
def test_each_typical_mistake_gets_its_own_hint(answer, words):
    hint = _grade(answer)
    assert hint is not None and re.search(words, hint), hint


def test_check_prints_the_verdict(capsys):
    assert check(ID, get_exercise(ID).solution) is True
    assert check(ID, lambda s, t, T: _kl_div(s, t, T) / T**2) is False
    assert "T**2" in capsys.readouterr().out
