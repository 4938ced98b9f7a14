"""The 4.4.4 exercise: symmetric int8 quantization of a weight matrix."""

from __future__ import annotations

import pytest
import torch

from companion.exercises import check, get_exercise

ID = "4.4.4-int8-weights"


def _grade(answer):
    return get_exercise(ID).grade(answer)


def _scale(w):
    return float(w.abs().max()) / 127 or 1.0


def test_the_solution_and_other_right_answers_pass():
    assert _grade(get_exercise(ID).solution) is None
    assert _grade(lambda w: (torch.round(w / _scale(w)).to(torch.int8), torch.tensor(_scale(w)))) is None
    assert _grade(lambda w: ((w * (1 / _scale(w))).round().clamp(-128, 127).to(torch.int8), _scale(w))) is None


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda w: ((w / _scale(w)).round().to(torch.uint8), _scale(w)), "uint8 holds 0..255"),
        (lambda w: ((w / _scale(w)).round(), _scale(w)), "store it as torch.int8"),
        (lambda w: ((w / _scale(w)).to(torch.int8), _scale(w)), "round to the nearest step"),
        (lambda w: ((w / (float(w.abs().max()) / 255 or 1)).round().to(torch.int8), 1.0), "wrap around"),
        (lambda w: ((w / (2 * _scale(w))).round().to(torch.int8), 2 * _scale(w)), "only part of the int8 range"),
        (lambda w: ((w / (float(w.abs().max()) / 128 or 1)).round().clamp(-128, 127).to(torch.int8),
                    float(w.abs().max()) / 128 or 1), "should be max|w| / 127"),
        (lambda w: ((w / (w.abs().max() / 127)).round().to(torch.int8), float(w.abs().max()) / 127),
         "matrix of zeros"),
        (lambda w: (w / _scale(w)).round().to(torch.int8), "return a pair"),
        (lambda w: ((w / _scale(w)).round().to(torch.int8)[:2], _scale(w)), "same shape"),
        (lambda w: ((w / _scale(w)).round().to(torch.int8), -_scale(w)), "positive, finite float"),
        ("quantize", "give a function"),
    ],
)
def test_each_typical_mistake_gets_its_own_hint(answer, words):
    hint = _grade(answer)
    assert hint is not None and words in hint, hint


def test_check_prints_the_verdict(capsys):
    assert check(ID, get_exercise(ID).solution) is True
    assert check(ID, lambda w: ((w / _scale(w)).to(torch.int8), _scale(w))) is False
    assert "round to the nearest step" in capsys.readouterr().out
