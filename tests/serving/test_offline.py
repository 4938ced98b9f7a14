"""Offline serving: batch predictions verified, then written to a real SQLite file atomically."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch

import companion.serving.offline as offline
from companion.serving.offline import (
    BatchRejected,
    PredictionTable,
    batch_predict,
    verify_predictions,
)


@pytest.fixture
def catalogue():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 3, generator=g)
    ids = [f"item-{i}" for i in range(300)]
    return ids, X


@pytest.fixture
def model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1)


def _rows(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT item_id, prediction, model_version FROM predictions").fetchall()


def test_batch_is_written_and_looked_up(tmp_path, catalogue, model):
    db = tmp_path / "predictions.db"
    report = batch_predict(model, catalogue, db_path=db, model_version="v1", transform=torch.sigmoid,
                           batch_size=64, valid_range=(0, 1))
    assert report.n_items == 300 and np.isnan(report.ks_statistic)
    ids, X = catalogue
    with torch.no_grad():
        expected = torch.sigmoid(model(X[:1]))[0, 0].item()
    with PredictionTable(db) as table:
        assert len(table) == 300
        row = table.lookup("item-0")
        assert row.prediction == pytest.approx(expected, rel=1e-6)
        assert row.model_version == "v1" and row.created_at == report.created_at
        assert table.lookup("brand-new-item") is None  # the long tail gets no answer


def test_new_batch_replaces_old_and_records_distribution_distance(tmp_path, catalogue, model):
    db = tmp_path / "p.db"
    batch_predict(model, catalogue, db_path=db, model_version="v1", transform=torch.sigmoid)
    ids, X = catalogue
    report = batch_predict(model, (ids[:200], X[:200]), db_path=db, model_version="v2",
                           transform=torch.sigmoid)
    rows = _rows(db)
    assert len(rows) == 200 and {r[2] for r in rows} == {"v2"}
    assert 0 <= report.ks_statistic < 0.2


def test_shifted_batch_is_rejected_and_table_unchanged(tmp_path, catalogue, model):
    db = tmp_path / "p.db"
    batch_predict(model, catalogue, db_path=db, model_version="v1", transform=torch.sigmoid)
    before = _rows(db)
    broken = lambda x: model(x) + 3.0  # noqa: E731  (a broken model: every score shifted)
    with pytest.raises(BatchRejected, match="distribution shifted") as info:
        batch_predict(broken, catalogue, db_path=db, model_version="v2", transform=torch.sigmoid)
    assert info.value.problems and _rows(db) == before


def test_nan_batch_is_rejected_even_as_the_first_batch(tmp_path, catalogue):
    db = tmp_path / "p.db"
    nan_model = lambda x: torch.where(x[:, 0] > 1, float("nan"), x[:, 0])  # noqa: E731
    with pytest.raises(BatchRejected, match=r"^Rejected the batch; nothing was written: "
                       r"\d+ of 300 predictions are not finite\.$"):
        batch_predict(nan_model, catalogue, db_path=db, model_version="v1")
    assert _rows(db) == []


def test_failure_mid_write_leaves_previous_batch_whole(tmp_path, catalogue, model, monkeypatch):
    db = tmp_path / "p.db"
    batch_predict(model, catalogue, db_path=db, model_version="v1")
    before = _rows(db)
    real_rows = offline._rows

    def failing_rows(*args):  # a planted fault: the write dies after 100 rows
        for i, row in enumerate(real_rows(*args)):
            if i == 100:
                raise OSError("disk full")
            yield row

    monkeypatch.setattr(offline, "_rows", failing_rows)
    with pytest.raises(OSError, match="disk full"):
        batch_predict(model, catalogue, db_path=db, model_version="v2")
    assert _rows(db) == before


def test_verify_predictions_lists_every_problem():
    p = torch.tensor([0.5, 1.5, -0.1])
    assert verify_predictions(p, valid_range=(0, 1)) == ["2 predictions outside [0, 1]"]
    assert verify_predictions(torch.rand(100)) == []


def test_bad_arguments(tmp_path, catalogue, model):
    ids, X = catalogue
    db = tmp_path / "p.db"
    with pytest.raises(ValueError, match="Expected `item_ids` and `X` to have the same length"):
        batch_predict(model, (ids[:10], X), db_path=db, model_version="v1")
    with pytest.raises(ValueError, match=r"^Expected `item_ids` to be distinct ids, but got "
                       r"\['b', 'a', 'b', 'a'\]: found 2 repeated, such as 'a'\.$"):
        batch_predict(model, (["b", "a", "b", "a"], X[:4]), db_path=db, model_version="v1")
    with pytest.raises(TypeError, match=r"Expected `item_ids\[0\]` to be a string"):
        batch_predict(model, ([1, 2], X[:2]), db_path=db, model_version="v1")
    with pytest.raises(ValueError, match="Expected `model_version` to be a non-empty string"):
        batch_predict(model, catalogue, db_path=db, model_version="")
    with pytest.raises(ValueError, match=r"Expected `model\(X\)` to be one value per item"):
        batch_predict(lambda x: x, catalogue, db_path=db, model_version="v1")
    with pytest.raises(ValueError, match="Expected `db_path` to be an existing SQLite file"):
        PredictionTable(tmp_path / "missing.db")
