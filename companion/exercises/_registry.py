"""The registry behind :func:`check` and :func:`quiz`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from companion._validation import check_callable, check_instance, message

Checker = Callable[[Any], "str | None"]
"""Grades an answer: returns ``None`` when it is right, else a hint for the reader."""


@dataclass(frozen=True)
class Exercise:
    """A graded coding exercise: its id, what it asks, its grader and a model solution.

    The solution is what the notebook's ``<details>`` block shows; the test suite
    checks that the grader accepts it.
    """

    exercise_id: str
    prompt: str
    grade: Checker
    solution: Any


_EXERCISES: dict[str, Exercise] = {}


def exercise(exercise_id: str, prompt: str, *, solution: Any) -> Callable[[Checker], Checker]:
    """Register ``grade`` as the checker of ``exercise_id`` (a decorator).

    The checker receives the reader's answer and returns ``None`` when it is right,
    or a hint (a string) that says what is wrong without giving the answer away.
    ``solution`` is a correct answer (a value or a function), kept for the tests.
    """
    check_instance("exercise_id", exercise_id, str, "a string")

    def register(grade: Checker) -> Checker:
        check_callable("grade", grade)
        if exercise_id in _EXERCISES:
            raise ValueError(message("exercise_id", "an id not registered yet", exercise_id))
        _EXERCISES[exercise_id] = Exercise(exercise_id, prompt, grade, solution)
        return grade

    return register


def list_exercises() -> list[str]:
    """Ids of every registered exercise, sorted."""
    return sorted(_EXERCISES)


def get_exercise(exercise_id: str) -> Exercise:
    """The registered :class:`Exercise` with this id."""
    if exercise_id not in _EXERCISES:
        raise KeyError(message("exercise_id", f"one of {tuple(list_exercises())}", exercise_id))
    return _EXERCISES[exercise_id]


def check(exercise_id: str, answer: Any) -> bool:
    """Grade ``answer`` to exercise ``exercise_id``: print ✓ or ✗ with a hint, return a bool.

    A wrong answer, or an answer that raises when the grader runs it, never raises
    here: it prints ✗ and what to look at. Only an unknown ``exercise_id`` raises.

    Args:
        exercise_id: the id the notebook gives, e.g. ``"G01-minibatch-noise"``.
        answer: the reader's answer (a value or a function, as the exercise asks).

    Returns:
        ``True`` if the answer is right.

    Example:
        >>> check("4.0-sigmoid-grad", lambda z: 0 * z)  # doctest: +ELLIPSIS
        ✗ ...
        False
    """
    grade = get_exercise(exercise_id).grade
    try:
        hint = grade(answer)
    except Exception as error:  # the reader's code failed: report it, don't raise
        hint = f"running your answer raised {type(error).__name__}: {error}"
    if hint is None:
        print(f"✓ {exercise_id}: correct.")
        return True
    print(f"✗ {exercise_id}: not yet. Hint: {hint}")
    return False


def load_quiz(section_id: str) -> list[dict[str, Any]]:
    """The multiple-choice questions of ``section_id`` (e.g. ``"side-notes"``, ``"4.1.1"``).

    Questions are stored as JSON in the package (``exercises/quizzes/``) so that they
    work in Colab and in the built book, in jupyterquiz's format: each question has
    ``question``, ``type`` and ``answers`` (each with ``answer``, ``correct`` and
    ``feedback``).
    """
    folder = resources.files("companion.exercises") / "quizzes"
    available = sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))
    if section_id not in available:
        raise KeyError(message("section_id", f"one of {tuple(available)}", section_id))
    return json.loads((folder / f"{section_id}.json").read_text(encoding="utf-8"))


# jupyterquiz's default colours, darkened where its light text on them is hard to read: every
# pair reaches WCAG AA's 4.5:1 (the book's browser tests run axe-core on the answered quizzes).
QUIZ_COLORS = {
    "--jq-many-choice-bg": "#b34000",  # was #f75c03: 3.1:1 under the text #fafafa; now 5.5:1
    "--jq-correct-color": "#007a10",  # was #009113: 4.0:1; now 5.3:1
    "--jq-link-color": "#ffffff",  # was #9abafa: 3.0:1 on the many-choice background; now 5.8:1 (underlined)
}


def quiz(section_id: str, *, shuffle_answers: bool = True) -> None:
    """Show the multiple-choice questions of ``section_id`` with jupyterquiz.

    Each option gives its own feedback when clicked. Outside a notebook this still
    works (jupyterquiz emits HTML that a notebook or the book renders).
    """
    from jupyterquiz import display_quiz

    display_quiz(load_quiz(section_id), shuffle_answers=shuffle_answers, colors=QUIZ_COLORS)
