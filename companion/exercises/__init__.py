"""Self-check machinery: graded coding exercises and multiple-choice quizzes.

``check(exercise_id, answer)`` grades a coding exercise; ``quiz(section_id)`` shows
a section's multiple-choice questions. Every public module in this package (one
per notebook or chapter) registers its exercises when imported; they are all
imported here, so adding an exercise module needs no other edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from companion.exercises._registry import (
    QUIZ_COLORS,
    Exercise,
    check,
    exercise,
    get_exercise,
    list_exercises,
    load_quiz,
    quiz,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["QUIZ_COLORS", "Exercise", "check", "exercise", "get_exercise", "list_exercises", "load_quiz", "quiz"]
