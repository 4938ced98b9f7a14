"""The 4.1.6 exercise: choose the confident pseudo-labels from a model's logits."""

from __future__ import annotations

import pytest
import torch

from companion.exercises import check, get_exercise

ID = "4.1.6-pseudo-labels"


def _grade(answer):
    return get_exercise(ID).grade(answer)


def _where(logits, threshold):
    probabilities = torch.softmax(logits, dim=1)
    keep = probabilities.max(dim=1).values >= threshold
    return keep.nonzero().squeeze(1), probabilities.argmax(dim=1)[keep]


def _loop(logits, threshold):
    indices, labels = [], []
    for i, row in enumerate(logits):
        p = torch.exp(row - row.max())
        p = p / p.sum()
        if p.max() >= threshold:
            indices.append(i)
            labels.append(int(p.argmax()))
    return torch.tensor(indices, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def test_the_solution_and_other_right_answers_pass():
    assert _grade(get_exercise(ID).solution) is None
    assert _grade(_where) is None
    assert _grade(_loop) is None


def _confidence(logits):
    return torch.softmax(logits, dim=1).max(dim=1)


def _by_logit(logits, threshold):
    values, predicted = logits.max(dim=1)
    keep = (values >= threshold).nonzero().squeeze(1)
    return keep, predicted[keep]


def _by_column(logits, threshold):
    values, predicted = torch.softmax(logits, dim=0).max(dim=1)
    keep = (values >= threshold).nonzero().squeeze(1)
    return keep, predicted[keep]


def _strict(logits, threshold):
    values, predicted = _confidence(logits)
    keep = (values > threshold).nonzero().squeeze(1)
    return keep, predicted[keep]


def _mask(logits, threshold):
    values, predicted = _confidence(logits)
    return values >= threshold, predicted[values >= threshold]


def _everything(logits, threshold):
    return torch.arange(len(logits)), _confidence(logits)[1]


def _reversed(logits, threshold):
    indices, labels = _where(logits, threshold)
    return indices.flip(0), labels.flip(0)


def _confidence_as_labels(logits, threshold):
    values, _ = _confidence(logits)
    keep = (values >= threshold).nonzero().squeeze(1)
    return keep, values[keep]


def _least_likely(logits, threshold):
    values, _ = _confidence(logits)
    keep = (values >= threshold).nonzero().squeeze(1)
    return keep, logits.argmin(dim=1)[keep]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (_by_logit, "logits are not probabilities"),
        (_by_column, "dim=1"),
        (_strict, ">="),
        (_mask, "boolean mask"),
        (_everything, "kept every row"),
        (_reversed, "increasing order"),
        (_confidence_as_labels, "integer tensors"),
        (_least_likely, "predicted class"),
        (lambda logits, threshold: _where(logits, threshold)[0], "pair"),
        (lambda logits, threshold: ([0], [1]), "two tensors"),
        (lambda logits, threshold: (_where(logits, threshold)[0], _where(logits, threshold)[1][:-1]),
         "same length"),
    ],
)
def test_each_typical_mistake_gets_its_own_hint(answer, words):
    hint = _grade(answer)
    assert hint is not None and words in hint, hint


def test_check_prints_the_verdict(capsys):
    assert check(ID, get_exercise(ID).solution) is True
    assert check(ID, _by_logit) is False
    assert check(ID, None) is False
    assert "logits are not probabilities" in capsys.readouterr().out
