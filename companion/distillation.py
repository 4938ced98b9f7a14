"""Knowledge distillation: train a small student to match a large teacher's softened predictions.

A teacher's predicted probabilities say more than its top class: how much it
believes in each *other* class (the "dark knowledge"). Raising the temperature
``T`` of the softmax, ``softmax(logits / T)``, makes those small probabilities large
enough to learn from. The student is trained to match the teacher's softened
probabilities with :class:`DistillationLoss`, ``T**2 * KL(teacher_T || student_T)``
(the ``T**2`` keeps the gradients' size independent of ``T``; Hinton, Vinyals and
Dean, 2015).

Only ``torch`` is needed (not the ``adapt`` extra).
"""

from __future__ import annotations

import torch
from torch import nn

from companion._validation import check_float, check_tensor, message

__all__ = ["DistillationLoss", "distillation_loss", "soft_targets"]


def soft_targets(teacher_logits: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """The teacher's probabilities softened by ``temperature``: ``softmax(teacher_logits / T)``.

    Args:
        teacher_logits: ``(N, C)`` raw outputs of the teacher.
        temperature: ``T``, a float > 0; 1 gives the teacher's own probabilities,
            larger values spread them towards uniform.

    Returns:
        ``(N, C)`` probabilities; each row sums to 1.

    Example:
        >>> soft_targets(torch.tensor([[2.0, 0.0]]), temperature=1.0)
        tensor([[0.8808, 0.1192]])
        >>> soft_targets(torch.tensor([[2.0, 0.0]]), temperature=4.0)
        tensor([[0.6225, 0.3775]])
    """
    check_tensor("teacher_logits", teacher_logits, ndim=2, floating=True, finite=True)
    temperature = check_float("temperature", temperature, low=0, low_open=True)
    return torch.softmax(teacher_logits.detach() / temperature, dim=1)


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """``T**2`` times the mean KL divergence from the targets to the student's softened probabilities.

    ``T**2 * mean_n sum_c p_nc (log p_nc - log q_nc)`` with ``q = softmax(student_logits / T)``.
    With one-hot ``targets`` it is ``T**2`` times the cross-entropy of the softened
    student, which is how to train on hard labels under the same loss.

    Args:
        student_logits: ``(N, C)`` raw outputs of the student.
        targets: ``(N, C)`` probabilities, e.g. :func:`soft_targets` of the teacher at
            the same ``temperature``; every row must sum to 1.
        temperature: ``T``, a float > 0.

    Returns:
        A scalar tensor (0 when the student's softened probabilities equal the targets).

    Example:
        >>> teacher = torch.tensor([[2.0, 0.0, -1.0]])
        >>> abs(float(distillation_loss(teacher, soft_targets(teacher, temperature=3.0), temperature=3.0))) < 1e-6
        True
    """
    check_tensor("student_logits", student_logits, ndim=2, floating=True)
    check_tensor("targets", targets, ndim=2, floating=True, finite=True)
    temperature = check_float("temperature", temperature, low=0, low_open=True)
    if student_logits.shape != targets.shape:
        raise ValueError(message(("student_logits", "targets"), "the same shape (N, C)",
                                 (student_logits, targets), verb="have"))
    if (targets < 0).any() or not torch.allclose(targets.sum(1), torch.ones(len(targets), dtype=targets.dtype,
                                                                             device=targets.device), atol=1e-4):
        raise ValueError(message("targets", "probabilities: rows of values >= 0 that sum to 1 "
                                 "(use soft_targets(teacher_logits, temperature=...))", targets))
    log_q = torch.log_softmax(student_logits / temperature, dim=1)
    kl = torch.nn.functional.kl_div(log_q, targets, reduction="batchmean")  # sum p (log p - log q) / N
    return temperature**2 * kl


class DistillationLoss(nn.Module):
    """:func:`distillation_loss` at a fixed temperature, as a ``loss_fn(output, targets)`` for ``fit``.

    Train the student on ``(inputs, soft_targets(teacher(inputs), temperature=T))``
    pairs with ``fit(student, loader, loss_fn=DistillationLoss(T), ...)``.

    Args:
        temperature: ``T``, a float > 0.

    Example:
        >>> loss_fn = DistillationLoss(2.0)
        >>> targets = soft_targets(torch.tensor([[1.0, 0.0]]), temperature=2.0)
        >>> round(float(loss_fn(torch.tensor([[0.0, 0.0]]), targets)), 4)  # 4 * KL((0.62, 0.38) || (0.5, 0.5))
        0.1212
    """

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = check_float("temperature", temperature, low=0, low_open=True)

    def forward(self, student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return distillation_loss(student_logits, targets, temperature=self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
