"""Exercises of the side-notes notebook (4.0): gradient descent and backpropagation."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise
from companion.exercises._shortcuts import AUTOGRAD, call_without

_NO_AUTOGRAD = (
    "this exercise asks for the derivative worked out by hand, and autograd (.backward(), "
    "torch.autograd.grad, torch.func) is switched off while it is graded."
)


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
    z = z.detach()
    got, used = call_without(AUTOGRAD, answer, z.clone())
    if used:
        return _NO_AUTOGRAD
    if not isinstance(got, torch.Tensor) or got.shape != z.shape:
        return "return a tensor with the same shape as z."
    got = got.detach().double()
    if torch.allclose(got, torch.sigmoid(z)):
        return "you returned the sigmoid itself; the exercise asks for its derivative."
    if (got < 0).any() and torch.allclose(got, -expected, atol=1e-6):
        return "the sign is flipped: the sigmoid increases everywhere, so its derivative is positive."
    if not torch.allclose(got, expected, atol=1e-6):
        worst = float(z[(got - expected).abs().argmax()])
        return (
            f"your values differ from the true derivative, most at z = {worst:.2f}. "
            "Write the derivative in terms of sigmoid(z) itself."
        )
    extreme = torch.tensor([-1000.0, -100.0, 100.0, 1000.0], dtype=torch.float64)
    got_extreme, _ = call_without(AUTOGRAD, answer, extreme.clone())
    if not isinstance(got_extreme, torch.Tensor) or not torch.isfinite(got_extreme).all():
        return (
            "for z = ±1000 you return NaN or inf: exp() overflows there. The derivative is "
            "about 0 at large |z|; write it in terms of sigmoid(z), which never overflows."
        )
    if not torch.allclose(got_extreme.double(), torch.zeros(4, dtype=torch.float64), atol=1e-12):
        return "at z = ±1000 the derivative is 0 (the sigmoid is flat there); yours is not."
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
    w = w.detach()
    got, used = call_without(AUTOGRAD, answer, w.clone(), X.clone(), y.clone(), lr)
    if used:
        return _NO_AUTOGRAD
    if not isinstance(got, torch.Tensor) or got.shape != w.shape:
        return "return the updated weights: a tensor with the same shape as w."
    got = got.detach().double()

    def moved_by(step: torch.Tensor) -> bool:
        return torch.allclose(got, w + step, atol=1e-8)

    if moved_by(torch.zeros_like(w)):
        return "the weights did not move: subtract lr times the gradient."
    if moved_by(lr * grad):
        return "you stepped uphill: the update subtracts the gradient (check the sign of the residual too)."
    if moved_by(-lr * grad / 2):
        return "the step is half as long as it should be: the derivative of a square brings a factor 2."
    if moved_by(-lr * grad * len(y)):
        return (
            "the step is B times too long: the loss is a mean over the batch, so divide the summed "
            "gradient by the batch size B."
        )
    if moved_by(-lr * grad * len(y) / (len(y) - 1)):
        return "the loss is a mean over B rows: divide by B, not B - 1."
    if not moved_by(-lr * grad):
        return (
            "the step has the wrong size or direction. The gradient of mean((Xw - y)^2) "
            "is 2 X^T (Xw - y) / B for a batch of B rows."
        )
    return None
