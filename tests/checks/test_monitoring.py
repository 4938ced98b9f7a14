"""Tests for companion.checks.monitoring: live quality on windows of logged traffic."""

from __future__ import annotations

import pytest
import torch

from companion.checks import monitor_live_quality

# ---------------------------------------------------------------- live quality


def test_monitor_live_quality_flags_windows_after_drift():
    accuracy = lambda t, p: float((t == p).float().mean())  # noqa: E731
    y = torch.zeros(100, dtype=torch.long)
    pred = torch.cat([torch.zeros(60, dtype=torch.long), torch.ones(40, dtype=torch.long)])
    table = monitor_live_quality(y, pred, metric=accuracy, window=20, min_value=0.8)
    assert table["alert"].tolist() == [False, False, False, True, True]
    assert table["value"].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"Expected `window` to be an int in \[1, 100\]"):
        monitor_live_quality(y, pred, metric=accuracy, window=0, min_value=0.8)
