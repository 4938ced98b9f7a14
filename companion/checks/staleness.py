"""Model staleness: how old is what the model knows?

A :class:`ModelCard` travels with the weights and records when the model was
trained and which time window its data covers; :func:`model_age` measures its age
at any moment and warns with :class:`~companion.checks.StaleModelWarning` when
the newest training data is older than allowed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from companion._validation import check_instance, message
from companion.checks._report import StaleModelWarning

__all__ = ["ModelCard", "ModelAge", "model_age"]


def _aware(name: str, value: Any) -> datetime:
    check_instance(name, value, datetime, "a datetime")
    if value.tzinfo is None:
        raise ValueError(message(name, "a timezone-aware datetime (e.g. tzinfo=timezone.utc)", value))
    return value


@dataclass(frozen=True)
class ModelCard:
    """What a model carries through the pipeline so its age can be checked anywhere.

    Store ``card.to_dict()`` with the weights (e.g. in
    :func:`companion.checkpoint.save_checkpoint`'s ``extra``) and rebuild it with
    :meth:`from_dict` wherever the model is loaded.

    Attributes:
        name: the model's name.
        trained_at: when training finished (timezone-aware).
        data_start: the earliest time covered by the training data.
        data_end: the latest time covered by the training data (the model knows
            nothing newer).
        metrics: evaluation results at training time.

    Example:
        >>> card = ModelCard("churn", datetime(2024, 2, 1, tzinfo=timezone.utc),
        ...                  datetime(2023, 1, 1, tzinfo=timezone.utc),
        ...                  datetime(2024, 1, 31, tzinfo=timezone.utc))
        >>> ModelCard.from_dict(card.to_dict()) == card
        True
    """

    name: str
    trained_at: datetime
    data_start: datetime
    data_end: datetime
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_instance("name", self.name, str, "a string")
        for key in ("trained_at", "data_start", "data_end"):
            _aware(key, getattr(self, key))
        if self.data_start > self.data_end:
            raise ValueError(message("data_end", f"on or after data_start {self.data_start}", self.data_end))
        if self.data_end > self.trained_at:
            raise ValueError(message("trained_at", f"on or after data_end {self.data_end}", self.trained_at))

    def to_dict(self) -> dict[str, Any]:
        """Plain strings and numbers (ISO 8601 times), safe for JSON and checkpoints."""
        return {"name": self.name, "trained_at": self.trained_at.isoformat(),
                "data_start": self.data_start.isoformat(), "data_end": self.data_end.isoformat(),
                "metrics": {k: float(v) for k, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Rebuild a card from :meth:`to_dict`'s output."""
        check_instance("data", data, Mapping, "a mapping from ModelCard.to_dict()")
        return cls(str(data["name"]), datetime.fromisoformat(data["trained_at"]),
                   datetime.fromisoformat(data["data_start"]),
                   datetime.fromisoformat(data["data_end"]), dict(data.get("metrics", {})))


@dataclass(frozen=True)
class ModelAge:
    """How old a model is at some moment (see :func:`model_age`).

    Attributes:
        since_training: time since ``trained_at``.
        since_data: time since ``data_end``: how out of date the model's knowledge is.
        stale: ``since_data`` is above the allowed age.
    """

    since_training: timedelta
    since_data: timedelta
    stale: bool


def model_age(
    card: ModelCard, *, now: datetime | None = None, max_age: timedelta = timedelta(days=30)
) -> ModelAge:
    """Age of a model at ``now``; warns with :class:`StaleModelWarning` if it is stale.

    Staleness is measured from the end of the training data window, not from the
    training run: a model retrained yesterday on year-old data knows nothing of
    the past year. How old is too old depends on how fast the world changes; the
    ML Test Score paper suggests measuring how quality decays with age to choose
    ``max_age``.

    Args:
        card: the model's :class:`ModelCard`.
        now: the moment to measure at (timezone-aware); the current time by default.
        max_age: the largest allowed ``now - card.data_end``, a positive timedelta.

    Returns:
        A :class:`ModelAge`.

    Example:
        >>> card = ModelCard("m", datetime(2024, 1, 2, tzinfo=timezone.utc),
        ...                  datetime(2023, 1, 1, tzinfo=timezone.utc),
        ...                  datetime(2024, 1, 1, tzinfo=timezone.utc))
        >>> model_age(card, now=datetime(2024, 1, 11, tzinfo=timezone.utc)).since_data.days
        10
    """
    check_instance("card", card, ModelCard, "a ModelCard")
    check_instance("max_age", max_age, timedelta, "a timedelta")
    if max_age <= timedelta(0):
        raise ValueError(message("max_age", "a positive timedelta", str(max_age)))
    now = datetime.now(timezone.utc) if now is None else _aware("now", now)
    if now < card.trained_at:
        raise ValueError(message("now", f"on or after trained_at {card.trained_at}", now))
    age = ModelAge(now - card.trained_at, now - card.data_end, now - card.data_end > max_age)
    if age.stale:
        warnings.warn(
            f"model_age: model `{card.name}` is stale: its newest training data "
            f"({card.data_end:%Y-%m-%d}) is {age.since_data.days} days old, more than the "
            f"allowed {max_age.days} days.\n  Where: ModelCard of `{card.name}`, trained "
            f"{card.trained_at:%Y-%m-%d}.\n  Try: retrain on recent data (and check the "
            "retraining schedule runs), or raise max_age if quality is shown to decay slowly.",
            StaleModelWarning,
            stacklevel=2,
        )
    return age
