"""Shared set-up of the distributed tests: a small classification job, and no process left behind."""

from __future__ import annotations

import psutil
import pytest
import torch
from torch import nn

from companion.data import make_gaussian_blobs


@pytest.fixture(scope="module")
def data():
    """``(model, X, y, X_val, y_val)``: 256 training and 96 validation rows, 6 features, 3 classes."""
    X, y = make_gaussian_blobs(352, 6, 3, seed=1)
    X, X_val, y, y_val = X[:256], X[256:], y[:256], y[256:]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, X, y, X_val, y_val


def _is_multiprocessing_helper(process: psutil.Process) -> bool:
    """The forkserver (and its resource tracker) that launch() reuses across jobs by design."""
    cmdline = " ".join(process.cmdline())
    return "forkserver" in cmdline or "resource_tracker" in cmdline


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test must leave no job process behind (only multiprocessing's reusable helpers)."""
    yield
    children = psutil.Process().children(recursive=True)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE
            and not _is_multiprocessing_helper(c)]
    assert not left, left
