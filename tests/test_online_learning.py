"""Static vs dynamic training on a drifting stream; progressive validation; quarantine, rollback."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.data import TensorData, make_drifting_stream
from companion.online_learning import DynamicTrainer, Guard, evaluate_stream, train_static
from companion.utils import seed_everything

DEFAULT_GUARD = Guard()


def _model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))


def _trainer(model, guard=DEFAULT_GUARD, lr=1.0):
    return DynamicTrainer(model, loss_fn=nn.BCEWithLogitsLoss(),
                          optimizer=torch.optim.SGD(model.parameters(), lr=lr), steps=5, guard=guard)


@pytest.fixture(scope="module")
def stream():
    return make_drifting_stream(30, 200, drift=0.1, seed=0)


def test_static_model_goes_stale_and_dynamic_model_keeps_up(stream):
    static = _model()
    train_static(static, stream[:3], loss_fn=nn.BCEWithLogitsLoss(),
                 optimizer=torch.optim.SGD(static.parameters(), lr=0.5), epochs=5)
    static_scores = evaluate_stream(static, stream)
    log = _trainer(_model()).run(stream)
    assert sum(static_scores[:3]) / 3 > 0.8 and sum(static_scores[-5:]) / 5 < 0.5
    assert sum(log.scores[-5:]) / 5 > 0.75
    assert log.quarantined == [] and len(log.records) == 30


def test_progressive_score_is_measured_before_training(stream):
    model = _model()
    trainer = _trainer(model, guard=None)
    trainer.run(stream[:5])
    before = evaluate_stream(model, stream[5:6])[0]
    record = trainer.step(stream[5], 5)
    assert record.score == before and record.status == "trained" and record.version == 6
    assert evaluate_stream(model, stream[5:6])[0] != before  # the update happened after scoring


def test_poisoned_update_is_rolled_back_exactly(stream):
    model = _model()
    trainer = _trainer(model, guard=Guard(max_drop=0.05))
    trainer.run(stream[:10])
    good = {k: v.clone() for k, v in model.state_dict().items()}
    poisoned = TensorData(stream[10].X, 1 - stream[10].y)  # every label flipped
    record = trainer.step(poisoned, 10)
    assert record.status == "rolled back" and "fell from" in record.reason
    assert all(torch.equal(good[k], v) for k, v in model.state_dict().items())
    assert trainer.version == 10 and trainer.quarantine[-1].y.equal(poisoned.y)


def test_without_guard_the_poison_and_nan_get_in(stream):
    model = _model()
    trainer = _trainer(model, guard=None)
    trainer.run(stream[:10])
    nan_batch = TensorData(torch.full_like(stream[10].X, float("nan")), stream[10].y)
    trainer.step(nan_batch, 10)
    assert not all(torch.isfinite(p).all() for p in model.parameters())


def test_guards_quarantine_before_training(stream):
    guard = Guard(max_drop=None, max_score_drop=0.3, max_label_shift=0.3)
    trainer = _trainer(_model(), guard=guard)
    trainer.run(stream[:10])
    version = trainer.version
    flipped = trainer.step(TensorData(stream[10].X, 1 - stream[10].y), 10)
    assert flipped.status == "quarantined" and flipped.reason.startswith("score")
    ones = trainer.step(TensorData(stream[11].X, torch.ones(200)), 11)
    assert ones.status == "quarantined" and ones.reason.startswith("label rate")
    nan = trainer.step(TensorData(torch.full_like(stream[12].X, float("nan")), stream[12].y), 12)
    assert nan.status == "quarantined" and math.isnan(nan.score)
    assert trainer.version == version and len(trainer.quarantine) == 3


def test_run_is_deterministic(stream):
    assert _trainer(_model()).run(stream[:8]).scores == _trainer(_model()).run(stream[:8]).scores


def test_bad_arguments(stream):
    with pytest.raises(ValueError, match="Expected `max_drop` to be a float > 0"):
        Guard(max_drop=0.0)
    with pytest.raises(TypeError, match="Expected `guard` to be a Guard or None"):
        DynamicTrainer(_model(), loss_fn=nn.MSELoss(),
                       optimizer=torch.optim.SGD(_model().parameters(), lr=0.1), guard="strict")
    with pytest.raises(ValueError, match=r"Expected `stream\[0\]` to be X and y of the same length"):
        evaluate_stream(_model(), [(torch.zeros(3, 2), torch.zeros(2))])
    with pytest.raises(ValueError, match="Expected `batches` to be at least one batch"):
        train_static(_model(), [], loss_fn=nn.MSELoss(),
                     optimizer=torch.optim.SGD(_model().parameters(), lr=0.1), epochs=1)
