"""Networks built from layers: the multilayer perceptron, a small CNN, and the activations they take.

Both networks return raw scores (logits); the loss, or a classifier's ``predict``,
applies the output non-linearity. Their hidden layers take an activation by name
from :data:`ACTIVATIONS`, optional batch normalization, and optional dropout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from companion._validation import (
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_tensor,
    message,
)

__all__ = ["ACTIVATIONS", "MLP", "SmallCNN"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
"""The hidden-layer activations :class:`MLP` and :class:`SmallCNN` accept, by name."""


def _check_widths(name: str, widths: Sequence[int]) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(message(name, "a sequence of ints >= 1", widths))
    return tuple(check_int(f"{name}[{i}]", w, low=1) for i, w in enumerate(widths))


def _check_layer_options(activation: str, batch_norm: bool, dropout: float) -> tuple[str, float]:
    """Validate the hidden-layer options both networks take; return ``(activation, dropout)``."""
    activation = check_choice("activation", activation, ACTIVATIONS)
    check_instance("batch_norm", batch_norm, bool, "a bool")
    dropout = check_float("dropout", dropout, low=0, high=1, high_open=True)
    return activation, dropout


class MLP(nn.Module):
    """A multilayer perceptron: ``Linear -> [BatchNorm] -> activation -> [Dropout]`` per hidden layer.

    All layers sit in one :class:`torch.nn.Sequential`, ``self.layers``, in order,
    so per-layer hooks find every ``nn.Linear`` and activation module with
    ``model.layers`` (or ``model.modules()``). The last layer, ``self.output_layer``,
    is a plain ``nn.Linear`` with ``out_features`` units and no activation: the
    model returns raw scores (logits), and the loss or a ``predict`` method applies
    the output non-linearity. Inputs with more than two dimensions (images) are
    flattened first.

    Args:
        in_features: input width, an int >= 1.
        hidden: widths of the hidden layers, e.g. ``(64, 32)``; ``()`` gives a
            linear model.
        out_features: output width, an int >= 1.
        activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"``, used after each hidden layer.
        batch_norm: put ``nn.BatchNorm1d`` between each hidden ``Linear`` and its activation.
        dropout: dropout probability after each hidden activation, a float in ``[0, 1)``.

    Shapes:
        input ``(N, in_features)`` floating point (or ``(N, *)`` with ``in_features``
        elements per example), output ``(N, out_features)``.

    Example:
        >>> model = MLP(4, (8, 8), 3, activation="tanh", dropout=0.1)
        >>> model(torch.randn(5, 4)).shape
        torch.Size([5, 3])
        >>> sum(isinstance(m, nn.Linear) for m in model.layers)
        3
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        self.hidden = _check_widths("hidden", hidden)
        self.out_features = check_int("out_features", out_features, low=1)
        self.activation, dropout = _check_layer_options(activation, batch_norm, dropout)
        layers: list[nn.Module] = []
        width = self.in_features
        for h in self.hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[self.activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, self.out_features))
        self.layers = nn.Sequential(*layers)

    @property
    def output_layer(self) -> nn.Linear:
        """The last ``nn.Linear``: one unit per output (per class for a classifier)."""
        return self.layers[-1]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the output layer: ``(N, in_features) -> (N, last hidden width)``.

        Example:
            >>> MLP(4, (8, 6), 2).body(torch.randn(3, 4)).shape
            torch.Size([3, 6])
        """
        return self.layers[:-1](self._flat_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self._flat_input(x))

    def _flat_input(self, x: torch.Tensor) -> torch.Tensor:
        # Shapes and dtypes only: no value is read, so this costs no device sync.
        check_tensor("x", x, floating=True, non_empty=False)
        if x.ndim < 2 or x.shape[1:].numel() != self.in_features:
            raise ValueError(
                message("x", f"a tensor of shape (N, {self.in_features}) or (N, *) with "
                             f"{self.in_features} elements per row", x)
            )
        return x.flatten(1)


class SmallCNN(nn.Module):
    """A small convolutional network: conv blocks, global average pooling, one linear head.

    Each block is ``Conv2d(3x3, padding 1) -> [BatchNorm2d] -> activation ->
    MaxPool2d(2)``. After the blocks, global average pooling makes the features
    independent of the image size. ``self.features`` (an ``nn.Sequential``) maps
    images to feature vectors ``(N, channels[-1])`` and ``self.head`` (an
    ``nn.Linear``) maps them to ``out_features`` scores (one per class for a
    classifier), so transfer learning can freeze ``features`` and replace ``head``.

    Args:
        in_channels: image channels, an int >= 1.
        out_features: output width (the number of classes), an int >= 1.
        channels: output channels of each conv block, e.g. ``(16, 32)``; each
            block halves the height and width, so images need at least
            ``2 ** len(channels)`` pixels a side.
        activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"``.
        batch_norm: add ``nn.BatchNorm2d`` after each convolution.
        dropout: dropout probability before the head, a float in ``[0, 1)``.

    Shapes:
        input ``(N, in_channels, H, W)``, output ``(N, out_features)`` logits.

    Example:
        >>> model = SmallCNN(3, 5, channels=(8, 16))
        >>> model(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 5])
        >>> model.features(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_features: int,
        *,
        channels: Sequence[int] = (16, 32),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        self.channels = _check_widths("channels", channels)
        if not self.channels:
            raise ValueError(message("channels", "a non-empty sequence of ints >= 1", channels))
        self.activation, dropout = _check_layer_options(activation, batch_norm, dropout)
        blocks: list[nn.Module] = []
        width = self.in_channels
        for c in self.channels:
            blocks.append(nn.Conv2d(width, c, kernel_size=3, padding=1))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(c))
            blocks += [ACTIVATIONS[self.activation](), nn.MaxPool2d(2)]
            width = c
        blocks += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            blocks.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(width, self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=4, floating=True, non_empty=False)
        side = 2 ** len(self.channels)
        if x.shape[1] != self.in_channels or min(x.shape[-2:]) < side:
            raise ValueError(
                message(
                    "x",
                    f"images of shape (N, {self.in_channels}, H, W) with H, W >= {side}",
                    x,
                )
            )
        return self.head(self.features(x))
