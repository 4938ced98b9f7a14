"""Offline (batch) inference: predict a whole catalogue, verify, push to a lookup table.

:func:`batch_predict` scores every known item, checks the batch (finite values, a
distribution close to the batch being replaced) and only then replaces the SQLite
table in one transaction, so readers see the old batch or the new one, never half
of each. :class:`PredictionTable` serves lookups; an item that was not in the
catalogue has no prediction: offline inference cannot serve the long tail.

The file is in WAL mode, so lookups go on while a batch is written (they read the
last committed batch), and readers open it read-only. The database records that it
is a prediction table and its schema version (``PRAGMA application_id`` and
``user_version``): both functions refuse any other SQLite file, and a table from an
older or newer layout, rather than misread it or overwrite it.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
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

# What makes a database a prediction table of this module: its application id, and the
# schema version of the layout below (change the version with the layout).
_APPLICATION_ID = 0x43505444  # "CPTD", in the file's header (PRAGMA application_id)
_SCHEMA_VERSION = 1  # PRAGMA user_version
_SCHEMA = (
    """
    CREATE TABLE predictions (
        item_id TEXT PRIMARY KEY NOT NULL,
        prediction REAL NOT NULL,
        model_version TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    f"PRAGMA application_id = {_APPLICATION_ID}",
    f"PRAGMA user_version = {_SCHEMA_VERSION}",
)
_INSERT = "INSERT INTO predictions (item_id, prediction, model_version, created_at) VALUES (?, ?, ?, ?)"
# How long a connection waits for a lock: a writer waits for another writer's whole batch.
_BUSY_TIMEOUT_S = 120.0


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


def _check_owned(conn: sqlite3.Connection, db_path: str | Path) -> bool:
    """Raise unless the database is a prediction table of this schema version, or empty.

    Reads only. Returns ``True`` for an empty database (a new table), ``False`` for one
    of ours.
    """
    requirement = f"a prediction table of companion (schema version {_SCHEMA_VERSION})"
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        entries = conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
    except sqlite3.OperationalError:
        raise  # locked or unreadable: nothing to say about what the file holds
    except sqlite3.DatabaseError as error:  # not an SQLite database, or a corrupt one
        raise ValueError(message("db_path", requirement, str(db_path), found=f"a file SQLite cannot read ({error})")) from error
    if application_id == _APPLICATION_ID and version == _SCHEMA_VERSION:
        return False
    if application_id == 0 and version == 0 and not entries:
        return True
    if application_id == _APPLICATION_ID:
        newer = "a newer" if version > _SCHEMA_VERSION else "an older"
        found = f"schema version {version}, from {newer} companion; write the batch to a new file"
    else:
        tables = [name for kind, name in entries if kind == "table"]
        found = f"a database companion did not write, with tables {tables}"
    raise ValueError(message("db_path", requirement, str(db_path), found=found))


def _rows(
    item_ids: Sequence[str], predictions: torch.Tensor, model_version: str, created_at: str
) -> Iterator[tuple[str, float, str, str]]:
    return zip(item_ids, predictions.tolist(), repeat(model_version), repeat(created_at))


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
    the previous batch in place. The batch is verified inside that transaction,
    against the batch it replaces: two concurrent calls take turns, and the second
    is checked against the first one's batch. Readers are never blocked meanwhile.

    Args:
        model: callable ``X -> output`` with one value per item, ``(N,)`` or ``(N, 1)``.
        items: ``(item_ids, X)``: distinct string ids and features ``(N, ...)``.
        db_path: the SQLite file: a table this function wrote before, or a new or
            empty file (created if missing).
        model_version: a non-empty tag stored with every row.
        transform: applied to the outputs before storing, e.g. ``torch.sigmoid``.
        batch_size: items per forward pass, an int >= 1.
        max_ks: see :func:`verify_predictions`.
        valid_range: see :func:`verify_predictions`.

    Returns:
        A :class:`BatchReport`.

    Raises:
        BatchRejected: the batch failed verification; the table is unchanged.
        ValueError: ``db_path`` is another database, or a prediction table of
            another schema version; it is left untouched.

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
        if not isinstance(item_id, str):
            raise TypeError(message(f"item_ids[{i}]", "a string", item_id))
    if len(set(item_ids)) < len(item_ids):
        repeated = sorted(item_id for item_id, count in Counter(item_ids).items() if count > 1)
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

    conn = sqlite3.connect(str(db_path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        _check_owned(conn, db_path)  # before anything is written to a file that is not ours
        conn.execute("PRAGMA journal_mode = WAL")  # kept in the file: readers never wait for a writer
        # Take the write lock before reading the batch to replace, so that a concurrent
        # batch_predict waits and then verifies against this batch, not the one before it.
        conn.execute("BEGIN IMMEDIATE")
        with conn:  # one transaction: commit on success, roll back on any error
            if _check_owned(conn, db_path):  # again, under the lock: a new table
                for statement in _SCHEMA:
                    conn.execute(statement)
            previous = torch.tensor([r[0] for r in conn.execute("SELECT prediction FROM predictions")],
                                    dtype=torch.float64)
            problems = verify_predictions(outputs, previous=previous, max_ks=max_ks, valid_range=valid_range)
            if problems:
                raise BatchRejected(problems)
            distance = (float(ks_2samp(outputs.double(), previous).statistic)
                        if len(previous) else float("nan"))
            created_at = datetime.now(timezone.utc).isoformat()
            conn.execute("DELETE FROM predictions")
            conn.executemany(_INSERT, _rows(item_ids, outputs, model_version, created_at))
    finally:
        conn.close()
    return BatchReport(len(item_ids), model_version, created_at, distance)


class PredictionTable:
    """Read access to the lookup table that :func:`batch_predict` writes.

    The file is opened read-only; each lookup reads the last committed batch, even
    while a new batch is being written. Use it as a context manager, or call
    :meth:`close`.

    Raises:
        ValueError: ``db_path`` is missing, empty, another database, or a prediction
            table of another schema version.

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
        read_only = Path(db_path).resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(read_only, uri=True, timeout=_BUSY_TIMEOUT_S, check_same_thread=False)
        try:
            if _check_owned(self._conn, db_path):
                raise ValueError(message("db_path", "a prediction table written by batch_predict", str(db_path),
                                         found="an empty database"))
        except BaseException:
            self._conn.close()
            raise

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
