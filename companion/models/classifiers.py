"""Classifiers: an MLP with a softmax head (one label per example) or sigmoid heads (several).

Both are :class:`~companion.models.networks.MLP` networks that return logits, with
the loss that matches their output (``model.loss``, for ``fit(loss_fn=model.loss)``)
and scikit-learn-like ``predict_proba`` (probabilities) and ``predict`` (labels),
which run the model through :func:`companion.inference.predict_logits`: in eval
mode, without gradients, on the model's device, returning CPU tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from companion._validation import check_float, check_int, check_same_length, check_tensor, message
from companion.inference import logits_to_labels, predict_logits
from companion.models.networks import MLP

__all__ = ["SoftmaxClassifier", "MultiLabelClassifier"]


def _check_logits(model: MLP, output: torch.Tensor) -> torch.Tensor:
    check_tensor("output", output, ndim=2, floating=True)
    if output.shape[1] != model.out_features:
        raise ValueError(message("output", f"logits of shape (N, {model.out_features})", output))
    return output


class SoftmaxClassifier(MLP):
    """Multi-class, single-label classifier: an :class:`MLP` whose output layer feeds one softmax.

    The output layer has one unit per class (``out_features`` logits); the softmax
    over them gives one probability per class, and these sum to 1, because each
    example belongs to exactly one class. :meth:`loss` is cross-entropy.

    Args:
        in_features: input width, an int >= 1.
        out_features: number of classes, an int >= 2.
        hidden: hidden-layer widths (``()`` is multinomial logistic regression).
        activation, batch_norm, dropout: as in :class:`MLP`.

    Shapes:
        input ``(N, in_features)``, output ``(N, out_features)`` logits; targets
        ``(N,)`` class indices.

    Example:
        >>> model = SoftmaxClassifier(4, 3, hidden=(8,))
        >>> p = model.predict_proba(torch.randn(5, 4))
        >>> tuple(p.shape), bool(torch.allclose(p.sum(1), torch.ones(5)))
        ((5, 3), True)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        out_features = check_int("out_features", out_features, low=2)
        super().__init__(in_features, hidden, out_features,
                         activation=activation, batch_norm=batch_norm, dropout=dropout)

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of class indices ``y`` ``(N,)`` given logits ``output`` ``(N, C)``.

        Example:
            >>> SoftmaxClassifier(2, 2).loss(torch.zeros(3, 2), torch.tensor([0, 1, 1]))
            tensor(0.6931)
        """
        _check_logits(self, output)
        check_tensor("y", y, ndim=1)
        if y.is_floating_point() or y.dtype == torch.bool:
            raise TypeError(message("y", "an integer tensor of class indices", y))
        check_same_length("output", output, "y", y)
        return F.cross_entropy(output, y)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, out_features)``; each row sums to 1. On the CPU, no gradient.

        Example:
            >>> p = SoftmaxClassifier(4, 3).predict_proba(torch.zeros(2, 4))
            >>> tuple(p.shape), [round(float(s), 4) for s in p.sum(1)]
            ((2, 3), [1.0, 1.0])
        """
        return torch.softmax(predict_logits(self, x), dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class of each example, ``(N,)`` int64.

        Example:
            >>> SoftmaxClassifier(4, 3).predict(torch.zeros(2, 4)).dtype
            torch.int64
        """
        return logits_to_labels(predict_logits(self, x))


class MultiLabelClassifier(MLP):
    """Multi-class, multi-label classifier: an :class:`MLP` with one sigmoid per label.

    Each output unit is an independent logistic regression on the shared hidden
    features: its sigmoid is the probability that the example carries that label,
    so an example can carry several labels or none and the probabilities need not
    sum to 1. :meth:`loss` is binary cross-entropy on each label.

    Args:
        in_features: input width, an int >= 1.
        out_features: number of labels, an int >= 1.
        hidden: hidden-layer widths.
        threshold: :meth:`predict` marks a label present when its probability is
            at least this, a float in ``(0, 1)``.
        activation, batch_norm, dropout: as in :class:`MLP`.

    Shapes:
        input ``(N, in_features)``, output ``(N, out_features)`` logits; targets
        ``(N, out_features)`` in ``{0, 1}``.

    Example:
        >>> model = MultiLabelClassifier(4, 3, hidden=(8,))
        >>> model.predict(torch.randn(5, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden: Sequence[int] = (),
        threshold: float = 0.5,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_features, hidden, out_features,
                         activation=activation, batch_norm=batch_norm, dropout=dropout)
        self.threshold = check_float(
            "threshold", threshold, low=0, high=1, low_open=True, high_open=True
        )

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy of 0/1 targets ``y`` ``(N, L)`` given logits ``output`` ``(N, L)``.

        Example:
            >>> MultiLabelClassifier(2, 2).loss(torch.zeros(1, 2), torch.tensor([[0, 1]]))
            tensor(0.6931)
        """
        _check_logits(self, output)
        check_tensor("y", y)
        if y.shape != output.shape:
            raise ValueError(message("y", f"0/1 targets of the output's shape {tuple(output.shape)}", y))
        return F.binary_cross_entropy_with_logits(output, y.to(output.dtype))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Per-label probabilities ``(N, out_features)``, each in ``(0, 1)``. On the CPU, no gradient.

        Example:
            >>> MultiLabelClassifier(4, 2).predict_proba(torch.zeros(1, 4)).shape
            torch.Size([1, 2])
        """
        return torch.sigmoid(predict_logits(self, x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """0/1 label indicators ``(N, out_features)`` (int64): probability >= ``threshold``.

        Example:
            >>> MultiLabelClassifier(4, 2, threshold=0.3).predict(torch.zeros(1, 4)).shape
            torch.Size([1, 2])
        """
        return (self.predict_proba(x) >= self.threshold).long()
