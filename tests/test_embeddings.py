"""Tests for companion.embeddings: the rule of thumb against numpy, and the embedding model
against a one-hot matrix product."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from companion.data import make_categorical
from companion.embeddings import CategoryEmbeddingModel, embedding_dim_rule_of_thumb


@pytest.mark.parametrize("n", [1, 2, 15, 16, 81, 100, 500, 10_000, 123_456, 10**8])
def test_rule_of_thumb_is_fourth_root_rounded(n):
    assert embedding_dim_rule_of_thumb(n) == max(1, int(np.round(n ** 0.25)))


def test_rule_of_thumb_grows_slowly_and_monotonically():
    dims = [embedding_dim_rule_of_thumb(n) for n in range(1, 5000)]
    assert dims == sorted(dims) and dims[0] == 1 and dims[-1] == 8


def test_rule_of_thumb_bad_input():
    with pytest.raises(ValueError, match=r"Expected `n_categories` to be an int >= 1, but got 0\."):
        embedding_dim_rule_of_thumb(0)
    with pytest.raises(TypeError, match=r"Expected `n_categories` to be an int >= 1, but got 3.0\."):
        embedding_dim_rule_of_thumb(3.0)


def test_embedding_is_a_one_hot_times_a_matrix():
    torch.manual_seed(0)
    model = CategoryEmbeddingModel(7, 2, embedding_dim=3)
    ids = torch.tensor([0, 6, 3, 3])
    one_hot = nn.functional.one_hot(ids, 7).float()
    linear = model.head[0]
    expected = one_hot @ model.embedding.weight @ linear.weight.T + linear.bias
    torch.testing.assert_close(model(ids), expected)


def test_outputs_over_all_categories_have_rank_at_most_embedding_dim():
    torch.manual_seed(0)
    model = CategoryEmbeddingModel(50, 10, embedding_dim=3)
    with torch.no_grad():
        table = model(torch.arange(50)) - model.head[0].bias  # remove the constant offset
    assert torch.linalg.matrix_rank(table) == 3


def test_default_dimension_hidden_layers_and_parameter_count():
    model = CategoryEmbeddingModel(500, 4, hidden=(8,))
    assert model.embedding_dim == embedding_dim_rule_of_thumb(500) == 5
    assert sum(p.numel() for p in model.parameters()) == 500 * 5 + (5 * 8 + 8) + (8 * 4 + 4)
    X, _ = make_categorical(20, n_categories=500)
    assert model(X).shape == (20, 4)


def test_a_wide_enough_embedding_learns_the_category_means():
    X, y = make_categorical(2000, n_categories=20, n_factors=2, n_outputs=3, noise=0.1)
    torch.manual_seed(0)
    model = CategoryEmbeddingModel(20, 3, embedding_dim=2)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(X), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1**2 * 1.5  # the noise variance, up to estimation error


def test_embedding_model_bad_inputs():
    model = CategoryEmbeddingModel(5, 1)
    with pytest.raises(TypeError, match=r"Expected `categories` to be a tensor of int64 category ids"):
        model(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"Expected `categories` to be ids in \[0, 4\], but got 'ids from 0 to 5'\."):
        model(torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"Expected `categories` to be ids in \[0, 4\]"):
        model(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"Expected `categories` to be a tensor with 1 dimensions"):
        model(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `embedding_dim` to be an int >= 1, but got 0\."):
        CategoryEmbeddingModel(5, 1, embedding_dim=0)
    with pytest.raises(ValueError, match=r"Expected `hidden\[1\]` to be an int >= 1, but got 0\."):
        CategoryEmbeddingModel(5, 1, hidden=(4, 0))
    with pytest.raises(TypeError):
        CategoryEmbeddingModel(5, 1, 3)  # embedding_dim is keyword-only


def test_make_categorical_bad_input_and_shared_world():
    with pytest.raises(ValueError, match=r"Expected `n_categories` to be an int >= 2, but got 1\."):
        make_categorical(10, n_categories=1)
    # the same world, different rows: identical category -> target map up to noise
    a, b = make_categorical(5000, n_categories=3, noise=0.0, seed=1), make_categorical(
        5000, n_categories=3, noise=0.0, seed=2)
    for c in range(3):
        torch.testing.assert_close(a.y[a.X == c][0], b.y[b.X == c][0])
