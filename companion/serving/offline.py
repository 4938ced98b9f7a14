"""Offline (batch) inference: predict a whole catalogue, verify, push to a lookup table.

:func:`batch_predict` scores every known item, checks the batch (finite values, a
distribution close to the batch being replaced) and only then replaces the SQLite
table in one transaction, so readers see the old batch or the new one, never half
of each. :class:`PredictionTable` serves lookups; an item that was not in the
catalogue has no prediction: offline inference cannot serve the long tail.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from scipy.stats import ks_2samp

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.inference import predict_logits

__all__ = [
    "BatchRejected",
    "BatchReport",
    "Prediction",
    "PredictionTable",
    "batch_predict",
    "verify_predictions",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    item_id TEXT PRIMARY KEY,
    prediction REAL NOT NULL,
    model_version TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class BatchRejected(ValueError):
    """A batch of predictions failed verification; nothing was written.

    Attributes:
        problems: one line per failed check.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Rejected the batch; nothing was written: " + "; ".join(problems) + ".")
        self.problems = problems


@dataclass(frozen=True)
class BatchReport:
    """What :func:`batch_predict` pushed.

    Attributes:
        n_items: rows written (the whole table now).
        model_version: the version tag written with every row.
        created_at: UTC timestamp (ISO 8601) of the batch.
        ks_statistic: distance to the previous batch's prediction distribution
            (``nan`` for the first batch).
    """

    n_items: int
    model_version: str
    created_at: str
    ks_statistic: float


@dataclass(frozen=True)
class Prediction:
    """One row of the lookup table."""

    item_id: str
    prediction: float
    model_version: str
    created_at: str


def verify_predictions(
    predictions: torch.Tensor,
    *,
    previous: torch.Tensor | None = None,
    max_ks: float = 0.2,
    valid_range: tuple[float, float] | None = None,
) -> list[str]:
    """Check a batch of predictions before it is pushed; return the problems found.

    Checks: every value is finite; every value lies in ``valid_range`` (if given);
    and the distribution is within ``max_ks`` (Kolmogorov-Smirnov distance) of the
    ``previous`` batch's (if given), which catches a broken model or input pipeline
    that still produces plausible-looking numbers.

    Args:
        predictions: the new batch ``(N,)``.
        previous: the batch it would replace ``(M,)``, or ``None``.
        max_ks: the largest tolerated KS distance, a float in ``(0, 1]``.
        valid_range: ``(low, high)`` bounds for every value, e.g. ``(0, 1)`` for probabilities.

    Returns:
        A list of problems, empty when the batch may be pushed.

    Example:
        >>> verify_predictions(torch.tensor([0.2, float("nan")]))
        ['1 of 2 predictions are not finite']
    """
    check_tensor("predictions", predictions, ndim=1)
    max_ks = check_float("max_ks", max_ks, low=0, high=1, low_open=True)
    problems = []
    finite = torch.isfinite(predictions)
    if not finite.all():
        problems.append(f"{int((~finite).sum())} of {len(predictions)} predictions are not finite")
    if valid_range is not None:
        low, high = valid_range
        outside = ((predictions < low) | (predictions > high)).sum()
        if outside:
            problems.append(f"{int(outside)} predictions outside [{low}, {high}]")
    if previous is not None and len(previous) and finite.all():
        distance = float(ks_2samp(predictions.detach().cpu().double(), previous.detach().cpu().double()).statistic)
        if distance > max_ks:
            problems.append(
                f"distribution shifted from the previous batch (KS {distance:.3f} > {max_ks})"
            )
    return problems


def _connect(db_path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db_path), check_same_thread=False)
    conn.execute(_SCHEMA)
    return conn


def _rows(
    item_ids: Sequence[str], predictions: torch.Tensor, model_version: str, created_at: str
) -> Iterator[tuple[str, float, str, str]]:
    for item_id, value in zip(item_ids, predictions.tolist(), strict=True):
        yield item_id, value, model_version, created_at


def batch_predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    items: tuple[Sequence[str], torch.Tensor],
    *,
    db_path: str | Path,
    model_version: str,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 4096,
    max_ks: float = 0.2,
    valid_range: tuple[float, float] | None = None,
) -> BatchReport:
    """Predict every item, verify the batch, then replace the lookup table in one transaction.

    The table holds one batch: the new one replaces the old one entirely (delete
    and insert inside one SQLite transaction), so a failure at any point leaves
    the previous batch in place.

    Args:
        model: callable ``X -> output`` with one value per item, ``(N,)`` or ``(N, 1)``.
        items: ``(item_ids, X)``: distinct string ids and features ``(N, ...)``.
        db_path: the SQLite file (created if missing).
        model_version: a non-empty tag stored with every row.
        transform: applied to the outputs before storing, e.g. ``torch.sigmoid``.
        batch_size: items per forward pass, an int >= 1.
        max_ks: see :func:`verify_predictions`.
        valid_range: see :func:`verify_predictions`.

    Returns:
        A :class:`BatchReport`.

    Raises:
        BatchRejected: the batch failed verification; the table is unchanged.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "p.db")
        >>> report = batch_predict(lambda x: x.sum(1), (["a", "b"], torch.ones(2, 3)),
        ...                        db_path=path, model_version="v1")
        >>> report.n_items, PredictionTable(path).lookup("a").prediction
        (2, 3.0)
    """
    check_callable("model", model)
    try:
        item_ids, X = items
    except (TypeError, ValueError):
        raise TypeError(message("items", "a pair (item_ids, X)", items)) from None
    item_ids = list(item_ids)
    for i, item_id in enumerate(item_ids):
        check_instance(f"item_ids[{i}]", item_id, str, "a string")
    repeated = sorted(item_id for item_id, count in Counter(item_ids).items() if count > 1)
    if repeated:
        raise ValueError(message("item_ids", "distinct ids", item_ids, found=f"{len(repeated)} repeated, such as {repeated[0]!r}"))
    check_tensor("X", X)
    check_same_length("item_ids", item_ids, "X", X)
    check_instance("model_version", model_version, str, "a string")
    if not model_version:
        raise ValueError(message("model_version", "a non-empty string", model_version))
    batch_size = check_int("batch_size", batch_size, low=1)
    if transform is not None:
        check_callable("transform", transform)

    outputs = predict_logits(model, X, batch_size=batch_size)
    if transform is not None:
        outputs = transform(outputs)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    if outputs.shape != (len(item_ids),):
        raise ValueError(message("model(X)", f"one value per item, shape ({len(item_ids)},)", outputs))

    conn = _connect(db_path)
    try:
        previous = torch.tensor([r[0] for r in conn.execute("SELECT prediction FROM predictions")])
        problems = verify_predictions(outputs, previous=previous, max_ks=max_ks, valid_range=valid_range)
        if problems:
            raise BatchRejected(problems)
        distance = (float(ks_2samp(outputs.double(), previous.double()).statistic)
                    if len(previous) else float("nan"))
        created_at = datetime.now(timezone.utc).isoformat()
        with conn:  # one transaction: commit on success, roll back on any error
            conn.execute("DELETE FROM predictions")
            conn.executemany(
                "INSERT INTO predictions VALUES (?, ?, ?, ?)",
                _rows(item_ids, outputs, model_version, created_at),
            )
    finally:
        conn.close()
    return BatchReport(len(item_ids), model_version, created_at, distance)


class PredictionTable:
    """Read access to the lookup table that :func:`batch_predict` writes.

    Use it as a context manager, or call :meth:`close`.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "p.db")
        >>> _ = batch_predict(lambda x: x[:, 0], (["a"], torch.ones(1, 1)), db_path=path,
        ...                   model_version="v1")
        >>> with PredictionTable(path) as table:
        ...     table.lookup("a").prediction, table.lookup("never-seen")
        (1.0, None)
    """

    def __init__(self, db_path: str | Path) -> None:
        if not Path(db_path).exists():
            raise ValueError(message("db_path", "an existing SQLite file", str(db_path)))
        self._conn = _connect(db_path)

    def lookup(self, item_id: str) -> Prediction | None:
        """The stored prediction for ``item_id``, or ``None`` if the item was not in the batch."""
        check_instance("item_id", item_id, str, "a string")
        row = self._conn.execute(
            "SELECT item_id, prediction, model_version, created_at FROM predictions WHERE item_id = ?",
            (item_id,),
        ).fetchone()
        return None if row is None else Prediction(*row)

    def predictions(self) -> torch.Tensor:
        """Every stored prediction, float64 ``(N,)``, in item-id order."""
        rows = self._conn.execute("SELECT prediction FROM predictions ORDER BY item_id").fetchall()
        return torch.tensor([r[0] for r in rows], dtype=torch.float64)

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> PredictionTable:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
