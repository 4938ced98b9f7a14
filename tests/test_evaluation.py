"""compare_models: the redeploy decision on the same data."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

from companion.data import TensorData
from companion.evaluation import ModelComparison, compare_models


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
