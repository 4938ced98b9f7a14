"""Tests for companion.warehouse: Parquet batch predictions and sliced SQL metrics."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from companion.data import make_sliced_chunks
from companion.hardware import peak_memory
from companion.warehouse import sliced_metrics_query, sliced_metrics_sql, write_predictions_parquet


@pytest.fixture
def model():
    torch.manual_seed(0)
    return nn.Linear(8, 1)


def _chunks_with_two_keys(n_chunks, size, n_out, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_chunks):
        X = torch.randn(size, 8, generator=g)
        y = torch.randint(0, n_out, (size,), generator=g)
        region = np.array(["eu", "us"])[torch.randint(0, 2, (size,), generator=g).numpy()]
        tier = torch.randint(0, 3, (size,), generator=g).numpy()
        yield X, y, {"region": region, "tier": tier}


def test_written_files_hold_the_model_predictions(model, tmp_path):
    chunks = list(make_sliced_chunks(3, 50, seed=4))
    paths = write_predictions_parquet(model, chunks, tmp_path)
    assert [p.name for p in paths] == [f"part-0000{i}.parquet" for i in range(3)]
    for path, (X, y, cols) in zip(paths, chunks, strict=False):
        frame = pq.read_table(path).to_pandas()
        assert list(frame.columns) == ["slice", "label", "prediction", "score"]
        with torch.no_grad():
            expected = torch.sigmoid(model(X)).squeeze(1).numpy()
        np.testing.assert_allclose(frame["score"], expected, rtol=1e-6)
        np.testing.assert_array_equal(frame["prediction"], (expected > 0.5).astype(int))
        np.testing.assert_array_equal(frame["label"], y.numpy().astype(int))
        np.testing.assert_array_equal(frame["slice"], cols["slice"])


def test_the_callers_model_keeps_its_mode_and_gets_no_gradients(tmp_path):
    # It used to call `model.to(device).eval()` and leave the caller's model in eval mode.
    model = nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.5), nn.Linear(4, 1)).train()
    write_predictions_parquet(model, make_sliced_chunks(1, 20), tmp_path)
    assert all(module.training for module in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_files_are_written_atomically(tmp_path, monkeypatch):
    """A write that fails half-way leaves no file (and no temporary file) behind."""

    def fail_half_way(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        write_predictions_parquet(nn.Linear(8, 1), make_sliced_chunks(1, 10), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("task", "n_out", "match"),
    [("binary", 3, "binary logits"), ("multiclass", 1, r"\(N, C\) with C >= 2"), ("regression", 2, "one value per row")],
)
def test_an_output_that_does_not_fit_the_task_is_refused(task, n_out, match, tmp_path):
    with pytest.raises(ValueError, match=rf"Expected `model output of chunks\[0\]` to be .*{match}"):
        write_predictions_parquet(nn.Linear(8, n_out), make_sliced_chunks(1, 10), tmp_path, task=task)


def _oracle(frame: pd.DataFrame, keys, task):
    """The same metrics with pandas, in memory."""
    frame = frame.assign(correct=(frame.prediction == frame.label).astype(float), err=frame.prediction - frame.label)
    grouped = frame.groupby(keys)
    if task == "regression":
        return pd.DataFrame({
            "n": grouped.size(),
            "mae": grouped.err.apply(lambda e: e.abs().mean()),
            "rmse": grouped.err.apply(lambda e: np.sqrt((e**2).mean())),
            "prediction_bias": grouped.prediction.mean() - grouped.label.mean(),
        }).reset_index()
    out = pd.DataFrame({"n": grouped.size(), "accuracy": grouped.correct.mean()})
    if task == "binary":
        out["positive_rate"] = grouped.label.mean()
        out["mean_score"] = grouped.score.mean()
        out["prediction_bias"] = out["mean_score"] - out["positive_rate"]
    return out.reset_index()


@pytest.mark.parametrize(("task", "n_out"), [("binary", 2), ("binary", 1), ("multiclass", 4), ("regression", 1)])
def test_sliced_metrics_match_pandas(task, n_out, tmp_path):
    torch.manual_seed(1)
    model = nn.Linear(8, n_out)
    classes = 2 if task == "binary" else (4 if task == "multiclass" else 5)
    paths = write_predictions_parquet(model, _chunks_with_two_keys(3, 300, classes), tmp_path, task=task)
    got = sliced_metrics_sql(tmp_path, by=["region", "tier"], task=task, threads=1)
    everything = pd.concat([pq.read_table(p).to_pandas() for p in paths])
    expected = _oracle(everything, ["region", "tier"], task)
    assert len(got) == 6
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-6, rtol=1e-5)  # float32 scores


def test_noisy_slice_scores_lower(tmp_path):
    """A planted fault in the data (30% flipped labels on one slice) shows up in its row."""
    X, y, _ = next(make_sliced_chunks(1, 2000, seed=0))
    model = nn.Linear(8, 1)
    with torch.no_grad():  # the generating rule itself, so only label noise costs accuracy
        model.weight.copy_(torch.randn(8, generator=torch.Generator().manual_seed(0)).unsqueeze(0) * 50)
        model.bias.zero_()
    write_predictions_parquet(model, make_sliced_chunks(4, 2000, seed=0), tmp_path)
    frame = sliced_metrics_sql(tmp_path / "*.parquet", by="slice").set_index("slice")
    assert frame.loc["web", "accuracy"] > 0.99
    assert frame.loc["partner", "accuracy"] == pytest.approx(0.7, abs=0.03)
    assert frame["n"].sum() == 8000


def test_memory_stays_flat_as_files_grow(tmp_path):
    write_predictions_parquet(nn.Linear(8, 1), make_sliced_chunks(6, 100_000), tmp_path)
    paths = sorted(tmp_path.glob("*.parquet"))

    def in_memory(files):
        return pd.concat([pd.read_parquet(p) for p in files]).groupby("slice").size().sum()

    sql_one, frame_one = peak_memory(sliced_metrics_sql, paths[:1], by="slice", threads=1)
    sql_all, frame_all = peak_memory(sliced_metrics_sql, paths, by="slice", threads=1)
    pandas_one, _ = peak_memory(in_memory, paths[:1])
    pandas_all, rows = peak_memory(in_memory, paths)
    assert rows == frame_all["n"].sum() == 6 * frame_one["n"].sum()
    assert pandas_all - pandas_one > 20 * 2**20  # loading everything grows with the data (~50 MiB here)
    assert sql_all - sql_one < 0.25 * (pandas_all - pandas_one)  # streaming does not


def test_query_text_and_bad_input(tmp_path):
    query = sliced_metrics_query(["a.parquet", "it's.parquet"], by="slice", task="regression")
    assert "read_parquet(['a.parquet', 'it''s.parquet'])" in query
    assert 'GROUP BY "slice"' in query
    with pytest.raises(ValueError, match="Expected `by` to be column names made of letters"):
        sliced_metrics_query("x", by="slice; DROP TABLE t")
    with pytest.raises(ValueError, match="Expected `task` to be one of"):
        sliced_metrics_query("x", by="slice", task="ranking")
    with pytest.raises(ValueError, match="Expected `source` to be a folder"):
        sliced_metrics_query([], by="slice")
    with pytest.raises(ValueError, match="Expected `memory_limit` to be a size"):
        sliced_metrics_sql("x.parquet", by="slice", memory_limit="lots")
    with pytest.raises(ValueError, match="Expected `chunks` to be an iterable with at least one chunk"):
        write_predictions_parquet(nn.Linear(8, 1), [], tmp_path)
    bad = [(torch.randn(3, 8), torch.zeros(3), {"label": np.zeros(3)})]
    with pytest.raises(ValueError, match="Expected `column name` to be an SQL identifier other than label"):
        write_predictions_parquet(nn.Linear(8, 1), bad, tmp_path)
    short = [(torch.randn(3, 8), torch.zeros(3), {"slice": np.zeros(2)})]
    with pytest.raises(ValueError, match="to have the same length"):
        write_predictions_parquet(nn.Linear(8, 1), short, tmp_path)
    with pytest.raises(TypeError, match=r"Expected `chunks\[0\]` to be a tuple \(X, y, columns\)"):
        write_predictions_parquet(nn.Linear(8, 1), [(torch.randn(3, 8), torch.zeros(3))], tmp_path)


def test_a_folder_holding_another_run_is_refused(model, tmp_path):
    """A second run into the same folder would be counted with the first by every query."""
    first = write_predictions_parquet(model, make_sliced_chunks(2, 1000, seed=0), tmp_path)
    before = {path: path.read_bytes() for path in first}
    with pytest.raises(ValueError, match=r"^Expected `out_dir` to be a new or empty folder, but got "
                       r".*: found 2 entries, such as 'part-00000.parquet'\.$"):
        write_predictions_parquet(model, make_sliced_chunks(2, 1000, seed=1), tmp_path)
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert sliced_metrics_sql(tmp_path, by="slice")["n"].sum() == 2000
    # A write killed half-way leaves a hidden temporary file: a folder with one is not empty either.
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / ".part-00000.parquet.abc123.tmp").write_bytes(b"PAR1 half a file")
    with pytest.raises(ValueError, match="found 1 entry, such as '.part-00000.parquet.abc123.tmp'"):
        write_predictions_parquet(model, make_sliced_chunks(1, 10), stale)
    with pytest.raises(ValueError, match="found a file"):
        write_predictions_parquet(model, make_sliced_chunks(1, 10), tmp_path / "part-00000.parquet")
    write_predictions_parquet(model, make_sliced_chunks(1, 10), tmp_path / "new" / "run")  # created


def test_a_query_during_a_write_never_sees_the_file_being_written(model, tmp_path, monkeypatch):
    """Each file is written under a hidden temporary name and renamed when complete."""
    real_write_table = pq.write_table
    during = []

    def rows_a_reader_sees():
        if not any(tmp_path.glob("*.parquet")):
            return 0
        return int(sliced_metrics_sql(tmp_path, by="slice")["n"].sum())

    def write_slowly(table, where, **kwargs):
        where.write(b"PAR1 the first bytes of a file")  # a reader looks now
        where.flush()
        during.append(rows_a_reader_sees())
        where.seek(0)
        where.truncate()
        real_write_table(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_slowly)
    write_predictions_parquet(model, make_sliced_chunks(3, 500), tmp_path)
    assert during == [0, 500, 1000]  # only whole files, never the one being written


def test_duckdb_neither_installs_nor_loads_extensions(tmp_path, monkeypatch):
    """A query that names a remote file must not make DuckDB download and load code."""
    write_predictions_parquet(nn.Linear(8, 1), make_sliced_chunks(1, 10), tmp_path)
    real_connect = duckdb.connect
    settings = []

    def connect(*args, **kwargs):
        connection = real_connect(*args, **kwargs)
        settings.append(dict(connection.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%_known_extensions'").fetchall()))
        return connection

    monkeypatch.setattr(duckdb, "connect", connect)
    sliced_metrics_sql(tmp_path, by="slice", threads=1, memory_limit="256MB")
    assert settings == [{"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}]


@pytest.mark.parametrize("name", ["slice\n", "slice\r", "slice ", "1slice", "sl-ice", ""])
def test_identifiers_must_match_whole(model, tmp_path, name):
    with pytest.raises(ValueError, match="Expected `by` to be column names made of letters"):
        sliced_metrics_query("x.parquet", by=name)
    with pytest.raises(ValueError, match="Expected `prefix` to be a name of letters"):
        write_predictions_parquet(model, make_sliced_chunks(1, 10), tmp_path, prefix=name)
    X, y, columns = next(make_sliced_chunks(1, 10))
    with pytest.raises(ValueError, match="Expected `column name` to be an SQL identifier"):
        write_predictions_parquet(model, [(X, y, {name: columns["slice"]})], tmp_path)
    assert list(tmp_path.iterdir()) == []
