"""Embeddings for a categorical feature, and the rule of thumb for their dimension.

An embedding maps each of ``n_categories`` values to a learned vector of
``embedding_dim`` numbers. More dimensions can represent the relationships between
categories more accurately, but they add ``n_categories`` parameters each, train
slower and overfit more easily. A common starting point is
``embedding_dim ≈ n_categories ** 0.25`` (:func:`embedding_dim_rule_of_thumb`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from companion._validation import check_int, check_tensor, message
from companion.models.networks import MLP

__all__ = ["embedding_dim_rule_of_thumb", "CategoryEmbeddingModel"]


def embedding_dim_rule_of_thumb(n_categories: int) -> int:
    """The rule-of-thumb embedding dimension: ``n_categories ** 0.25``, rounded, at least 1.

    A starting point to tune from, not an optimum: the best dimension depends on
    how much structure the categories share and on how much data there is.

    Args:
        n_categories: number of distinct values of the feature, an int >= 1.

    Returns:
        The dimension, an int >= 1.

    Example:
        >>> [embedding_dim_rule_of_thumb(n) for n in (1, 10, 500, 10_000, 1_000_000)]
        [1, 2, 5, 10, 32]
    """
    n_categories = check_int("n_categories", n_categories, low=1)
    return max(1, round(n_categories**0.25))


class CategoryEmbeddingModel(nn.Module):
    """A model of one categorical feature: an embedding, then an MLP (or a linear layer).

    ``category ids -> nn.Embedding(n_categories, embedding_dim) -> MLP(embedding_dim,
    hidden, out_features)`` (ReLU hidden layers). With ``hidden=()`` the output is
    linear in the embedding, so ``embedding_dim`` alone sets the model's capacity:
    the matrix of all categories' outputs has rank at most ``embedding_dim``.

    ``forward`` checks the ids' range only on the CPU and outside
    ``torch.compile``/``torch.export`` tracing: reading the smallest and largest id
    of a tensor on an accelerator would wait for the device on every call, and
    tracing cannot branch on values. Out-of-range ids there are stopped by
    ``nn.Embedding`` itself (a device-side assertion on CUDA).

    Args:
        n_categories: number of distinct category ids, an int >= 1; ids run from 0.
        out_features: output width, an int >= 1.
        embedding_dim: size of each category's vector, an int >= 1; ``None`` uses
            :func:`embedding_dim_rule_of_thumb`.
        hidden: widths of hidden layers after the embedding, e.g. ``(32,)``.

    Shapes:
        input ``(N,)`` int64 (or int32) category ids in ``[0, n_categories)``;
        output ``(N, out_features)``.

    Example:
        >>> model = CategoryEmbeddingModel(500, 3)
        >>> model.embedding_dim
        5
        >>> model(torch.tensor([0, 7, 499])).shape
        torch.Size([3, 3])
    """

    def __init__(
        self,
        n_categories: int,
        out_features: int,
        *,
        embedding_dim: int | None = None,
        hidden: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.n_categories = check_int("n_categories", n_categories, low=1)
        if embedding_dim is None:
            embedding_dim = embedding_dim_rule_of_thumb(self.n_categories)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, low=1)
        self.embedding = nn.Embedding(self.n_categories, self.embedding_dim)
        self.head = MLP(self.embedding_dim, hidden, out_features)
        self.out_features = self.head.out_features

    def forward(self, categories: torch.Tensor) -> torch.Tensor:
        check_tensor("categories", categories, ndim=1, non_empty=False)
        if categories.dtype not in (torch.int64, torch.int32):
            raise TypeError(message("categories", "an int64 or int32 tensor of category ids", categories))
        if not torch.compiler.is_compiling() and categories.device.type == "cpu" and categories.numel():
            low, high = int(categories.min()), int(categories.max())
            if low < 0 or high >= self.n_categories:
                raise ValueError(
                    message("categories", f"ids in [0, {self.n_categories - 1}]", categories,
                            found=f"ids from {low} to {high}")
                )
        return self.head(self.embedding(categories))  # (N, embedding_dim) -> (N, out_features)
