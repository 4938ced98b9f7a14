"""Tests for companion.models.classifiers: softmax vs independent sigmoids, their losses
against torch's, predictions in eval mode, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.models import MultiLabelClassifier, SoftmaxClassifier


def test_softmax_classifier_probabilities_sum_to_one():
    model = SoftmaxClassifier(4, 5, hidden=(8,))
    assert model.output_layer.out_features == model.out_features == 5
    p = model.predict_proba(torch.randn(10, 4))
    torch.testing.assert_close(p.sum(1), torch.ones(10))
    assert model.predict(torch.randn(10, 4)).dtype == torch.int64
    logits, y = torch.randn(6, 5), torch.randint(0, 5, (6,))
    torch.testing.assert_close(model.loss(logits, y), nn.CrossEntropyLoss()(logits, y))
    with pytest.raises(ValueError, match=r"Expected `out_features` to be an int >= 2, but got 1\."):
        SoftmaxClassifier(4, 1)


def test_softmax_predict_is_the_argmax_of_the_logits():
    model = SoftmaxClassifier(4, 5, hidden=(8,))
    x = torch.randn(20, 4)
    torch.testing.assert_close(model.predict(x), model(x).argmax(dim=1))


def test_multilabel_classifier_independent_sigmoids():
    model = MultiLabelClassifier(4, 3, threshold=0.3)
    x = torch.randn(10, 4)
    torch.testing.assert_close(model.predict_proba(x), torch.sigmoid(model(x)).detach())
    torch.testing.assert_close(model.predict(x), (torch.sigmoid(model(x)) >= 0.3).long())
    logits, y = torch.randn(6, 3), torch.randint(0, 2, (6, 3))
    torch.testing.assert_close(model.loss(logits, y), nn.BCEWithLogitsLoss()(logits, y.float()))
    with pytest.raises(ValueError, match=r"Expected `threshold` to be a float in \(0, 1\)"):
        MultiLabelClassifier(4, 3, threshold=1.0)


@pytest.mark.parametrize("cls", [SoftmaxClassifier, MultiLabelClassifier])
def test_predict_runs_in_eval_mode_and_leaves_the_model_training(cls):
    """predict on a model left in training mode used dropout and updated BatchNorm's statistics."""
    torch.manual_seed(0)
    model = cls(4, 3, hidden=(16,), batch_norm=True, dropout=0.5)
    model(torch.randn(32, 4))  # one training step's forward: running statistics move off 0/1
    model.train()
    running_mean = model.layers[1].running_mean.clone()
    x = torch.randn(8, 4)
    first, second = model.predict_proba(x), model.predict_proba(x)
    torch.testing.assert_close(first, second)  # no dropout
    torch.testing.assert_close(model.layers[1].running_mean, running_mean)  # no update
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    torch.testing.assert_close(first, model.predict_proba(x))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda m: m.loss(torch.randn(4, 2), torch.tensor([0, 1, 2, 0])),
            ValueError,
            r"Expected `output` to be logits of shape \(N, 3\)",
        ),
        (
            lambda m: m.loss(torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 0.0])),
            TypeError,
            r"Expected `y` to be an integer tensor of class indices",
        ),
        (
            lambda m: m.loss(torch.randn(4, 3), torch.tensor([0, 1, 2])),
            ValueError,
            r"Expected `output` and `y` to have the same length, but got 4 and 3\.",
        ),
        (
            lambda m: m.loss(torch.randn(4, 3), torch.zeros(4, 3, dtype=torch.long)),
            ValueError,
            r"Expected `y` to be a tensor with 1 dimensions",
        ),
        (lambda m: m.predict(torch.randn(2, 5)), ValueError, r"Expected `x` to be a tensor of shape \(N, 4\)"),
        (lambda m: m.predict_proba("x"), TypeError, r"Expected `X` to be a tensor, array or sequence"),
    ],
)
def test_softmax_classifier_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(SoftmaxClassifier(4, 3))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda m: m.loss(torch.randn(4, 3), torch.ones(4, 2)),
            ValueError,
            r"Expected `y` to be 0/1 targets of the output's shape \(4, 3\)",
        ),
        (
            lambda m: m.loss(torch.randn(4), torch.ones(4)),
            ValueError,
            r"Expected `output` to be a tensor with 2 dimensions",
        ),
        (lambda m: m.predict(torch.randn(2, 5)), ValueError, r"Expected `x` to be a tensor of shape \(N, 4\)"),
    ],
)
def test_multilabel_classifier_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(MultiLabelClassifier(4, 3))
    with pytest.raises(ValueError, match=r"Expected `threshold` to be a float in \(0, 1\)"):
        MultiLabelClassifier(4, 3, threshold=0.0)
