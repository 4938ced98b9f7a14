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


class _Recorder:
    """A toy model that predicts the labels of the batch it was last trained on."""

    def __init__(self) -> None:
        self.last_y: torch.Tensor | None = None
        self.calls: list[str] = []

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        self.calls.append("predict")
        base = torch.zeros(len(X)) if self.last_y is None else self.last_y[: len(X)]
        return 2 * base - 1  # logits: +1 for a 1, -1 for a 0

    def update(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.calls.append("update")
        self.last_y = y.clone()


@exercise(
    "4.2.2-progressive-accuracy",
    "Write progressive_accuracy(predict, update, batches): for each (X, y), record the accuracy "
    "of the logits predict(X) (positive when > 0) on y, and only then call update(X, y).",
    solution=_progressive_accuracy_solution,
)
def _grade_progressive(answer: Callable[..., list[float]]) -> str | None:
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(10, 2, generator=g), (torch.rand(10, generator=g) < 0.5).float())
               for _ in range(4)]
    batches[1] = (batches[1][0], batches[0][1].clone())  # batch 1 repeats batch 0's labels
    model = _Recorder()
    got = answer(model.predict, model.update, batches)
    reference = _Recorder()
    expected = _progressive_accuracy_solution(reference.predict, reference.update, batches)
    if not isinstance(got, (list, tuple)) or len(got) != len(batches):
        return "return one accuracy per batch, in a list."
    if model.calls != ["predict", "update"] * len(batches):
        return "call predict, then update, once each per batch, in that order."
    if any(abs(float(a) - b) > 1e-6 for a, b in zip(got, expected, strict=True)):
        return "your accuracies differ: compare (logits > 0) with y, as floats, and average."
    return None
