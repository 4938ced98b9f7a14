"""Scalable model analysis: batch predictions to Parquet files, sliced metrics in SQL.

The pattern of a cloud pipeline (a batch prediction job writes files to Cloud
Storage; BigQuery computes metrics per slice with SQL) on one machine:
:func:`write_predictions_parquet` evaluates a model chunk by chunk and writes one
Parquet file per chunk (each written atomically, so a reader never sees half a file;
one run per folder, so a query never counts two runs);
:func:`sliced_metrics_sql` runs one ``GROUP BY`` query with DuckDB, the local stand-in
for the warehouse, over all the files. DuckDB streams the files, so memory stays flat
as the number of files grows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from companion._validation import missing_extra

try:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
except ModuleNotFoundError as error:
    raise missing_extra("warehouse", error) from error

from companion._validation import (
    check_choice,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.inference import logits_to_labels, logits_to_scores, predict_logits
from companion.utils import atomic_write

__all__ = ["TASKS", "sliced_metrics_query", "sliced_metrics_sql", "write_predictions_parquet"]

TASKS = ("binary", "multiclass", "regression")
_RESERVED = {"label", "prediction", "score"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # use with fullmatch: `$` would accept "name\n"
# No extension is installed or loaded behind the caller's back (a file name such as
# s3://... would otherwise make DuckDB download and load httpfs).
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def _predict(output: torch.Tensor, task: str, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prediction, score)`` from a model's raw output for one chunk of ``N`` rows."""
    name = f"model output of chunks[{chunk}]"
    if task == "regression":
        if output.ndim not in (1, 2) or output.numel() != len(output):
            raise ValueError(message(name, "one value per row, (N,) or (N, 1), for regression", output))
        values = output.reshape(-1)
        return values, values
    if task == "binary":
        if output.ndim == 2 and output.shape[1] > 2:
            raise ValueError(message(name, "binary logits of shape (N,), (N, 1) or (N, 2)", output))
        return logits_to_labels(output), logits_to_scores(output)
    if output.ndim != 2 or output.shape[1] < 2:
        raise ValueError(message(name, "logits of shape (N, C) with C >= 2 for multiclass", output))
    return logits_to_labels(output), torch.softmax(output, dim=1).amax(dim=1)


def write_predictions_parquet(
    model: nn.Module,
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor, Mapping[str, Any]]],
    out_dir: str | os.PathLike,
    *,
    task: str = "binary",
    prefix: str = "part",
) -> list[Path]:
    """Run ``model`` over ``chunks`` and write one Parquet file of predictions per chunk.

    Each chunk is evaluated with :func:`companion.inference.predict_logits` (no
    gradients, eval mode for the call, on the device the model lives on; the model
    comes back in the mode it had) and written at once, so only one chunk is ever in
    memory: the data set may be far larger than RAM. Each file is written under a
    hidden temporary name and renamed once complete, so a query over the folder, even
    during the run, reads whole files only. One run per folder: ``out_dir`` must be
    new or empty, so that a query over the folder counts this run and no other (if a
    run fails, the files it wrote stay; write the next run to a new folder). Each file
    holds the chunk's extra columns (the slice keys), ``label``, ``prediction`` and
    ``score``:

    * ``"binary"``: ``score`` is P(y = 1) (sigmoid of one output column, or softmax of
      two), ``prediction`` the predicted label (logit > 0, or the arg-max of two);
    * ``"multiclass"``: ``prediction`` is the arg-max class, ``score`` its probability;
    * ``"regression"``: ``prediction`` and ``score`` are the output.

    Args:
        model: the model, run where it lives (move it to the device you want first).
        chunks: yields ``(X, y, columns)``: features ``(N, ...)``, labels ``(N,)``
            and ``{name: values of length N}`` (names are SQL identifiers, not
            ``label``, ``prediction`` or ``score``).
        out_dir: a new or empty folder for the files (created if missing).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        prefix: file names are ``<prefix>-00000.parquet``, ``<prefix>-00001.parquet``, ...

    Returns:
        The paths written, in order.

    Example:
        >>> import tempfile
        >>> from companion.data import make_sliced_chunks
        >>> paths = write_predictions_parquet(nn.Linear(8, 1), make_sliced_chunks(2, 100),
        ...                                   tempfile.mkdtemp())
        >>> [p.name for p in paths]
        ['part-00000.parquet', 'part-00001.parquet']
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    task = check_choice("task", task, TASKS)
    if not isinstance(prefix, str) or not _IDENTIFIER.fullmatch(prefix):
        raise ValueError(message("prefix", "a name of letters, digits and underscores", prefix))
    out = Path(out_dir)
    if out.is_file():
        raise ValueError(message("out_dir", "a new or empty folder", str(out), found="a file"))
    entries = sorted(entry.name for entry in out.iterdir()) if out.exists() else []
    if entries:  # another run's files: a query over the folder would count both runs
        found = f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}, such as {entries[0]!r}"
        raise ValueError(message("out_dir", "a new or empty folder", str(out), found=found))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, (tuple, list)) or len(chunk) != 3:
            raise TypeError(message(f"chunks[{i}]", "a tuple (X, y, columns)", chunk))
        X, y, columns = chunk
        check_tensor(f"chunks[{i}] X", X, floating=True)
        check_tensor(f"chunks[{i}] y", y, ndim=1)
        check_same_length(f"chunks[{i}] X", X, f"chunks[{i}] y", y)
        check_instance(f"chunks[{i}] columns", columns, Mapping, "a mapping of column names to values")
        prediction, score = _predict(predict_logits(model, X), task, i)
        table: dict[str, Any] = {}
        for name, values in columns.items():
            if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name in _RESERVED:
                raise ValueError(message("column name", "an SQL identifier other than label, prediction, score", name))
            check_same_length(f"chunks[{i}] {name}", values, f"chunks[{i}] y", y)
            table[name] = np.asarray(values)
        label = y.cpu().numpy()
        table["label"] = label.astype(np.float32) if task == "regression" else label.astype(np.int64)
        table["prediction"] = prediction.numpy()
        table["score"] = score.float().numpy()
        write = partial(pq.write_table, pa.table(table))  # write(file) writes the table to the file
        paths.append(atomic_write(out / f"{prefix}-{i:05d}.parquet", write))
    if not paths:
        raise ValueError(message("chunks", "an iterable with at least one chunk", chunks))
    return paths


def _source_sql(source: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        files = [str(path / "*.parquet")] if path.is_dir() else [str(path)]
    else:
        files = [str(p) for p in source]
    if not files:
        raise ValueError(message("source", "a folder, a file pattern or a non-empty list of files", source))
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"read_parquet([{quoted}])"


_METRICS = {
    "binary": [
        "COUNT(*) AS n",
        "AVG(CAST(prediction = label AS DOUBLE)) AS accuracy",
        "AVG(label) AS positive_rate",
        "AVG(score) AS mean_score",
        "AVG(score) - AVG(label) AS prediction_bias",
    ],
    "multiclass": ["COUNT(*) AS n", "AVG(CAST(prediction = label AS DOUBLE)) AS accuracy"],
    "regression": [
        "COUNT(*) AS n",
        "AVG(ABS(prediction - label)) AS mae",
        "SQRT(AVG((prediction - label) * (prediction - label))) AS rmse",
        "AVG(prediction) - AVG(label) AS prediction_bias",
    ],
}


def sliced_metrics_query(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    by: str | Sequence[str],
    task: str = "binary",
) -> str:
    """The SQL that :func:`sliced_metrics_sql` runs (the same query would run in BigQuery
    over a table instead of ``read_parquet``).

    Args:
        source: a folder of Parquet files, a file or glob pattern, or a list of files.
        by: the slice column(s) to group by (SQL identifiers).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``: which metrics.

    Returns:
        The query text.

    Example:
        >>> print(sliced_metrics_query("preds/*.parquet", by="slice", task="multiclass"))
        SELECT "slice",
               COUNT(*) AS n,
               AVG(CAST(prediction = label AS DOUBLE)) AS accuracy
        FROM read_parquet(['preds/*.parquet'])
        GROUP BY "slice"
        ORDER BY "slice"
    """
    task = check_choice("task", task, TASKS)
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ValueError(message("by", "one or more column names", by))
    for key in keys:
        if not isinstance(key, str) or not _IDENTIFIER.fullmatch(key):
            raise ValueError(message("by", "column names made of letters, digits and underscores", key))
    columns = ", ".join(f'"{k}"' for k in keys)
    select = ",\n       ".join([columns, *_METRICS[task]])
    return f"SELECT {select}\nFROM {_source_sql(source)}\nGROUP BY {columns}\nORDER BY {columns}"


def sliced_metrics_sql(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    by: str | Sequence[str],
    task: str = "binary",
    threads: int | None = None,
    memory_limit: str | None = None,
) -> pd.DataFrame:
    """Metrics per slice, computed by DuckDB with one SQL query over Parquet files.

    The files are read in a stream (never loaded whole), so the memory this takes
    does not grow with the number of files. Metrics per task:

    * ``"binary"``: ``n``, ``accuracy``, ``positive_rate`` (mean label),
      ``mean_score``, ``prediction_bias`` (mean score minus mean label);
    * ``"multiclass"``: ``n``, ``accuracy``;
    * ``"regression"``: ``n``, ``mae``, ``rmse``, ``prediction_bias``.

    Args:
        source: a folder of Parquet files (from :func:`write_predictions_parquet`), a
            file or glob pattern, or a list of files.
        by: the slice column(s) to group by.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        threads: DuckDB worker threads, an int >= 1 (``None``: DuckDB's default).
        memory_limit: DuckDB's memory limit, e.g. ``"512MB"`` (``None``: its default).

    Returns:
        A DataFrame with one row per slice, sorted by the slice columns.

    Example:
        >>> import tempfile
        >>> from companion.data import make_sliced_chunks
        >>> folder = tempfile.mkdtemp()
        >>> _ = write_predictions_parquet(nn.Linear(8, 1), make_sliced_chunks(2, 400), folder)
        >>> frame = sliced_metrics_sql(folder, by="slice")
        >>> list(frame["slice"]), int(frame["n"].sum())
        (['android', 'ios', 'partner', 'web'], 800)
    """
    query = sliced_metrics_query(source, by=by, task=task)
    with duckdb.connect(":memory:", config=_DUCKDB_CONFIG) as connection:
        if threads is not None:
            connection.execute(f"SET threads = {check_int('threads', threads, low=1)}")
        if memory_limit is not None:
            if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]?i?B", str(memory_limit)):
                raise ValueError(message("memory_limit", "a size such as '512MB'", memory_limit))
            connection.execute(f"SET memory_limit = '{memory_limit}'")
        return connection.execute(query).df()
