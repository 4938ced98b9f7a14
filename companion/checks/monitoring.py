"""Live quality: how good is the served model now, scored on logged traffic?

:func:`monitor_live_quality` joins the labels that arrive after serving to the
logged predictions and scores consecutive windows, flagging the windows that fall
below a threshold: drift in the world shows there, where offline test sets cannot.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from companion._validation import (
    as_tensor,
    check_callable,
    check_float,
    check_int,
    check_same_length,
)
from companion.metrics import Metric

__all__ = ["monitor_live_quality"]


def monitor_live_quality(
    y_true: Any,
    y_pred: Any,
    *,
    metric: Metric,
    window: int,
    min_value: float,
) -> pd.DataFrame:
    """Score a served model on consecutive windows of logged traffic, flagging bad windows.

    In production the labels arrive after the predictions (a click, a payment, a
    human review). Joining them to the prediction log and scoring each window of
    ``window`` requests shows quality as it is *now*, which offline test sets
    cannot: drift in the world shows up as windows falling below ``min_value``.

    Args:
        y_true: labels in serving order, shape ``(N,)``.
        y_pred: the logged predictions, shape ``(N, ...)``.
        metric: ``metric(y_true_window, y_pred_window) -> float``, higher is better
            (negate an error to use it).
        window: requests per window, an int >= 1 (a last partial window is dropped).
        min_value: the alert threshold.

    Returns:
        A DataFrame with one row per window: ``start``, ``stop``, ``value`` and
        ``alert`` (value below ``min_value``).

    Example:
        >>> import torch
        >>> accuracy = lambda t, p: float((t == p).float().mean())
        >>> y = torch.tensor([1, 1, 0, 0, 1, 0]); p = torch.tensor([1, 1, 0, 1, 0, 1])
        >>> monitor_live_quality(y, p, metric=accuracy, window=3, min_value=0.5)["alert"].tolist()
        [False, True]
    """
    t, p = as_tensor("y_true", y_true), as_tensor("y_pred", y_pred)
    n = check_same_length("y_true", t, "y_pred", p)
    check_callable("metric", metric)
    window = check_int("window", window, low=1, high=n)
    min_value = check_float("min_value", min_value)
    rows = []
    for start in range(0, n - window + 1, window):
        value = float(metric(t[start:start + window], p[start:start + window]))
        rows.append({"start": start, "stop": start + window, "value": value,
                     "alert": value < min_value})
    return pd.DataFrame(rows)
