"""Exercises of notebook 4.1.7 (adapting pretrained models): the distillation loss."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _distillation_solution(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    p = torch.softmax(teacher_logits / temperature, dim=1)          # the teacher, softened
    log_q = torch.log_softmax(student_logits / temperature, dim=1)  # the student, softened the same way
    kl = (p * (torch.log(p) - log_q)).sum(dim=1).mean()             # KL(p || q), averaged over the rows
    return temperature**2 * kl                                      # keeps the gradients' size as T changes


def _reference(student: torch.Tensor, teacher: torch.Tensor, temperature: float, *, t_student: float | None = None,
               t_teacher: float | None = None, factor: float | None = None, reverse: bool = False,
               per_class: bool = False) -> torch.Tensor:
    t_student = temperature if t_student is None else t_student
    t_teacher = temperature if t_teacher is None else t_teacher
    p = torch.softmax(teacher / t_teacher, 1)
    q = torch.softmax(student / t_student, 1)
    if reverse:
        p, q = q, p
    kl = (p * (p.log() - q.log())).sum(1).mean()
    if per_class:
        kl = kl / student.shape[1]
    return (temperature**2 if factor is None else factor) * kl


_CASES = [(0, 1.0), (1, 2.0), (2, 4.0)]


def _inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 5, generator=g, dtype=torch.float64) * 2, torch.randn(6, 5, generator=g,
                                                                                   dtype=torch.float64) * 3


@exercise(
    "4.1.7-distillation-loss",
    "Write distillation_loss(student_logits, teacher_logits, temperature): T**2 times the mean over the rows "
    "of KL(softmax(teacher / T) || softmax(student / T)).",
    solution=_distillation_solution,
)
def _grade_distillation(answer: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> str | None:
    results = []
    for seed, temperature in _CASES:
        student, teacher = _inputs(seed)
        got = answer(student.clone(), teacher.clone(), temperature)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return "return the loss as a tensor with one value (a scalar), averaged over the rows."
        results.append((student, teacher, temperature, float(got)))

    def matches(**variant: object) -> bool:
        return all(abs(value - float(_reference(s, t, temp, **variant))) < 1e-6 * max(1.0, abs(value))
                   for s, t, temp, value in results)

    if matches():
        return None
    if matches(factor=1.0):
        return ("right at T = 1 only: multiply the KL divergence by T**2. Softening divides the gradients by "
                "about T**2; the factor keeps their size, so the soft loss weighs the same at any temperature.")
    if matches(t_teacher=1.0):
        return "soften the teacher too: its probabilities are softmax(teacher_logits / T), not softmax(teacher_logits)."
    if matches(t_student=1.0):
        return "soften the student too: compare with softmax(student_logits / T), at the teacher's temperature."
    if matches(reverse=True):
        return ("the divergence is the wrong way round: KL(teacher || student) weighs each class by the teacher's "
                "probability, sum p * (log p - log q) with p the teacher's.")
    if matches(per_class=True):
        return ("your value is the right one divided by the number of classes: average over the rows only "
                "(F.kl_div needs reduction='batchmean'; 'mean' also averages over the classes).")
    if all(abs(value) < 1e-12 for *_, value in results):
        return "the loss is 0 for every input: compute it from both the student's and the teacher's logits."
    return ("compare with T**2 * mean over rows of sum_c p_c (log p_c - log q_c), where p = softmax(teacher / T) and "
            "q = softmax(student / T).")
