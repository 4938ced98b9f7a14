"""From-scratch teaching code: what the library does, written out to read and compare.

The notebooks set these beside PyTorch's own machinery: :mod:`~companion.scratch.backprop`
computes a network's gradients by the chain rule with no autograd (checked against
autograd), and :mod:`~companion.scratch.descent` writes the gradient-descent loop by hand
(no ``torch.optim``) so that full-batch, stochastic and mini-batch descent differ in one
number. Use the library (``loss.backward()``, ``torch.optim``) for real training.

Example:
    >>> from companion.scratch import ScratchMLP
    >>> net = ScratchMLP((2, 3, 1), activation="relu")
    >>> tuple(net.forward(torch.zeros(4, 2, dtype=torch.float64)).shape)
    (4, 1)
"""

import torch  # noqa: F401  (for the doctest above)

from companion.scratch.backprop import ACTIVATION_FUNCTIONS, ScratchMLP
from companion.scratch.descent import DescentRun, LossFn, gradient_noise, minibatch_descent

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "DescentRun",
    "LossFn",
    "ScratchMLP",
    "gradient_noise",
    "minibatch_descent",
]
