"""Backpropagation written out by hand, to read beside autograd.

:class:`ScratchMLP` is a fully connected network whose backward pass is the chain
rule applied layer by layer, with no autograd. The test suite checks its
gradients against PyTorch's autograd, the way micrograd checks its engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from companion._validation import check_choice, check_int, check_tensor, message

__all__ = ["ScratchMLP", "ACTIVATION_FUNCTIONS"]

ActivationFunction = Callable[[torch.Tensor], torch.Tensor]

ACTIVATION_FUNCTIONS: dict[str, tuple[ActivationFunction, ActivationFunction]] = {
    "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
    "sigmoid": (torch.sigmoid, lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))),
    "relu": (torch.relu, lambda z: (z > 0).to(z.dtype)),
}
"""Activation name -> ``(function, derivative)``, the derivative written in terms of the input ``z``.

(:data:`companion.models.ACTIVATIONS` maps the same names to ``nn.Module`` classes.)
"""


class ScratchMLP:
    """A multilayer perceptron with a hand-written forward and backward pass.

    Hidden layers compute ``a = act(a_prev @ W + b)``; the last layer is linear.
    The loss is the mean squared error ``mean((out - y)**2)``.

    Args:
        sizes: layer widths from input to output, e.g. ``(2, 8, 1)``; at least two.
        activation: ``"tanh"``, ``"sigmoid"`` or ``"relu"``.
        seed: seed for the initial weights (scaled by ``1/sqrt(fan_in)``).

    Example:
        >>> net = ScratchMLP((2, 4, 1))
        >>> x, y = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 1, dtype=torch.float64)
        >>> loss, grads = net.loss_and_gradients(x, y)
        >>> [tuple(g.shape) for g in grads[:2]]
        [(2, 4), (4,)]
    """

    def __init__(self, sizes: Sequence[int], *, activation: str = "tanh", seed: int = 0) -> None:
        if len(sizes) < 2:
            raise ValueError(message("sizes", "a sequence of at least two layer widths", tuple(sizes)))
        self.sizes = tuple(check_int(f"sizes[{i}]", s, low=1) for i, s in enumerate(sizes))
        self.activation = check_choice("activation", activation, ACTIVATION_FUNCTIONS)
        g = torch.Generator().manual_seed(check_int("seed", seed, low=0))
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = torch.randn(fan_in, fan_out, generator=g, dtype=torch.float64) / fan_in**0.5
            self.weights.append(w)
            self.biases.append(torch.zeros(fan_out, dtype=torch.float64))

    @property
    def parameters(self) -> list[torch.Tensor]:
        """``[W1, b1, W2, b2, ...]``, the order of :meth:`loss_and_gradients`' gradients."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def _check_xy(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        check_tensor("x", x, ndim=2, floating=True)
        if x.shape[1] != self.sizes[0]:
            raise ValueError(message("x", f"a tensor with {self.sizes[0]} columns", x))
        if y is not None:
            check_tensor("y", y, ndim=2, floating=True)
            if y.shape != (x.shape[0], self.sizes[-1]):
                raise ValueError(message("y", f"a tensor of shape {(x.shape[0], self.sizes[-1])}", y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output ``(N, sizes[-1])`` for input ``x`` of shape ``(N, sizes[0])``."""
        self._check_xy(x)
        return self._forward(x.to(torch.float64))[0]

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        act = ACTIVATION_FUNCTIONS[self.activation][0]
        inputs, pre_activations = [], []  # what each layer saw, and its z = a @ W + b
        a = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(a)
            z = a @ w + b  # (N, fan_out)
            pre_activations.append(z)
            a = z if i == len(self.weights) - 1 else act(z)
        return a, inputs, pre_activations

    def loss_and_gradients(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[float, list[torch.Tensor]]:
        """Mean squared error and its gradient for every parameter, by the chain rule.

        Args:
            x: inputs ``(N, sizes[0])``.
            y: targets ``(N, sizes[-1])``.

        Returns:
            ``(loss, [dW1, db1, dW2, db2, ...])`` in :attr:`parameters` order.
        """
        self._check_xy(x, y)
        out, inputs, pre = self._forward(x.to(torch.float64))
        y = y.to(torch.float64)
        derivative = ACTIVATION_FUNCTIONS[self.activation][1]
        loss = float(((out - y) ** 2).mean())
        delta = 2 * (out - y) / out.numel()  # dL/dz of the linear output layer, (N, out)
        grads: list[torch.Tensor] = []
        for i in reversed(range(len(self.weights))):
            grads = [inputs[i].T @ delta, delta.sum(dim=0), *grads]  # dL/dW_i, dL/db_i
            if i > 0:  # pass the error back through W_i and the previous activation
                delta = (delta @ self.weights[i].T) * derivative(pre[i - 1])
        return loss, grads

    def step(self, x: torch.Tensor, y: torch.Tensor, *, lr: float) -> float:
        """One gradient-descent step on ``(x, y)``; returns the loss before the step."""
        loss, grads = self.loss_and_gradients(x, y)
        for p, g in zip(self.parameters, grads):
            p -= lr * g
        return loss
