"""Exercises of the side-notes notebook (4.0): gradient descent and backpropagation."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _sigmoid_grad_solution(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1 - s)


@exercise(
    "4.0-sigmoid-grad",
    "Write sigmoid_grad(z), the derivative of the sigmoid at every element of z, without autograd.",
    solution=_sigmoid_grad_solution,
)
def _grade_sigmoid_grad(answer: Callable[[torch.Tensor], torch.Tensor]) -> str | None:
    z = torch.linspace(-8, 8, 101, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(torch.sigmoid(z).sum(), z)
    got = answer(z.detach())
    if not isinstance(got, torch.Tensor) or got.shape != z.shape:
        return "return a tensor with the same shape as z."
    if not torch.allclose(got.double(), expected, atol=1e-6):
        worst = float(z.detach()[(got.double() - expected).abs().argmax()])
        return (
            f"your values differ from autograd's, most at z = {worst:.2f}. "
            "Write the derivative in terms of sigmoid(z) itself."
        )
    return None


def _sgd_step_solution(
    w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, lr: float
) -> torch.Tensor:
    residual = X @ w - y  # (B,)
    grad = 2 * X.T @ residual / len(y)  # d/dw of mean((X @ w - y) ** 2)
    return w - lr * grad


@exercise(
    "4.0-sgd-step",
    "Write sgd_step(w, X, y, lr): one mini-batch step on the loss mean((X @ w - y)**2), "
    "with the gradient worked out by hand.",
    solution=_sgd_step_solution,
)
def _grade_sgd_step(answer: Callable[..., torch.Tensor]) -> str | None:
    g = torch.Generator().manual_seed(1)
    X = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.randn(8, generator=g, dtype=torch.float64)
    w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    lr = 0.1
    (grad,) = torch.autograd.grad(((X @ w - y) ** 2).mean(), w)
    expected = w.detach() - lr * grad
    got = answer(w.detach().clone(), X, y, lr)
    if not isinstance(got, torch.Tensor) or got.shape != w.shape:
        return "return the updated weights: a tensor with the same shape as w."
    if torch.allclose(got.double(), w.detach()):
        return "the weights did not move: subtract lr times the gradient."
    if torch.allclose(got.double(), w.detach() + lr * grad):
        return "you stepped uphill: the update subtracts the gradient."
    if not torch.allclose(got.double(), expected, atol=1e-8):
        return (
            "the step has the wrong size or direction. The gradient of mean((Xw - y)^2) "
            "is 2 X^T (Xw - y) / B for a batch of B rows."
        )
    return None
