"""Tests for companion.checks.release: compare_models (the redeploy decision on the same data),
the quality gate built on it, and the export round trip."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from companion.checks import (
    ModelCheckError,
    ModelComparison,
    check_beats_baseline,
    check_export_roundtrip,
    compare_models,
)
from companion.data import TensorData


def mlp(in_features: int = 3, out_features: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, out_features))


# ---------------------------------------------------------------- compare_models


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 2, generator=g)
    y = (X[:, 0] + 0.3 * torch.randn(400, generator=g) > 0).long()
    return TensorData(X, y)


def _linear(w0: float, w1: float) -> torch.nn.Module:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[w0, w1]]))
        model.bias.zero_()
    return model


def test_better_candidate_is_deployed_and_scores_match_reference(data):
    good, weak = _linear(1.0, 0.0), _linear(0.2, 1.0)
    result = compare_models(good, weak, data, metric="roc_auc", min_gain=0.01)
    assert isinstance(result, ModelComparison)
    with torch.no_grad():
        expected = roc_auc_score(data.y.numpy(), good(data.X).squeeze(1).numpy())
    assert result.candidate_score == pytest.approx(expected)
    assert result.deploy and result.gain == pytest.approx(result.candidate_score - result.current_score)
    assert result.reason.startswith("deploy")
    reverse = compare_models(weak, good, data, metric="roc_auc", min_gain=0.01)
    assert not reverse.deploy and reverse.reason.startswith("keep")


def test_min_gain_blocks_a_marginal_improvement(data):
    a, b = _linear(1.0, 0.0), _linear(1.0, 0.05)
    result = compare_models(a, b, data, metric="accuracy", min_gain=0.5)
    assert not result.deploy and result.gain < 0.5


def test_callable_metric_lower_is_better(data):
    def log_loss(y, out):
        return float(torch.nn.functional.binary_cross_entropy_with_logits(out.squeeze(1), y.float()))

    good, weak = _linear(3.0, 0.0), _linear(0.1, 0.0)
    result = compare_models(good, weak, data, metric=log_loss, higher_is_better=False)
    assert result.metric == "log_loss" and result.deploy
    assert result.candidate_score < result.current_score
    assert result.gain == pytest.approx(result.current_score - result.candidate_score)


def test_both_models_see_the_same_rows(data):
    seen = []

    def spy(x):
        seen.append(x.clone())
        return x[:, 0]

    compare_models(spy, spy, data, metric="accuracy")
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])


def test_nan_score_never_deploys():
    X, y = torch.randn(10, 2), torch.ones(10, dtype=torch.long)
    with pytest.warns(UserWarning, match="one class"):
        result = compare_models(_linear(1, 0), _linear(0, 1), (X, y), metric="roc_auc", min_gain=-1)
    assert math.isnan(result.gain) and not result.deploy


def test_bad_arguments(data):
    m = _linear(1, 0)
    with pytest.raises(ValueError, match=r"Expected `metric` to be one of \('accuracy'"):
        compare_models(m, m, data, metric="auc")
    with pytest.raises(ValueError, match=r"Expected `higher_is_better` to be True or False"):
        compare_models(m, m, data, metric=lambda y, o: 0.0)
    with pytest.raises(ValueError, match=r"Expected `higher_is_better` to be True for 'accuracy'"):
        compare_models(m, m, data, metric="accuracy", higher_is_better=False)
    with pytest.raises(ValueError, match="Expected `X` and `y` to have the same length"):
        compare_models(m, m, (data.X, data.y[:-1]), metric="accuracy")
    with pytest.raises(TypeError, match=r"Expected `data` to be a pair \(X, y\)"):
        compare_models(m, m, data.X, metric="accuracy")
    with pytest.raises(TypeError, match=r"Expected `candidate` to be callable"):
        compare_models(3, m, data, metric="accuracy")
    with pytest.raises(ValueError, match=r"Expected `min_gain` to be a float"):
        compare_models(m, m, data, metric="accuracy", min_gain=float("nan"))
    with pytest.raises(TypeError, match=r"Expected `min_score` to be a float"):
        compare_models(m, m, data, metric="accuracy", min_score="high")


def test_min_score_is_a_floor_or_a_ceiling_in_the_metrics_direction(data):
    good, weak = _linear(1.0, 0.0), _linear(0.2, 1.0)
    result = compare_models(good, weak, data, metric="accuracy", min_score=0.99)
    assert result.gain > 0 and not result.deploy
    assert result.reason == f"keep the current model: candidate accuracy {result.candidate_score:.4g} misses the floor 0.99"
    assert compare_models(good, weak, data, metric="accuracy", min_score=0.5).deploy

    def log_loss(y, out):
        return float(torch.nn.functional.binary_cross_entropy_with_logits(out.squeeze(1), y.float()))

    lower = compare_models(good, weak, data, metric=log_loss, higher_is_better=False, min_score=0.01)
    assert lower.gain > 0 and not lower.deploy and "misses the ceiling 0.01" in lower.reason
    assert result.n_examples == lower.n_examples == 400


# ---------------------------------------------------------------- quality gate


def test_check_beats_baseline_builds_on_compare_models():
    X = torch.linspace(-2, 2, 40).unsqueeze(1)
    y = (X[:, 0] > 0).long()
    good, weak = (lambda x: x[:, 0]), (lambda x: x[:, 0] - 1.0)
    result = check_beats_baseline(good, weak, (X, y), metric="accuracy", min_gain=0.05)
    assert result == compare_models(good, weak, (X, y), metric="accuracy", min_gain=0.05)
    with pytest.raises(ModelCheckError, match=r"check_beats_baseline failed: keep the current model.*\n  Where: candidate"):
        check_beats_baseline(weak, good, (X, y), metric="accuracy")
    with pytest.raises(ModelCheckError, match=r"accuracy 1 misses the floor 1.01"):
        check_beats_baseline(good, weak, (X, y), metric="accuracy", min_score=1.01)


@pytest.mark.parametrize("min_score", [None, 0.99])
def test_check_beats_baseline_fails_with_its_own_message_on_tensor_data(data, min_score):
    # TensorData unpacks into (X, y) but cannot be indexed: the gate once raised TypeError
    # from len(data[1]) exactly where it should block the candidate.
    weak, good = _linear(0.2, 1.0), _linear(1.0, 0.0)
    with pytest.raises(ModelCheckError, match=r"Where: candidate Linear vs baseline Linear on 400 held-out examples"):
        check_beats_baseline(weak, good, data, metric="accuracy", min_score=min_score)


# ---------------------------------------------------------------- export


def test_export_roundtrip_passes_for_a_healthy_model(tmp_path):
    model = mlp().train()
    x = torch.randn(6, 3)
    model[0].eval()  # a frozen part in eval mode must come back in eval mode
    served = check_export_roundtrip(model, x, path=tmp_path / "m.pt2")
    assert (tmp_path / "m.pt2").is_file() and model.training and not model[0].training
    assert torch.allclose(served(x[:4]), model.eval()(x[:4]), atol=1e-6)


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x) if x.sum() > 0 else -self.linear(x)


class FixedBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x).reshape(6)  # planted: batch size hard-coded


class Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        out = self.linear(x)
        return out + 0.1 * torch.randn_like(out)  # planted: randomness at inference


@pytest.mark.parametrize(
    "model, pattern",
    [(DataDependent(), "torch.export could not capture the model"),
     (FixedBatch(), r"torch.export could not capture|fails on a batch of one row"),
     (Noisy(), r"differs from the original's \(atol=1e-05, rtol=0.0001\): Mismatched elements: .*Greatest absolute difference")],
)
def test_export_roundtrip_catches_infrastructure_incompatibility(model, pattern):
    with pytest.raises(ModelCheckError, match=pattern):
        check_export_roundtrip(model, torch.randn(6, 3))


def test_export_roundtrip_validates_input():
    with pytest.raises(ValueError, match="Expected `example_input` to be a batch of at least 2 rows"):
        check_export_roundtrip(mlp(), torch.randn(1, 3))
