"""A tiny transformer encoder for token sequences, with a masked-word head and a classifier head.

The encoder is the architecture of BERT at toy scale: token and position
embeddings, then pre-norm blocks of self-attention and a feed-forward network.
The attention's projections are separate ``nn.Linear`` layers named ``query``,
``key``, ``value`` and ``output``, and the feed-forward layers ``up`` and ``down``,
so that adapter libraries such as ``peft`` can target them by name
(``torch.nn.MultiheadAttention`` fuses the three input projections into one
weight, which LoRA cannot target one by one).

* :class:`TinyTransformer`: token ids ``(N, L)`` to hidden states ``(N, L, d_model)``.
* :class:`MaskedLanguageModel`: the encoder and a head that predicts every
  position's token ``(N, L, vocab_size)``: the pretraining task.
* :class:`SequenceClassifier`: the encoder, the mean of the hidden states over
  the positions, and a linear head ``(N, out_features)``: a downstream task.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from companion._validation import check_instance, check_int, check_tensor, message

__all__ = ["MaskedLanguageModel", "SequenceClassifier", "TinyTransformer"]


class _SelfAttention(nn.Module):
    """Multi-head self-attention with separate ``query``, ``key``, ``value`` and ``output`` layers."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape  # (N, L, D)

        def heads(t: torch.Tensor) -> torch.Tensor:  # (N, L, D) -> (N, H, L, D / H)
            return t.view(n, length, self.n_heads, d // self.n_heads).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.n_heads), dim=-1)  # (N, H, L, L)
        mixed = (weights @ v).transpose(1, 2).reshape(n, length, d)  # (N, L, D)
        return self.output(mixed)


class _Block(nn.Module):
    """Pre-norm transformer block: ``x + attention(norm(x))``, then ``x + ffn(norm(x))``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = _SelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm2(x))))


class TinyTransformer(nn.Module):
    """A transformer encoder: token ids ``(N, L)`` to hidden states ``(N, L, d_model)``.

    Args:
        vocab_size: number of token ids, an int >= 2.
        max_length: longest sequence it accepts (positions it has embeddings for), an int >= 1.
        d_model: width of the hidden states, an int >= 1 divisible by ``n_heads``.
        n_heads: attention heads per block, an int >= 1.
        n_layers: transformer blocks, an int >= 1.
        d_ff: width of the feed-forward layer, an int >= 1.

    Example:
        >>> encoder = TinyTransformer(10, max_length=6, d_model=8, n_heads=2, n_layers=1, d_ff=16)
        >>> encoder(torch.zeros(3, 6, dtype=torch.long)).shape
        torch.Size([3, 6, 8])
        >>> sorted({name.rsplit(".", 1)[-1] for name, m in encoder.named_modules() if isinstance(m, nn.Linear)})
        ['down', 'key', 'output', 'query', 'up', 'value']
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        max_length: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 256,
    ) -> None:
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, low=2)
        self.max_length = check_int("max_length", max_length, low=1)
        self.d_model = check_int("d_model", d_model, low=1)
        n_heads = check_int("n_heads", n_heads, low=1)
        if d_model % n_heads:
            raise ValueError(message("d_model", f"divisible by n_heads={n_heads}", d_model))
        n_layers = check_int("n_layers", n_layers, low=1)
        d_ff = check_int("d_ff", d_ff, low=1)
        self.config = {"vocab_size": vocab_size, "max_length": max_length, "d_model": d_model,
                       "n_heads": n_heads, "n_layers": n_layers, "d_ff": d_ff}
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_length, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tensor("tokens", tokens, ndim=2)
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise TypeError(message("tokens", "a tensor of integer token ids", tokens))
        if tokens.shape[1] > self.max_length:
            raise ValueError(message("tokens", f"sequences of at most max_length={self.max_length} tokens",
                                     tokens))
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)  # (N, L, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class MaskedLanguageModel(nn.Module):
    """The pretraining model: an encoder and a linear head that predicts each position's token.

    Args:
        encoder: a :class:`TinyTransformer`.

    Output: logits ``(N, L, vocab_size)``; train with cross-entropy on the masked
    positions only (see :mod:`companion.pretrain_text`).

    Example:
        >>> model = MaskedLanguageModel(TinyTransformer(10, max_length=6, d_model=8, n_heads=2))
        >>> model(torch.zeros(3, 6, dtype=torch.long)).shape
        torch.Size([3, 6, 10])
    """

    def __init__(self, encoder: TinyTransformer) -> None:
        super().__init__()
        check_instance("encoder", encoder, TinyTransformer, "a TinyTransformer")
        self.encoder = encoder
        self.head = nn.Linear(encoder.d_model, encoder.vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens))


class SequenceClassifier(nn.Module):
    """An encoder, the mean of its hidden states over the positions, and a linear ``head``.

    Args:
        encoder: a :class:`TinyTransformer` (pretrained or not).
        out_features: number of classes, an int >= 1.

    Output: logits ``(N, out_features)``; :meth:`features` returns the pooled
    hidden states ``(N, d_model)`` that the head reads.

    Example:
        >>> model = SequenceClassifier(TinyTransformer(10, max_length=6, d_model=8, n_heads=2), 3)
        >>> model(torch.zeros(4, 6, dtype=torch.long)).shape, model.features(torch.zeros(4, 6, dtype=torch.long)).shape
        (torch.Size([4, 3]), torch.Size([4, 8]))
    """

    def __init__(self, encoder: TinyTransformer, out_features: int) -> None:
        super().__init__()
        check_instance("encoder", encoder, TinyTransformer, "a TinyTransformer")
        self.out_features = check_int("out_features", out_features, low=1)
        self.encoder = encoder
        self.head = nn.Linear(encoder.d_model, out_features)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens).mean(dim=1)  # (N, D)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))
