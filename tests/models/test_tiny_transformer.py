"""Tests for companion.models.tiny_transformer, with torch's own attention as the oracle."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.models.tiny_transformer import (
    MaskedLanguageModel,
    SequenceClassifier,
    TinyTransformer,
)


def _encoder(**overrides) -> TinyTransformer:
    torch.manual_seed(0)
    settings = {"max_length": 7, "d_model": 12, "n_heads": 3, "n_layers": 2, "d_ff": 20} | overrides
    return TinyTransformer(15, **settings)


def test_attention_matches_torch_multihead_attention():
    attention = _encoder().blocks[0].attention
    reference = nn.MultiheadAttention(12, 3, batch_first=True)
    with torch.no_grad():  # torch fuses the three projections into one weight
        reference.in_proj_weight.copy_(torch.cat([attention.query.weight, attention.key.weight, attention.value.weight]))
        reference.in_proj_bias.copy_(torch.cat([attention.query.bias, attention.key.bias, attention.value.bias]))
        reference.out_proj.weight.copy_(attention.output.weight)
        reference.out_proj.bias.copy_(attention.output.bias)
        x = torch.randn(4, 7, 12)
        expected, _ = reference(x, x, x, need_weights=False)
        torch.testing.assert_close(attention(x), expected)


def test_block_is_pre_norm_residual_attention_then_feed_forward():
    block = _encoder().blocks[0]
    x = torch.randn(2, 5, 12)
    with torch.no_grad():
        h = x + block.attention(block.norm1(x))
        expected = h + block.down(nn.functional.gelu(block.up(block.norm2(h))))
        torch.testing.assert_close(block(x), expected)


def test_shapes_and_positions_matter():
    encoder = _encoder()
    tokens = torch.randint(0, 15, (3, 7))
    assert encoder(tokens).shape == (3, 7, 12)
    assert encoder(tokens[:, :4]).shape == (3, 4, 12)  # shorter sequences are fine
    mlm, classifier = MaskedLanguageModel(encoder), SequenceClassifier(encoder, 5)
    assert mlm(tokens).shape == (3, 7, 15) and classifier(tokens).shape == (3, 5)
    torch.testing.assert_close(classifier.features(tokens), encoder(tokens).mean(1))
    swapped = tokens[:, [1, 0, 2, 3, 4, 5, 6]]
    assert not torch.allclose(classifier.features(tokens), classifier.features(swapped))  # order is seen
    names = {name.rsplit(".", 1)[-1] for name, m in encoder.named_modules() if isinstance(m, nn.Linear)}
    assert names == {"query", "key", "value", "output", "up", "down"}
    assert encoder.config == {"vocab_size": 15, "max_length": 7, "d_model": 12, "n_heads": 3, "n_layers": 2,
                              "d_ff": 20}


def test_bad_input():
    with pytest.raises(ValueError, match=r"Expected `d_model` to be divisible by n_heads=5, but got 12\."):
        _encoder(n_heads=5)
    with pytest.raises(ValueError, match=r"Expected `vocab_size` to be an int >= 2, but got 1\."):
        TinyTransformer(1, max_length=3)
    encoder = _encoder()
    with pytest.raises(TypeError, match=r"Expected `tokens` to be a tensor of integer token ids"):
        encoder(torch.zeros(2, 7))
    with pytest.raises(ValueError, match=r"Expected `tokens` to be sequences of at most max_length=7 tokens"):
        encoder(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `tokens` to be a tensor with 2 dimensions"):
        encoder(torch.zeros(7, dtype=torch.long))
    with pytest.raises(TypeError, match=r"Expected `encoder` to be a TinyTransformer"):
        SequenceClassifier(nn.Linear(2, 2), 3)
    with pytest.raises(ValueError, match=r"Expected `out_features` to be an int >= 1, but got 0\."):
        SequenceClassifier(encoder, 0)
    with pytest.raises(TypeError, match=r"Expected `encoder` to be a TinyTransformer"):
        MaskedLanguageModel("bert")
