"""A practice exam drawn from every notebook's questions, and the readiness report that grades it.

Every question of the quiz bank (``exercises/quizzes/<section>.json``) carries the objective of the
current exam guide (the October 2024 edition) that it tests, and the claims of its notebook that teach
the answer. :func:`practice_questions` draws a mixed exam from the bank in the guide's proportions;
:func:`readiness_report` scores a set of answers per objective, weakest first, and says which notebook
and claims to revisit; :func:`practice_exam` runs the same exam interactively in JupyterLab or Colab.
"""

from __future__ import annotations

import html
import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from companion._validation import check_instance, check_int, message
from companion.exercises._registry import load_quiz

__all__ = [
    "OBJECTIVES",
    "SECTION_WEIGHTS",
    "NOTEBOOKS",
    "load_bank",
    "practice_questions",
    "ObjectiveScore",
    "ReadinessReport",
    "readiness_report",
    "practice_exam",
]

#: The October 2024 exam guide's objectives that this course teaches, by code.
OBJECTIVES: dict[str, str] = {
    "3.1": "Building models",
    "3.2": "Training models",
    "3.3": "Choosing appropriate hardware for training",
    "4.1": "Serving models",
    "4.2": "Scaling online model serving",
    "5.2": "Automating model retraining",
    "6.1": "Identifying risks to AI solutions",
    "6.2": "Monitoring, testing and troubleshooting AI solutions",
}

#: The guide's published share of the exam for each of its sections that the course teaches (percent).
SECTION_WEIGHTS: dict[str, int] = {"3": 18, "4": 20, "5": 22, "6": 13}

#: Section id of each notebook -> its title (the quiz file of the same name holds its questions).
NOTEBOOKS: dict[str, str] = {
    "4.0": "Gradient descent and backpropagation",
    "4.1.1": "Choosing a model",
    "4.1.2": "Interpretable models",
    "4.1.3": "Transfer learning",
    "4.1.4": "Generalization and regularization",
    "4.1.5": "Imbalanced data",
    "4.1.6": "Choosing a model for the data",
    "4.1.7": "Adapting pretrained models",
    "4.2.1": "Offline vs online inference",
    "4.2.2": "Static vs dynamic training",
    "4.2.3": "Evaluation metrics",
    "4.2.4": "Hyperparameter tuning",
    "4.3.1": "Unit tests for models",
    "4.3.2": "Testing for deployment and production",
    "4.3.3": "Baselines and prediction bias",
    "4.3.4": "Backpropagation's failure cases",
    "4.3.5": "Explainability",
    "4.3.6": "Fairness",
    "4.4.1": "Distributed training",
    "4.4.2": "Hardware accelerators",
    "4.4.3": "Scalable model analysis",
    "4.4.4": "Serving optimization and rollout",
    "4.4.5": "Distributed strategies",
}


def _sections_on_disk() -> list[str]:
    folder = resources.files("companion.exercises") / "quizzes"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_bank() -> list[dict[str, Any]]:
    """Every question of every notebook, each with its ``section`` (the notebook's id) added.

    Example:
        >>> bank = load_bank()
        >>> {"id", "objective", "section", "answers"} <= set(bank[0])
        True
    """
    return [{**q, "section": section} for section in _sections_on_disk() for q in load_quiz(section)]


def _allocate(total: int, weights: Mapping[str, float], available: Mapping[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainders), never above ``available``."""
    counts = {k: 0 for k in weights}
    remaining, open_keys = total, [k for k in weights if available.get(k, 0) > 0]
    while remaining > 0 and open_keys:
        weight_sum = sum(weights[k] for k in open_keys)
        shares = {k: remaining * weights[k] / weight_sum for k in open_keys}
        grants = {k: min(int(shares[k]), available[k] - counts[k]) for k in open_keys}
        if not any(grants.values()):  # hand out single questions by largest remainder
            k = max(open_keys, key=lambda key: (shares[key] - int(shares[key]), weights[key]))
            grants = {k: 1}
        for k, g in grants.items():
            counts[k] += g
            remaining -= g
        open_keys = [k for k in open_keys if counts[k] < available[k]]
    return counts


def practice_questions(n: int = 50, *, seed: int = 0) -> list[dict[str, Any]]:
    """Draw a mixed practice exam of ``n`` questions from the bank, in the guide's proportions.

    The exam's sections get questions in proportion to :data:`SECTION_WEIGHTS` (as far as the bank
    holds questions for them); within a section the draw cycles through objectives and notebooks so
    that each is asked about; the order is then shuffled. The same ``seed`` gives the same exam.

    Args:
        n: number of questions, an int in ``[1, size of the bank]``.
        seed: the draw's seed, an int >= 0.

    Returns:
        The questions (dicts in jupyterquiz's format, with ``id``, ``section`` and ``objective``).

    Example:
        >>> exam = practice_questions(10)
        >>> len(exam), len({q["id"] for q in exam})
        (10, 10)
    """
    bank = load_bank()
    n = check_int("n", n, low=1, high=len(bank))
    seed = check_int("seed", seed, low=0)
    rng = random.Random(seed)
    by_section: dict[str, list[dict[str, Any]]] = {}
    for q in bank:
        by_section.setdefault(q["objective"].split(".")[0], []).append(q)
    weights = {s: SECTION_WEIGHTS.get(s, 0) for s in by_section}
    if sum(weights.values()) == 0:
        weights = {s: 1 for s in by_section}
    counts = _allocate(n, weights, {s: len(qs) for s, qs in by_section.items()})
    exam: list[dict[str, Any]] = []
    for section, questions in by_section.items():
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for q in questions:
            groups.setdefault((q["objective"], q["section"]), []).append(q)
        queues = [rng.sample(g, len(g)) for _, g in sorted(groups.items())]
        rng.shuffle(queues)
        picked: list[dict[str, Any]] = []
        while len(picked) < counts[section]:
            for queue in queues:
                if queue and len(picked) < counts[section]:
                    picked.append(queue.pop())
        exam += picked
    rng.shuffle(exam)
    return exam


@dataclass(frozen=True)
class ObjectiveScore:
    """How a reader did on one exam objective, and where to revisit it."""

    objective: str
    title: str
    correct: int
    asked: int
    sections: tuple[str, ...]
    claims: tuple[str, ...]

    @property
    def fraction(self) -> float:
        """Share of this objective's questions answered right, in ``[0, 1]``."""
        return self.correct / self.asked


@dataclass(frozen=True)
class ReadinessReport:
    """A practice exam's score, overall and per objective (weakest objective first)."""

    correct: int
    asked: int
    objectives: tuple[ObjectiveScore, ...]

    @property
    def fraction(self) -> float:
        """Share of all questions answered right, in ``[0, 1]``."""
        return self.correct / self.asked

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [(f"{o.objective} {o.title}", f"{o.correct}/{o.asked} ({o.fraction:.0%})",
                 ", ".join(f"{s} {NOTEBOOKS.get(s, '')}".strip() for s in o.sections),
                 ", ".join(o.claims) or "—") for o in self.objectives]

    def _headline(self) -> str:
        return f"Score: {self.correct} of {self.asked} ({self.fraction:.0%}). Weakest objectives first:"

    def to_markdown(self) -> str:
        """The report as a markdown table, weakest objective first."""
        lines = [f"**{self._headline()}**", "", "| objective | score | revisit notebooks | claims |",
                 "|---|---|---|---|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in self._rows()])

    def to_html(self) -> str:
        """The report as an HTML table, weakest objective first (what the widget shows)."""
        head = "".join(f"<th>{h}</th>" for h in ("objective", "score", "revisit notebooks", "claims"))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._rows())
        return f"<p><b>{self._headline()}</b></p><table><tr>{head}</tr>{body}</table>"

    def __str__(self) -> str:
        return self.to_markdown()


def _chosen(response: Any) -> frozenset[int]:
    if response is None:
        return frozenset()
    if isinstance(response, int) and not isinstance(response, bool):
        return frozenset({response})
    if isinstance(response, Collection) and not isinstance(response, str) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in response
    ):
        return frozenset(response)
    raise TypeError(message("responses[...]", "an option index, a collection of indices or None", response))


def readiness_report(questions: list[dict[str, Any]], responses: Mapping[str, Any]) -> ReadinessReport:
    """Score ``responses`` to ``questions`` per objective, weakest objective first.

    A question counts as right only when the chosen options are exactly its correct ones (for a
    "choose two" question, both and nothing else); an unanswered question counts as wrong.
    Objectives with the same score are ordered by how many questions they had, most first.

    Args:
        questions: the exam, as :func:`practice_questions` returns it (non-empty).
        responses: question id -> the index of the chosen option, a collection of indices (for
            multiple-select questions), or None for no answer. Missing ids count as unanswered.

    Returns:
        The :class:`ReadinessReport`; for each objective the notebooks and claims to revisit are
        those of the questions answered wrongly (or, if all were right, of all its questions).

    Example:
        >>> exam = practice_questions(5)
        >>> perfect = {q["id"]: [i for i, a in enumerate(q["answers"]) if a["correct"]] for q in exam}
        >>> readiness_report(exam, perfect).fraction
        1.0
    """
    check_instance("questions", questions, list, "a non-empty list of questions")
    if not questions:
        raise ValueError(message("questions", "a non-empty list of questions", questions))
    check_instance("responses", responses, Mapping, "a mapping of question ids to chosen options")
    unknown = set(responses) - {q["id"] for q in questions}
    if unknown:
        raise ValueError(message("responses", "keyed by the ids of `questions`", sorted(unknown)[:3]))
    results: dict[str, list[tuple[dict[str, Any], bool]]] = {}
    for q in questions:
        chosen = _chosen(responses.get(q["id"]))
        if any(i < 0 or i >= len(q["answers"]) for i in chosen):
            raise ValueError(message(f"responses[{q['id']!r}]", f"option indices in [0, {len(q['answers']) - 1}]",
                                     sorted(chosen)))
        right = frozenset(i for i, a in enumerate(q["answers"]) if a["correct"])
        results.setdefault(q["objective"], []).append((q, chosen == right))
    scores = []
    for objective, items in results.items():
        missed = [q for q, ok in items if not ok] or [q for q, _ in items]
        scores.append(ObjectiveScore(
            objective=objective,
            title=OBJECTIVES.get(objective, objective),
            correct=sum(ok for _, ok in items),
            asked=len(items),
            sections=tuple(sorted({q["section"] for q in missed})),
            claims=tuple(sorted({c for q in missed for c in q.get("claims", [])})),
        ))
    scores.sort(key=lambda s: (s.fraction, -s.asked, s.objective))
    return ReadinessReport(correct=sum(s.correct for s in scores), asked=len(questions), objectives=tuple(scores))


def practice_exam(n: int = 50, *, seed: int = 0) -> Any:
    """Run the practice exam interactively (ipywidgets): answer, submit, read the readiness report.

    Each question shows its options as check boxes (tick one, or as many as the question asks
    for). "Submit" marks every question, shows the feedback of each option you chose and ends
    with the :class:`ReadinessReport`. Works in JupyterLab, Jupyter Notebook and Colab.

    Args:
        n: number of questions, as in :func:`practice_questions`.
        seed: the draw's seed, as in :func:`practice_questions`.

    Returns:
        The widget (a notebook displays it when it is the cell's last expression).
    """
    import ipywidgets as widgets

    exam = practice_questions(n, seed=seed)
    boxes: dict[str, list[Any]] = {}
    feedback: dict[str, Any] = {}
    rows: list[Any] = []
    for number, q in enumerate(exam, start=1):
        boxes[q["id"]] = [widgets.Checkbox(value=False, description=a["answer"], indent=False,
                                           layout=widgets.Layout(width="auto")) for a in q["answers"]]
        feedback[q["id"]] = widgets.HTML()
        title = widgets.HTML(f"<b>{number}.</b> {html.escape(q['question'])} <small>({q['section']} "
                             f"{NOTEBOOKS.get(q['section'], '')})</small>")
        rows.append(widgets.VBox([title, *boxes[q["id"]], feedback[q["id"]]]))
    report = widgets.HTML()
    submit = widgets.Button(description="Submit and see my readiness report", button_style="primary",
                            layout=widgets.Layout(width="auto"))

    def on_submit(_: Any) -> None:
        responses = {qid: [i for i, box in enumerate(bs) if box.value] for qid, bs in boxes.items()}
        for q in exam:
            chosen = responses[q["id"]]
            right = [i for i, a in enumerate(q["answers"]) if a["correct"]]
            verdict = "✓ right" if chosen == right else "✗ the right answer: " + html.escape("; ".join(
                q["answers"][i]["answer"] for i in right))
            notes = "".join(f"<li>{html.escape(q['answers'][i]['answer'])}: {html.escape(q['answers'][i]['feedback'])}</li>"
                            for i in chosen)
            feedback[q["id"]].value = f"<p><b>{verdict}</b></p><ul>{notes}</ul>"
        report.value = readiness_report(exam, responses).to_html()

    submit.on_click(on_submit)
    return widgets.VBox([*rows, submit, report])
