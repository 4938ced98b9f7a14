"""Tests for companion.models.embedding: the rule of thumb against numpy, the embedding model
against a one-hot matrix product, and a forward that neither syncs nor blocks torch.export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from companion.data import make_categorical
from companion.models import CategoryEmbeddingModel, embedding_dim_rule_of_thumb


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
    linear = model.head.output_layer
    expected = one_hot @ model.embedding.weight @ linear.weight.T + linear.bias
    torch.testing.assert_close(model(ids), expected)


def test_outputs_over_all_categories_have_rank_at_most_embedding_dim():
    torch.manual_seed(0)
    model = CategoryEmbeddingModel(50, 10, embedding_dim=3)
    with torch.no_grad():
        table = model(torch.arange(50)) - model.head.output_layer.bias  # remove the constant offset
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
    with pytest.raises(TypeError, match=r"Expected `categories` to be an int64 or int32 tensor of category ids"):
        model(torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"Expected `categories` to be a torch.Tensor, but got \[0, 1\]\."):
        model([0, 1])
    with pytest.raises(
        ValueError,
        match=r"Expected `categories` to be ids in \[0, 4\], but got a tensor .*: found ids from 0 to 5\.",
    ):
        model(torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"Expected `categories` to be ids in \[0, 4\]"):
        model(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"Expected `categories` to be a tensor with 1 dimensions"):
        model(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `embedding_dim` to be an int >= 1, but got 0\."):
        CategoryEmbeddingModel(5, 1, embedding_dim=0)
    with pytest.raises(ValueError, match=r"Expected `hidden\[1\]` to be an int >= 1, but got 0\."):
        CategoryEmbeddingModel(5, 1, hidden=(4, 0))
    with pytest.raises(TypeError, match=r"Expected `hidden` to be a sequence of ints >= 1, but got 4\."):
        CategoryEmbeddingModel(5, 1, hidden=4)
    with pytest.raises(ValueError, match=r"Expected `out_features` to be an int >= 1, but got 0\."):
        CategoryEmbeddingModel(5, 0)
    with pytest.raises(ValueError, match=r"Expected `n_categories` to be an int >= 1, but got 0\."):
        CategoryEmbeddingModel(0, 1)
    with pytest.raises(TypeError):
        CategoryEmbeddingModel(5, 1, 3)  # embedding_dim is keyword-only


def test_int32_ids_and_an_empty_batch():
    model = CategoryEmbeddingModel(5, 2)
    ids = torch.tensor([4, 0, 2])
    torch.testing.assert_close(model(ids.int()), model(ids))
    assert model(torch.zeros(0, dtype=torch.long)).shape == (0, 2)


# ---------------------------------------------------------------------------- no host sync in forward
# The old forward read `int(categories.min())` and `int(categories.max())`: a device-to-host
# copy and a wait for the device on every call, and a data-dependent branch torch.export
# cannot trace. Each test below failed with it.
@pytest.mark.parametrize("strict", [False, True])
def test_the_model_exports_with_a_dynamic_batch(strict):
    torch.manual_seed(0)
    model = CategoryEmbeddingModel(50, 3, hidden=(8,)).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        model, (torch.tensor([0, 7, 49]),), dynamic_shapes=({0: batch},), strict=strict
    )
    ids = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    torch.testing.assert_close(program.module()(ids), model(ids))


def test_forward_reads_no_value_of_ids_off_the_cpu():
    """Meta tensors have no values: any int()/item() on them raises, as a sync would cost on CUDA."""
    model = CategoryEmbeddingModel(50, 3, hidden=(8,)).to("meta")
    out = model(torch.tensor([0, 7, 49], device="meta"))
    assert out.shape == (3, 3) and out.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_forward_on_cuda_does_not_synchronize():
    model = CategoryEmbeddingModel(50, 3, hidden=(8,)).cuda()
    ids = torch.tensor([0, 7, 49], device="cuda")
    model(ids)  # warm-up: lazy CUDA initialization may synchronize
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = model(ids)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert out.shape == (3, 3)
