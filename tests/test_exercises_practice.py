"""The practice exam: drawn in the guide's proportions, graded per objective, weakest first."""

from __future__ import annotations

from collections import Counter

import pytest

from companion.exercises.practice import (
    SECTION_WEIGHTS,
    ReadinessReport,
    _allocate,
    load_bank,
    practice_exam,
    practice_questions,
    readiness_report,
)


def _right(q):
    return [i for i, a in enumerate(q["answers"]) if a["correct"]]


def _wrong(q):
    return next(i for i, a in enumerate(q["answers"]) if not a["correct"])


def test_allocate_follows_weights_within_availability():
    assert _allocate(10, {"a": 1, "b": 1}, {"a": 10, "b": 10}) == {"a": 5, "b": 5}
    assert _allocate(10, {"a": 3, "b": 1}, {"a": 2, "b": 10}) == {"a": 2, "b": 8}
    assert sum(_allocate(50, SECTION_WEIGHTS, {"3": 40, "4": 40, "5": 40, "6": 40}).values()) == 50
    assert _allocate(7, {"a": 1, "b": 1}, {"a": 3, "b": 3}) == {"a": 3, "b": 3}


def test_practice_exam_has_fifty_distinct_questions_in_the_guides_proportions():
    exam = practice_questions(50)
    assert len(exam) == 50 and len({q["id"] for q in exam}) == 50
    per_section = Counter(q["objective"].split(".")[0] for q in exam)
    available = Counter(q["objective"].split(".")[0] for q in load_bank())
    target = _allocate(50, {s: SECTION_WEIGHTS.get(s, 0) for s in available}, available)
    assert dict(per_section) == {s: n for s, n in target.items() if n}
    assert practice_questions(50) == exam, "the same seed gives the same exam"
    assert practice_questions(50, seed=1) != exam


def test_practice_exam_covers_every_notebook_it_can():
    exam = practice_questions(50)
    assert len({q["section"] for q in exam}) >= 12


def test_readiness_report_scores_exact_answers_and_lists_weakest_first():
    exam = practice_questions(20)
    responses = {q["id"]: _right(q) for q in exam}
    weak = exam[0]["objective"]
    for q in exam:
        if q["objective"] == weak:
            responses[q["id"]] = _wrong(q)
    report = readiness_report(exam, responses)
    assert isinstance(report, ReadinessReport)
    assert report.objectives[0].objective == weak and report.objectives[0].correct == 0
    assert report.correct == sum(q["objective"] != weak for q in exam)
    assert exam[0]["section"] in report.objectives[0].sections
    assert [o.fraction for o in report.objectives] == sorted(o.fraction for o in report.objectives)
    assert "Score:" in report.to_markdown() and weak in str(report)


def test_a_multiple_select_question_needs_exactly_the_right_set():
    multi = next(q for q in load_bank() if q["type"] == "many_choice")
    right = _right(multi)
    assert readiness_report([multi], {multi["id"]: right}).correct == 1
    assert readiness_report([multi], {multi["id"]: right[:1]}).correct == 0
    assert readiness_report([multi], {multi["id"]: [*right, _wrong(multi)]}).correct == 0
    assert readiness_report([multi], {}).correct == 0, "unanswered counts as wrong"


@pytest.mark.parametrize(
    ("questions", "responses", "error", "match"),
    [
        ([], {}, ValueError, "non-empty list"),
        ("exam", {}, TypeError, "`questions`"),
        (None, {}, TypeError, "`questions`"),
        ("EXAM", [1], TypeError, "`responses`"),
        ("EXAM", {"no-such-id": 0}, ValueError, "keyed by the ids"),
        ("EXAM", "FIRST:9", ValueError, r"option indices in \[0, 3\]"),
        ("EXAM", "FIRST:'a'", TypeError, "an option index"),
    ],
)
def test_readiness_report_rejects_bad_input(questions, responses, error, match):
    exam = practice_questions(3)
    if questions == "EXAM":
        questions = exam
    if isinstance(responses, str):
        responses = {exam[0]["id"]: 9 if responses.endswith("9") else "a"}
    with pytest.raises(error, match=match):
        readiness_report(questions, responses)


@pytest.mark.parametrize(("kwargs", "error"), [({"n": 0}, ValueError), ({"n": 10**6}, ValueError),
                                               ({"n": 2.5}, TypeError), ({"seed": -1}, ValueError)])
def test_practice_questions_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        practice_questions(**kwargs)


def test_practice_exam_widget_grades_on_submit():
    widgets = pytest.importorskip("ipywidgets")
    box = practice_exam(4)
    assert isinstance(box, widgets.VBox)
    *rows, submit, report = box.children
    exam = practice_questions(4)
    for row, q in zip(rows, exam):
        for i in _right(q):
            row.children[1 + i].value = True
    submit.click()
    assert all("✓ right" in row.children[-1].value for row in rows)
    assert "Score: 4 of 4" in report.value, "the readiness report is shown"
