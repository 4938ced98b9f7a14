"""Tests for companion.distillation: softened targets and the distillation loss, against hand-written formulas."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.distillation import DistillationLoss, distillation_loss, soft_targets
from companion.training import fit


def _logits(seed: int, n: int = 5, c: int = 4) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3


def test_soft_targets_are_the_tempered_softmax():
    teacher = _logits(0)
    for temperature in (0.5, 1.0, 4.0):
        expected = torch.exp(teacher / temperature) / torch.exp(teacher / temperature).sum(1, keepdim=True)
        torch.testing.assert_close(soft_targets(teacher, temperature=temperature), expected)
    hot, warm = soft_targets(teacher, temperature=1.0), soft_targets(teacher, temperature=20.0)
    uniform = torch.full_like(hot, 1 / 4)
    assert (warm - uniform).abs().max() < (hot - uniform).abs().max()  # higher T: closer to uniform
    assert torch.equal(soft_targets(teacher, temperature=1.0).argmax(1), teacher.argmax(1))


def test_loss_is_t_squared_times_the_kl_divergence_written_out():
    student, teacher = _logits(1), _logits(2)
    for temperature in (1.0, 2.0, 5.0):
        p = torch.softmax(teacher / temperature, 1)
        log_q = torch.log_softmax(student / temperature, 1)
        manual = temperature**2 * (p * (p.log() - log_q)).sum(1).mean()
        oracle = temperature**2 * torch.distributions.kl_divergence(
            torch.distributions.Categorical(probs=p), torch.distributions.Categorical(logits=student / temperature)
        ).mean()
        got = distillation_loss(student, soft_targets(teacher, temperature=temperature), temperature=temperature)
        torch.testing.assert_close(got, manual)
        torch.testing.assert_close(got, oracle)
        assert got > 0
    same = distillation_loss(teacher, soft_targets(teacher, temperature=3.0), temperature=3.0)
    assert abs(float(same)) < 1e-12


def test_gradient_is_t_times_q_minus_p_over_n():
    # d/dz [T^2 KL(p || softmax(z / T))] = T (q - p) / N: the T^2 keeps the gradient's size as T grows
    student = _logits(3).requires_grad_(True)
    targets = soft_targets(_logits(4), temperature=4.0)
    distillation_loss(student, targets, temperature=4.0).backward()
    q = torch.softmax(student.detach() / 4.0, 1)
    torch.testing.assert_close(student.grad, 4.0 * (q - targets) / len(targets))


def test_one_hot_targets_give_tempered_cross_entropy():
    student = _logits(5)
    labels = torch.tensor([0, 3, 1, 1, 2])
    one_hot = nn.functional.one_hot(labels, 4).to(student.dtype)
    expected = 2.0**2 * nn.functional.cross_entropy(student / 2.0, labels)
    torch.testing.assert_close(distillation_loss(student, one_hot, temperature=2.0), expected)


def test_a_student_trained_with_the_loss_matches_the_teacher():
    torch.manual_seed(0)
    X = torch.randn(128, 5)
    teacher = nn.Linear(5, 3)
    with torch.no_grad():
        targets = soft_targets(teacher(X), temperature=2.0)
    student = nn.Linear(5, 3)
    loss_fn = DistillationLoss(2.0)
    history = fit(student, [(X, targets)], loss_fn=loss_fn, optimizer=torch.optim.Adam(student.parameters(), lr=0.05),
                  epochs=300, progress=False, device="cpu")
    assert history.train_loss[-1] < 0.01 * history.train_loss[0]
    with torch.no_grad():
        torch.testing.assert_close(soft_targets(student(X), temperature=2.0), targets, atol=0.02, rtol=0)
    assert repr(loss_fn) == "DistillationLoss(temperature=2.0)"


def test_bad_input():
    student, targets = torch.zeros(3, 4), torch.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"Expected `temperature` to be a float > 0, but got 0\."):
        soft_targets(student, temperature=0)
    with pytest.raises(ValueError, match=r"Expected `temperature` to be a float > 0, but got -1\."):
        DistillationLoss(-1)
    with pytest.raises(ValueError, match=r"Expected `teacher_logits` to be a tensor with 2 dimensions"):
        soft_targets(torch.zeros(4), temperature=1.0)
    with pytest.raises(TypeError, match=r"Expected `teacher_logits` to be a floating-point tensor"):
        soft_targets(torch.zeros(3, 4, dtype=torch.long), temperature=1.0)
    with pytest.raises(ValueError, match=r"Expected `student_logits` and `targets` to have the same shape"):
        distillation_loss(student, targets[:, :3], temperature=1.0)
    with pytest.raises(ValueError, match=r"Expected `targets` to be probabilities.*soft_targets"):
        distillation_loss(student, torch.randn(3, 4), temperature=1.0)  # logits passed as targets
    with pytest.raises(ValueError, match=r"Expected `targets` to be probabilities"):
        distillation_loss(student, torch.full((3, 4), 0.5), temperature=1.0)  # rows sum to 2
    with pytest.raises(TypeError, match=r"Expected `targets` to be a torch.Tensor"):
        distillation_loss(student, [[0.25] * 4] * 3, temperature=1.0)
    with pytest.raises(ValueError, match=r"Expected `targets` to be a tensor of finite values"):
        distillation_loss(student, torch.full((3, 4), float("nan")), temperature=1.0)
