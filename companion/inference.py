"""From a model to predictions: run it for logits, then turn logits into labels or scores.

The course's models return logits: ``(N,)`` or ``(N, 1)`` for a binary classifier,
``(N, C)`` for ``C`` classes. :func:`predict_logits` runs any model on inputs the
safe way (no gradients, eval mode, the model's device); :func:`logits_to_labels`
and :func:`logits_to_scores` turn its output into what a metric needs. Every module
that predicts goes through these, so "which class did the model pick" has one answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from companion._validation import as_tensor, check_callable, check_int, check_tensor, message
from companion.metrics import accuracy
from companion.utils import eval_mode, model_device

__all__ = ["predict_logits", "logits_to_labels", "logits_to_scores", "accuracy_from_logits"]


def predict_logits(
    model: Callable[[torch.Tensor], torch.Tensor], X: Any, *, batch_size: int | None = None
) -> torch.Tensor:
    """Run ``model`` on ``X`` without gradients, in eval mode, on the model's device.

    An :class:`torch.nn.Module` is put in eval mode for the call and then back in
    the mode each of its submodules had; any other callable is just called. The
    output comes back on the CPU. (A model's own ``predict`` method, where it has
    one, returns labels; this returns the raw output.)

    Args:
        model: an ``nn.Module`` or any callable ``X -> output``.
        X: a tensor (or array) of inputs, ``(N, ...)``.
        batch_size: run ``X`` in chunks of this many rows (an int >= 1) to bound
            memory; ``None`` runs it in one call.

    Returns:
        The model's output for every row, on the CPU, detached.

    Example:
        >>> predict_logits(torch.nn.Identity(), torch.ones(2)).tolist()
        [1.0, 1.0]
    """
    check_callable("model", model)
    X = as_tensor("X", X)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1)
    chunks = X.split(batch_size) if batch_size is not None and len(X) > 0 else (X,)
    with torch.no_grad():
        if isinstance(model, nn.Module):
            device = model_device(model)
            with eval_mode(model):
                outputs = [as_tensor("model(X)", model(chunk.to(device))) for chunk in chunks]
        else:
            outputs = [as_tensor("model(X)", model(chunk)) for chunk in chunks]
    out = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    return out.detach().cpu()


def logits_to_labels(output: torch.Tensor) -> torch.Tensor:
    """Predicted labels from logits: ``logit > 0`` for ``(N,)``/``(N, 1)``, argmax for ``(N, C)``.

    Example:
        >>> logits_to_labels(torch.tensor([-1.0, 2.0])).tolist()
        [0, 1]
        >>> logits_to_labels(torch.tensor([[0.1, 0.9, 0.0]])).tolist()
        [1]
    """
    check_tensor("output", output, ndim=(1, 2))
    if output.ndim == 2 and output.shape[1] > 1:
        return output.argmax(dim=1)
    return (output.reshape(-1) > 0).long()


def logits_to_scores(output: torch.Tensor) -> torch.Tensor:
    """Probability of the positive class from binary logits: ``(N,)``, ``(N, 1)`` or ``(N, 2)``.

    Example:
        >>> logits_to_scores(torch.tensor([0.0])).tolist()
        [0.5]
    """
    check_tensor("output", output, ndim=(1, 2), floating=True)
    if output.ndim == 2 and output.shape[1] == 2:
        return torch.softmax(output, dim=1)[:, 1]
    if output.ndim == 2 and output.shape[1] != 1:
        raise ValueError(message("output", "binary logits of shape (N,), (N, 1) or (N, 2)", output))
    return torch.sigmoid(output.reshape(-1))


def accuracy_from_logits(y_true: Any, output: torch.Tensor) -> float:
    """Accuracy of a model's raw output (logits), for ``fit(metrics=...)`` and streams.

    Example:
        >>> accuracy_from_logits(torch.tensor([1, 0]), torch.tensor([[2.0], [-1.0]]))
        1.0
    """
    return accuracy(y_true, logits_to_labels(output))
