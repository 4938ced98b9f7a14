"""Metrics per slice of the data: where is the model wrong, and in which direction?

An overall metric can hide a slice on which the model does badly. Slicing the
evaluation data (by region, device, class, ...) and computing the prediction bias
and other metrics per slice shows which subsets are poorly predicted. The usual
reasons (claim E17 of the course) are a slice that is under-represented in
training, a slice that is noisier than the rest, or a model so strongly
regularized that it pulls every prediction towards the overall mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from companion._tables import as_column, as_frame
from companion._validation import check_callable, check_instance, message
from companion.metrics import Metric, prediction_bias

__all__ = ["sliced_metrics", "OVERALL"]

OVERALL = "(all)"
"""Index label of the row that covers every example in :func:`sliced_metrics`."""


def _require(frame: pd.DataFrame, argument: str, column: str) -> None:
    if column not in frame.columns:
        raise ValueError(message(argument, f"one of the columns {tuple(frame.columns)}", column))


def sliced_metrics(
    data: pd.DataFrame | Mapping[str, Any],
    slice_key: str | Any,
    *,
    label: str = "label",
    prediction: str = "prediction",
    metrics: Mapping[str, Metric] | None = None,
) -> pd.DataFrame:
    """Count, prediction bias and any other metrics for each slice, plus the whole data.

    Args:
        data: evaluation data, one row per example: a DataFrame, or a mapping of
            column names to 1-D tensors, arrays or lists of equal length (or a 2-D
            array, whose columns are named ``x0, x1, ...``).
        slice_key: the name of the column whose values define the slices, or the
            slice of each example as a 1-D tensor/array/list of length ``N``.
        label: column of labels ``(N,)`` (0/1 for a binary classifier).
        prediction: column of predictions ``(N,)`` on the label's scale: predicted
            probabilities of class 1 for a binary classifier, values for a regressor.
        metrics: more metrics, ``{name: fn(y_true, y_pred) -> float}``, each called
            per slice with float64 tensors ``(n,)``, e.g. ``{"auc": roc_auc}`` from
            :mod:`companion.metrics` or ``{"mse": lambda y, p: float(((p - y) ** 2).mean())}``.

    Returns:
        A DataFrame indexed by slice (sorted), then one row :data:`OVERALL` for
        all examples, with columns ``count``, ``share`` (of all examples),
        ``mean_label``, ``mean_prediction``, ``prediction_bias`` (mean prediction
        minus mean label, :func:`companion.metrics.prediction_bias`) and one column
        per entry of ``metrics``.

    Example:
        >>> table = sliced_metrics(
        ...     {"label": [0, 1, 1, 0, 1, 0], "prediction": [0.1, 0.8, 0.9, 0.6, 0.7, 0.5],
        ...      "region": ["a", "a", "a", "b", "b", "b"]}, "region")
        >>> table["count"].to_dict()
        {'a': 3, 'b': 3, '(all)': 6}
        >>> table["prediction_bias"].round(4).to_dict()
        {'a': -0.0667, 'b': 0.2667, '(all)': 0.1}
    """
    frame = as_frame("data", data)
    for argument, column in (("label", label), ("prediction", prediction)):
        check_instance(argument, column, str, "a column name (str)")
        _require(frame, argument, column)
    if isinstance(slice_key, str):
        _require(frame, "slice_key", slice_key)
        key_name, keys = slice_key, frame[slice_key].to_numpy()
    else:
        key_name, keys = "slice", as_column("slice_key", slice_key, len(frame))
    metrics = dict(metrics or {})
    for name, fn in metrics.items():
        check_callable(f"metrics[{name!r}]", fn)
    if len(frame) == 0:
        raise ValueError(message("data", "at least one row", frame))
    y_true = torch.tensor(frame[label].to_numpy(dtype=np.float64))
    y_pred = torch.tensor(frame[prediction].to_numpy(dtype=np.float64))

    def row(mask: np.ndarray) -> dict[str, float]:
        index = torch.as_tensor(np.flatnonzero(mask))
        true, pred = y_true[index], y_pred[index]
        values: dict[str, float] = {
            "count": int(len(index)),
            "share": len(index) / len(frame),
            "mean_label": float(true.mean()),
            "mean_prediction": float(pred.mean()),
            "prediction_bias": prediction_bias(true, pred),
        }
        for name, fn in metrics.items():
            values[name] = float(fn(true, pred))
        return values

    codes, slices = pd.factorize(pd.Series(keys), sort=True, use_na_sentinel=False)
    rows = {key: row(codes == i) for i, key in enumerate(slices)}  # a missing key is a slice too
    rows[OVERALL] = row(np.ones(len(frame), dtype=bool))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = key_name
    return table
