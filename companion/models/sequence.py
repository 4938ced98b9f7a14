"""Models for token sequences: a bag of words that ignores order, and a GRU that reads it.

Both take a batch of token ids ``(N, T)`` (ints in ``[0, vocab_size)``) and return
``(N, out_features)`` logits, so they train and compare under the same loop and loss.

* :class:`BagOfWords` counts each token and feeds the counts to a perceptron: any two
  sequences with the same tokens in another order get the same output.
* :class:`GRUClassifier` embeds each token, reads the sequence left to right with a GRU,
  and classifies from its last hidden state: it can tell "not good" from "good ... not".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from companion._validation import check_int, check_tensor, message
from companion.models.networks import MLP

__all__ = ["BagOfWords", "GRUClassifier"]


def _check_tokens(x: torch.Tensor, vocab_size: int) -> torch.Tensor:
    check_tensor("x", x, ndim=2)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(message("x", "a tensor of integer token ids", x))
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise ValueError(message("x", f"token ids in [0, {vocab_size})", x,
                                 found=f"ids from {int(x.min())} to {int(x.max())}"))
    return x


class BagOfWords(nn.Module):
    """Token counts into a perceptron: order-blind by construction.

    Each sequence becomes a vector of ``vocab_size`` counts (how often each token occurs),
    which :class:`~companion.models.MLP` maps to the logits. ``hidden=()`` gives a linear model
    on the counts (logistic regression on a bag of words).

    Args:
        vocab_size: number of distinct tokens, an int >= 1.
        out_features: output width (the number of classes), an int >= 1.
        hidden: widths of the perceptron's hidden layers, e.g. ``(32,)``.

    Shapes:
        input ``(N, T)`` integer token ids; output ``(N, out_features)`` logits.

    Example:
        >>> model = BagOfWords(5, 2, hidden=(8,))
        >>> x = torch.tensor([[1, 2, 3], [3, 2, 1]])
        >>> out = model(x)
        >>> out.shape, torch.equal(out[0], out[1])  # the same words in another order
        (torch.Size([2, 2]), True)
    """

    def __init__(self, vocab_size: int, out_features: int, *, hidden: Sequence[int] = ()) -> None:
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        self.mlp = MLP(self.vocab_size, hidden, self.out_features)

    def counts(self, x: torch.Tensor) -> torch.Tensor:
        """How often each token occurs in each sequence: ``(N, T) -> (N, vocab_size)`` floats.

        Example:
            >>> BagOfWords(4, 2).counts(torch.tensor([[1, 1, 3]])).tolist()
            [[0.0, 2.0, 0.0, 1.0]]
        """
        _check_tokens(x, self.vocab_size)
        out = torch.zeros(len(x), self.vocab_size, device=x.device)
        return out.scatter_add_(1, x.long(), torch.ones(x.shape, device=x.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.counts(x))


class GRUClassifier(nn.Module):
    """Embedding, a one-layer GRU read left to right, and a linear head on the last state.

    Args:
        vocab_size: number of distinct tokens, an int >= 1.
        out_features: output width (the number of classes), an int >= 1.
        embedding_dim: width of each token's embedding, an int >= 1.
        hidden_size: width of the GRU's state, an int >= 1.

    Shapes:
        input ``(N, T)`` integer token ids, ``T >= 1``; output ``(N, out_features)`` logits.

    Example:
        >>> model = GRUClassifier(5, 2, embedding_dim=4, hidden_size=8)
        >>> model(torch.tensor([[1, 2, 3], [3, 2, 1]])).shape
        torch.Size([2, 2])
    """

    def __init__(
        self, vocab_size: int, out_features: int, *, embedding_dim: int = 16, hidden_size: int = 32
    ) -> None:
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        self.embedding = nn.Embedding(self.vocab_size, check_int("embedding_dim", embedding_dim, low=1))
        self.gru = nn.GRU(embedding_dim, check_int("hidden_size", hidden_size, low=1), batch_first=True)
        self.head = nn.Linear(hidden_size, self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.vocab_size)  # (N, T), non-empty: T >= 1
        _, last = self.gru(self.embedding(x.long()))  # last: (1, N, hidden_size)
        return self.head(last[0])
