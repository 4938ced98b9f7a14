"""Tests for the exercise of notebook 4.4.5: the learning rate of a scaled-up job."""

from __future__ import annotations

import math

import pytest

from companion.exercises import check, get_exercise


def _right(step, base_lr, base_batch_size, batch_size, warmup_steps):
    target = base_lr * batch_size / base_batch_size
    return target * min(1.0, (step + 1) / warmup_steps) if warmup_steps else target


def test_the_solution_and_a_right_answer_pass():
    grade = get_exercise("4.4.5-large-batch-lr")
    assert grade.grade(grade.solution) is None
    assert grade.grade(_right) is None
    assert check("4.4.5-large-batch-lr", _right) is True


def _ramp(step, warmup_steps):
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


@pytest.mark.parametrize(
    ("answer", "feedback"),
    [
        (lambda step, lr, b0, b, w: lr * _ramp(step, w), "the rate is not scaled"),
        (lambda step, lr, b0, b, w: lr * b0 / b * _ramp(step, w), "upside down"),
        (lambda step, lr, b0, b, w: lr * math.sqrt(b / b0) * _ramp(step, w), "square-root rule"),
        (lambda step, lr, b0, b, w: lr * b / b0 * min(1.0, step / w) if w else lr * b / b0, "use (step + 1)"),
        (lambda step, lr, b0, b, w: lr * b / b0 * (step + 1) / w if w else lr * b / b0, "keep growing"),
        (lambda step, lr, b0, b, w: lr * b / b0, "it is not there yet"),
        (lambda step, lr, b0, b, w: lr * b / b0 * min(1.0, (step + 1) / w), "don't divide by 0"),
        (lambda step, lr, b0, b, w: f"{lr * b / b0 * _ramp(step, w)}x", "return the learning rate as a number"),
        (lambda step, lr, b0, b, w: 2 * lr * b / b0 * _ramp(step, w), "returned 0.32 where 0.16 was expected."),
    ],
)
def test_each_typical_mistake_gets_its_feedback(answer, feedback):
    message = get_exercise("4.4.5-large-batch-lr").grade(answer)
    assert message is not None and feedback in message, message
