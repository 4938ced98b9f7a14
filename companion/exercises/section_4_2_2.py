"""Exercise of notebook 4.2.2: progressive validation (predict first, then train)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from companion.exercises._registry import exercise


def _progressive_accuracy_solution(
    predict: Callable[[torch.Tensor], torch.Tensor],
    update: Callable[[torch.Tensor, torch.Tensor], None],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> list[float]:
    scores = []
    for X, y in batches:
        labels = (predict(X) > 0).float()  # score the batch before the model sees it
        scores.append(float((labels == y).float().mean()))
        update(X, y)
    return scores


_SCALES = torch.tensor([0.2, 3.0, 0.4, 1.5, 0.3, 2.0, 0.1, 1.0])
"""How sure the toy model is, row by row: several logits lie between 0 and 0.5."""

_LABELS = [
    [1, 0, 1, 1, 0, 0, 1, 0],
    [1, 0, 1, 1, 0, 0, 1, 0],  # batch 1 repeats batch 0's labels: a model trained on 0 gets it right
    [0, 1, 1, 0, 1, 0, 0, 1],
    [1, 1, 0, 0, 1, 1, 0, 1],
]


class _Recorder:
    """A toy model that predicts the labels of the batch it was last trained on, as logits."""

    def __init__(self) -> None:
        self.last_y: torch.Tensor | None = None
        self.calls: list[str] = []

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        self.calls.append("predict")
        base = torch.zeros(len(X)) if self.last_y is None else self.last_y[: len(X)]
        return (2 * base - 1) * _SCALES[: len(X)]  # logits: > 0 for a 1, < 0 for a 0

    def update(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.calls.append("update")
        self.last_y = y.clone()


def _accuracies(batches: list[tuple[torch.Tensor, torch.Tensor]], threshold: float) -> list[float]:
    """The right accuracies when predictions are logits > threshold (0 is right)."""
    model, scores = _Recorder(), []
    for X, y in batches:
        scores.append(float(((model.predict(X) > threshold).float() == y).float().mean()))
        model.update(X, y)
    return scores


@exercise(
    "4.2.2-progressive-accuracy",
    "Write progressive_accuracy(predict, update, batches): for each (X, y), record the accuracy "
    "of the logits predict(X) (positive when > 0) on y, and only then call update(X, y).",
    solution=_progressive_accuracy_solution,
)
def _grade_progressive(answer: Callable[..., list[float]]) -> str | None:
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(len(labels), 2, generator=g), torch.tensor(labels, dtype=torch.float32))
               for labels in _LABELS]
    model = _Recorder()
    got = answer(model.predict, model.update, [(X.clone(), y.clone()) for X, y in batches])
    if not isinstance(got, (list, tuple)) or len(got) != len(batches):
        return "return one accuracy per batch, in a list."
    if model.calls != ["predict", "update"] * len(batches):
        return (
            "call predict, then update, once each per batch, in that order: a batch is scored "
            "before the model trains on it."
        )
    got = [float(a) for a in got]
    expected = _accuracies(batches, 0.0)

    def same(values: list[float]) -> bool:
        return all(abs(a - b) < 1e-6 for a, b in zip(got, values, strict=True))

    if same(expected):
        return None
    if same(_accuracies(batches, 0.5)):
        return (
            "predict returns logits, not probabilities: a logit is positive when > 0 (0.5 is the "
            "threshold for sigmoid(logit))."
        )
    if same([a * len(y) for a, (_, y) in zip(expected, batches, strict=True)]):
        return "these are counts of right answers: divide by the batch size to get an accuracy."
    if same([1 - a for a in expected]):
        return "these are error rates: accuracy is the share of predictions that equal y."
    if same([sum(expected[: i + 1]) / (i + 1) for i in range(len(expected))]):
        return "these are running means over the batches so far: return each batch's own accuracy."
    return "your accuracies differ: compare (logits > 0) with y, as floats, and average."
