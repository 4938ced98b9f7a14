"""Tests for companion.semi_supervised.self_train: what it selects, what it never reads, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import make_gaussian_blobs
from companion.data.text import make_topic_documents
from companion.models import MLP
from companion.semi_supervised import SelfTrainingRound, self_train
from companion.training import fit
from companion.utils import seed_everything


class FixedLogits(nn.Module):
    """A model whose output training cannot change: logits = x @ W for a fixed W (plus 0 * a parameter)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.dummy = nn.Parameter(torch.zeros(()))  # so that Adam has something (with zero gradient)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + 0 * self.dummy


def _pool():
    """Pool rows whose fixed-model confidence spans the threshold; true labels that disagree with it."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 3, generator=g) * 2
    W = torch.tensor([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.2, 1.0]])
    return X, W


def _blobs(n_labelled_per_class, seed=0):
    X, y = make_gaussian_blobs(600, n_classes=3, seed=seed)
    labelled = torch.cat([(y == c).nonzero().squeeze(1)[:n_labelled_per_class] for c in range(int(y.max()) + 1)])
    pool = torch.ones(len(y), dtype=torch.bool)
    pool[labelled] = False
    return X, y, labelled, pool


def test_the_threshold_decides_exactly_which_rows_get_pseudo_labels():
    X_pool, W = _pool()
    confidence, predicted = torch.softmax((X_pool @ W).double(), dim=1).max(dim=1)
    X_lab, y_lab = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    for threshold in (0.0, 0.6, 0.9, 0.99):
        _, record = self_train(lambda: FixedLogits(W), X_lab, y_lab, X_pool, threshold=threshold, rounds=2,
                               epochs=2, device="cpu")
        want = (confidence >= threshold).nonzero().squeeze(1)
        assert record[0].n_pseudo == 0 and record[0].n_added == len(want)
        assert torch.equal(record[1].pseudo_indices.sort().values, want)
        # the pseudo-labels are the model's predictions
        assert torch.equal(record[1].pseudo_labels, predicted[record[1].pseudo_indices])
        assert bool((record[0].confidence[record[1].pseudo_indices] >= threshold - 1e-6).all())
        assert len(record) == 2  # a fixed model adds nothing more: stop after round 1
        assert record[1].n_added == 0


def test_a_row_exactly_at_the_threshold_counts():
    W = torch.eye(2)
    X_pool = torch.tensor([[0.0, -float("inf")], [1.0, 0.0]])  # confidence exactly 1.0, and below 1
    _, record = self_train(lambda: FixedLogits(W), torch.zeros(2, 2), torch.tensor([0, 1]),
                           torch.nan_to_num(X_pool, neginf=-1e4), threshold=1.0, rounds=1, epochs=1, device="cpu")
    assert record[1].pseudo_indices.tolist() == [0]


def test_the_pool_true_labels_are_never_read():
    # The fixed model is confidently wrong on every pool row: a function that read the pool's true labels
    # (or scored against them) could not produce the wrong pseudo-labels that self-training must produce.
    X_pool, W = _pool()
    predicted = (X_pool @ W).argmax(dim=1)
    true_labels = (predicted + 1) % 3  # disagrees everywhere
    X_lab, y_lab = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    _, record = self_train(lambda: FixedLogits(W), X_lab, y_lab, X_pool, threshold=0.5, rounds=1, epochs=1,
                           device="cpu")
    kept = record[1].pseudo_indices
    assert len(kept) > 10
    assert torch.equal(record[1].pseudo_labels, predicted[kept])
    assert not bool((record[1].pseudo_labels == true_labels[kept]).any())


def test_evaluate_sees_the_model_only_and_scores_each_round():
    X, y, labelled, pool = _blobs(3)
    seen = []

    def evaluate(model):
        seen.append(model)
        return 0.5

    model, record = self_train(lambda: MLP(2, (8,), 3), X[labelled], y[labelled], X[pool], rounds=2, epochs=20,
                               evaluate=evaluate, device="cpu")
    assert len(seen) == len(record) and seen[-1] is model
    assert [r.score for r in record] == [0.5] * len(record)
    assert all(isinstance(r, SelfTrainingRound) for r in record)


def test_round_zero_is_fit_on_the_labelled_rows_alone():
    X, y, labelled, pool = _blobs(5)
    model, record = self_train(lambda: MLP(2, (8,), 3), X[labelled], y[labelled], X[pool], rounds=0, epochs=30,
                               lr=0.05, seed=3, device="cpu")
    assert len(record) == 1 and record[0].n_pseudo == 0 and record[0].n_added == 0
    seed_everything(3)
    reference = MLP(2, (8,), 3)
    order = torch.randperm(len(labelled), generator=torch.Generator().manual_seed(3))
    fit(reference, [(X[labelled][order], y[labelled][order])], loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(reference.parameters(), lr=0.05), epochs=30, progress=False, device="cpu")
    for a, b in zip(model.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_pseudo_labels_accumulate_and_are_kept():
    X, y, labelled, pool = _blobs(2)
    _, record = self_train(lambda: MLP(2, (16,), 3), X[labelled], y[labelled], X[pool], threshold=0.95, rounds=4,
                           epochs=50, batch_size=32, weight_decay=1e-3, device="cpu")
    for earlier, later in zip(record, record[1:]):
        assert later.n_pseudo == earlier.n_pseudo + earlier.n_added
        n = earlier.n_pseudo
        assert torch.equal(later.pseudo_indices[:n], earlier.pseudo_indices)
        assert torch.equal(later.pseudo_labels[:n], earlier.pseudo_labels)
        new = later.pseudo_indices[n:]
        assert bool((earlier.confidence[new] >= 0.95 - 1e-6).all())
    assert len(set(record[-1].pseudo_indices.tolist())) == record[-1].n_pseudo  # no row twice


def test_self_training_helps_where_labels_are_few():
    X, y = make_topic_documents(1500, seed=0)
    X_test, y_test = X[1000:], y[1000:]
    labelled = torch.cat([(y[:1000] == t).nonzero().squeeze(1)[:4] for t in range(4)])
    pool = torch.ones(1000, dtype=torch.bool)
    pool[labelled] = False

    def accuracy(model):
        return float((model(X_test).argmax(dim=1) == y_test).float().mean())

    _, record = self_train(lambda: MLP(X.shape[1], (), 4), X[labelled], y[labelled], X[:1000][pool], rounds=2,
                           epochs=50, lr=0.03, evaluate=accuracy, device="cpu")
    assert record[-1].n_pseudo > 300
    assert record[-1].score > record[0].score + 0.05, [r.score for r in record]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"threshold": 1.5}, ValueError, "`threshold` to be a float in \\[0, 1\\]"),
        ({"threshold": -0.1}, ValueError, "`threshold`"),
        ({"rounds": -1}, ValueError, "`rounds` to be an int >= 0"),
        ({"epochs": 0}, ValueError, "`epochs`"),
        ({"lr": 0.0}, ValueError, "`lr` to be a float > 0"),
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        ({"weight_decay": -1.0}, ValueError, "`weight_decay`"),
        ({"evaluate": "accuracy"}, TypeError, "`evaluate` to be callable"),
        ({"seed": -2}, ValueError, "`seed`"),
    ],
)
def test_bad_settings_raise(kwargs, error, words):
    X, y = torch.randn(4, 2), torch.tensor([0, 1, 0, 1])
    with pytest.raises(error, match=words):
        self_train(lambda: MLP(2, (), 2), X, y, torch.randn(5, 2), **kwargs)


def test_bad_data_and_models_raise():
    X, y, pool = torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), torch.randn(5, 2)
    make = lambda: MLP(2, (), 2)
    with pytest.raises(TypeError, match="`make_model` to be callable"):
        self_train(None, X, y, pool)
    with pytest.raises(ValueError, match="same length"):
        self_train(make, X, y[:3], pool)
    with pytest.raises(TypeError, match="integer classes"):
        self_train(make, X, y.float(), pool)
    with pytest.raises(ValueError, match="classes >= 0"):
        self_train(make, X, torch.tensor([0, -1, 0, 1]), pool)
    with pytest.raises(ValueError, match="same shape per row"):
        self_train(make, X, y, torch.randn(5, 3))
    with pytest.raises(ValueError, match="finite"):
        self_train(make, X, y, torch.full((5, 2), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        self_train(make, X.long(), y, pool)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        self_train(lambda: (lambda x: x), X, y, pool, epochs=1)
    with pytest.raises(ValueError, match="output width"):
        self_train(make, X, torch.tensor([0, 1, 2, 1]), pool, epochs=1)
    with pytest.raises(ValueError, match=r"\(N, C\) logits"):
        self_train(lambda: MLP(2, (), 1), X, torch.tensor([0, 0, 0, 0]), pool, epochs=1)
