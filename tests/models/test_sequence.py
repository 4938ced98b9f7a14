"""Tests for companion.models.sequence: the bag of words is order-blind, the GRU is not; bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.models.sequence import BagOfWords, GRUClassifier


def test_bag_of_words_counts_match_a_one_hot_sum():
    x = torch.tensor([[1, 1, 3, 0], [2, 2, 2, 2]])
    counts = BagOfWords(5, 2).counts(x)
    torch.testing.assert_close(counts, nn.functional.one_hot(x, 5).sum(dim=1).float())


def test_bag_of_words_is_linear_on_counts_without_hidden_layers():
    torch.manual_seed(0)
    model = BagOfWords(6, 3)
    x = torch.randint(0, 6, (4, 5))
    layer = model.mlp.output_layer
    torch.testing.assert_close(model(x), model.counts(x) @ layer.weight.T + layer.bias)
    assert model.out_features == 3


def test_bag_of_words_ignores_order_and_the_gru_does_not():
    torch.manual_seed(0)
    x = torch.randint(0, 10, (8, 6))
    shuffled = x[:, torch.randperm(6)]
    bag, gru = BagOfWords(10, 2, hidden=(16,)), GRUClassifier(10, 2)
    torch.testing.assert_close(bag(x), bag(shuffled))
    assert not torch.allclose(gru(x), gru(shuffled))


def test_gru_matches_torch_reading_the_embedded_sequence():
    torch.manual_seed(0)
    model = GRUClassifier(7, 3, embedding_dim=4, hidden_size=5)
    x = torch.randint(0, 7, (2, 4))
    h = torch.zeros(2, 5)
    cell = nn.GRUCell(4, 5)
    cell.weight_ih.data, cell.weight_hh.data = model.gru.weight_ih_l0.data, model.gru.weight_hh_l0.data
    cell.bias_ih.data, cell.bias_hh.data = model.gru.bias_ih_l0.data, model.gru.bias_hh_l0.data
    for t in range(4):  # the GRU read step by step, left to right
        h = cell(model.embedding(x[:, t]), h)
    torch.testing.assert_close(model(x), model.head(h))


def test_both_learn_a_task_that_needs_order_only_the_gru_learns_it():
    from companion.data.text import make_negation_sentences
    from companion.training import fit

    X, y = make_negation_sentences(800, label="order", seed=0)
    scores = {}
    for name, model in (("bag", BagOfWords(20, 2, hidden=(16,))), ("gru", GRUClassifier(20, 2))):
        torch.manual_seed(0)
        batches = list(zip(X[:600].split(100), y[:600].split(100)))
        fit(model, batches, loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
            epochs=12, progress=False, device="cpu")
        scores[name] = float((model(X[600:]).argmax(1) == y[600:]).float().mean())
    assert scores["gru"] > 0.9 and scores["bag"] < 0.7, scores


@pytest.mark.parametrize("make", [lambda: BagOfWords(5, 2), lambda: GRUClassifier(5, 2)])
def test_bad_tokens_raise(make):
    model = make()
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"token ids in \[0, 5\)"):
        model(torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match=r"token ids in \[0, 5\)"):
        model(torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError, match="2 dimensions"):
        model(torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0, 1]])


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="`vocab_size` to be an int >= 1"):
        BagOfWords(0, 2)
    with pytest.raises(TypeError, match="`out_features`"):
        BagOfWords(4, 2.0)
    with pytest.raises(ValueError, match="`hidden"):
        BagOfWords(4, 2, hidden=(0,))
    with pytest.raises(ValueError, match="`embedding_dim`"):
        GRUClassifier(4, 2, embedding_dim=0)
    with pytest.raises(ValueError, match="`hidden_size`"):
        GRUClassifier(4, 2, hidden_size=0)
    with pytest.raises(ValueError, match="non-empty"):
        GRUClassifier(4, 2)(torch.zeros(2, 0, dtype=torch.long))
