"""Tests for companion.checks.staleness: the model card and the model's age."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone

import pytest
from torch import nn

from companion.checks import ModelCard, StaleModelWarning, model_age

# ---------------------------------------------------------------- model age

UTC = timezone.utc


def _card() -> ModelCard:
    return ModelCard("churn", datetime(2024, 3, 2, tzinfo=UTC), datetime(2023, 3, 1, tzinfo=UTC),
                       datetime(2024, 3, 1, tzinfo=UTC), {"auc": 0.91})


def test_model_card_round_trips_through_a_checkpoint(tmp_path):
    from companion.checkpoint import load_checkpoint, save_checkpoint

    model = nn.Linear(2, 1)
    save_checkpoint(tmp_path / "m.pt", model, extra={"card": _card().to_dict()})
    extra = load_checkpoint(tmp_path / "m.pt", nn.Linear(2, 1))["extra"]
    assert ModelCard.from_dict(extra["card"]) == _card()


def test_model_age_fresh_and_stale():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        age = model_age(_card(), now=datetime(2024, 3, 11, tzinfo=UTC))
    assert age.since_data == timedelta(days=10) and age.since_training == timedelta(days=9)
    assert not age.stale
    with pytest.warns(StaleModelWarning, match=r"model `churn` is stale: .* 45 days old, more than the allowed 30"):
        age = model_age(_card(), now=datetime(2024, 4, 15, tzinfo=UTC))
    assert age.stale


def test_model_card_validation():
    with pytest.raises(ValueError, match="Expected `trained_at` to be a timezone-aware datetime"):
        ModelCard("m", datetime(2024, 1, 1), datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 2, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="Expected `trained_at` to be on or after data_end"):
        ModelCard("m", datetime(2023, 1, 5, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC),
                    datetime(2023, 2, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="Expected `max_age` to be a positive timedelta"):
        model_age(_card(), max_age=timedelta(0))
    with pytest.raises(ValueError, match="Expected `now` to be on or after trained_at"):
        model_age(_card(), now=datetime(2024, 1, 1, tzinfo=UTC))
