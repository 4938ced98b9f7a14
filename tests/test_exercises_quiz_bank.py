"""The quiz bank is written like the exam: scenarios, four real options, feedback, no tells."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from companion.exercises import load_quiz
from companion.exercises.practice import NOTEBOOKS, OBJECTIVES, load_bank

ROOT = Path(__file__).resolve().parents[1]
BANK = load_bank()
SINGLE = [q for q in BANK if q["type"] == "multiple_choice"]
MULTI = [q for q in BANK if q["type"] == "many_choice"]
NUMBER_WORDS = {"two": 2, "three": 3}
CLAIMS = {c["id"]: c for c in yaml.safe_load((ROOT / "book" / "claims.yml").read_text(encoding="utf-8"))}
EXAM_MAP = yaml.safe_load((ROOT / "book" / "exam_map.yml").read_text(encoding="utf-8"))
# Words that give a question away as being about this course rather than the exam's subject.
COURSE_WORDS = re.compile(r"\bcompanion\b|\bnotebook\b|\bthis course\b|\bthe cell\b|\bclaim [A-Z]\d\d\b", re.I)


def _correct(q):
    return [i for i, a in enumerate(q["answers"]) if a["correct"]]


def test_every_notebook_has_a_quiz_of_at_least_eight_questions():
    assert set(NOTEBOOKS) == {p.stem.split("-", 1)[0] for p in (ROOT / "notebooks").glob("*.ipynb")}
    for section in NOTEBOOKS:
        assert len(load_quiz(section)) >= 8, f"{section}: the Self-check needs at least 8 questions"


def test_question_ids_are_unique():
    counts = Counter(q["id"] for q in BANK)
    assert not [i for i, n in counts.items() if n > 1]
    assert all(isinstance(q["id"], str) and q["id"].startswith(q["section"] + "-") for q in BANK)


@pytest.mark.parametrize("q", BANK, ids=lambda q: q["id"])
def test_question_shape(q):
    assert q["type"] in ("multiple_choice", "many_choice")
    assert q["question"].strip()
    assert len(q["answers"]) == 4, "four options, as on the exam"
    for a in q["answers"]:
        assert a["answer"].strip() and a["feedback"].strip(), "every option needs feedback that says why"
        assert isinstance(a["correct"], bool)
    assert len({a["answer"] for a in q["answers"]}) == 4
    if q["type"] == "multiple_choice":
        assert len(_correct(q)) == 1
    else:
        match = re.search(r"\bchoose (two|three)\b", q["question"], re.I)
        assert match, "a multiple-select question says how many to choose"
        assert len(_correct(q)) == NUMBER_WORDS[match.group(1).lower()]
    assert not COURSE_WORDS.search(q["question"] + " ".join(a["answer"] for a in q["answers"])), (
        "ask about the exam's subject, not about this course's code or notebooks"
    )


@pytest.mark.parametrize("q", BANK, ids=lambda q: q["id"])
def test_question_names_its_objective_and_claims(q):
    assert q["objective"] in OBJECTIVES or q["objective"] == "background", q["objective"]
    stem = next(p.stem for p in (ROOT / "notebooks").glob(f"{q['section']}-*.ipynb"))
    if q["objective"] != "background":
        mapped = {o["code"] for o in EXAM_MAP["objectives"] if o["guide"] == "2024" and stem in o["notebooks"]}
        assert q["objective"] in mapped, f"book/exam_map.yml maps {stem} to {sorted(mapped)}, not {q['objective']}"
    for claim_id in q.get("claims", []):
        assert claim_id in CLAIMS, claim_id


def test_the_longest_option_is_not_a_tell():
    longest = sum(max(range(4), key=lambda i: len(q["answers"][i]["answer"])) == _correct(q)[0] for q in SINGLE)
    assert longest <= 0.30 * len(SINGLE), f"the right answer is the longest in {longest} of {len(SINGLE)}"
    shortest = sum(min(range(4), key=lambda i: len(q["answers"][i]["answer"])) == _correct(q)[0] for q in SINGLE)
    assert shortest <= 0.35 * len(SINGLE), f"the right answer is the shortest in {shortest} of {len(SINGLE)}"


def test_the_right_answer_is_not_always_in_one_place():
    positions = Counter(_correct(q)[0] for q in SINGLE)
    assert max(positions.values()) <= 0.4 * len(SINGLE), positions


def test_the_bank_has_scenarios_and_multiple_select_questions():
    assert len(MULTI) >= 0.1 * len(BANK), "the exam has 'choose two' questions; so should the bank"
    scenarios = [q for q in BANK if len(q["question"]) >= 120]
    assert len(scenarios) >= 0.7 * len(BANK), "most questions should be scenarios, not one-line recall"
