"""predict_logits and the logits -> labels / scores conversions."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from companion.inference import (
    accuracy_from_logits,
    logits_to_labels,
    logits_to_scores,
    predict_logits,
)


def test_predict_logits_turns_dropout_off_and_restores_each_submodule_mode():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(2))
    model.train()
    model[2].eval()  # a frozen part stays frozen
    out1, out2 = predict_logits(model, torch.ones(3, 2)), predict_logits(model, torch.ones(3, 2))
    assert torch.equal(out1, out2)  # dropout off during prediction
    assert model.training and model[1].training and not model[2].training
    assert not out1.requires_grad


def test_predict_logits_in_batches_equals_one_call_and_accepts_arrays():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    X = torch.randn(10, 3)
    whole = predict_logits(model, X)
    assert torch.allclose(predict_logits(model, X, batch_size=3), whole)
    assert torch.allclose(predict_logits(model, X.numpy()), whole)
    assert predict_logits(lambda x: x * 2, torch.ones(2)).tolist() == [2.0, 2.0]


def test_predict_logits_runs_a_model_without_parameters():
    assert predict_logits(torch.nn.ReLU(), torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]


def test_predict_logits_bad_arguments():
    with pytest.raises(TypeError, match="Expected `model` to be callable"):
        predict_logits("model", torch.ones(2))
    with pytest.raises(ValueError, match="Expected `batch_size` to be an int >= 1"):
        predict_logits(torch.nn.Identity(), torch.ones(2), batch_size=0)


def test_output_conversions():
    assert logits_to_labels(torch.tensor([[0.1, 0.9, 0.0]])).tolist() == [1]
    assert logits_to_labels(torch.tensor([[-0.5], [0.5]])).tolist() == [0, 1]
    scores = logits_to_scores(torch.tensor([[0.0, 0.0], [0.0, 10.0]]))
    assert scores[0] == pytest.approx(0.5) and scores[1] > 0.99
    with pytest.raises(ValueError, match=r"Expected `output` to be binary logits"):
        logits_to_scores(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"Expected `output` to be"):
        logits_to_labels(torch.zeros(2, 3, 4))


def test_accuracy_from_logits_matches_sklearn_for_binary_and_multiclass():
    rng = np.random.default_rng(0)
    y2, z2 = rng.integers(0, 2, 50), rng.normal(size=(50, 1)).astype(np.float32)
    assert accuracy_from_logits(torch.tensor(y2), torch.tensor(z2)) == pytest.approx(
        accuracy_score(y2, (z2[:, 0] > 0).astype(int)))
    y3, z3 = rng.integers(0, 3, 50), rng.normal(size=(50, 3)).astype(np.float32)
    assert accuracy_from_logits(torch.tensor(y3), torch.tensor(z3)) == pytest.approx(
        accuracy_score(y3, z3.argmax(1)))
