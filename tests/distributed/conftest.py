"""Shared set-up of the distributed tests: a small classification job, and no process left behind."""

from __future__ import annotations

import os

import psutil
import pytest
import torch
from torch import nn

from companion.data import make_gaussian_blobs

# Every process this test process starts carries this mark in its environment, and so does every
# process those start, by fork or forkserver or exec, even after its parent died and it was
# reparented to init: /proc/<pid>/environ keeps the environment a process was started with. Set
# at import, before any test starts a fork server (collection imports every conftest first).
_MARK = "COMPANION_TEST_PROCESS"
os.environ[_MARK] = str(os.getpid())


@pytest.fixture(scope="module")
def data():
    """``(model, X, y, X_val, y_val)``: 256 training and 96 validation rows, 6 features, 3 classes."""
    X, y = make_gaussian_blobs(352, 6, 3, seed=1)
    X, X_val, y, y_val = X[:256], X[256:], y[:256], y[256:]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, X, y, X_val, y_val


def _is_our_multiprocessing_helper(process: psutil.Process) -> bool:
    """This test process's fork server and resource tracker, which launch() reuses across jobs by design.

    A rank forked by the fork server has the server's command line too, but the server is its parent.
    """
    cmdline = " ".join(process.cmdline())
    return process.ppid() == os.getpid() and ("forkserver" in cmdline or "resource_tracker" in cmdline)


def _carries_our_mark(process: psutil.Process) -> bool:
    try:
        return process.environ().get(_MARK) == os.environ[_MARK]
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def _running_job_processes() -> list[psutil.Process]:
    """Every running process this test process started, directly or not, orphaned or not, but its helpers."""
    me = psutil.Process()
    found = {process.pid: process for process in me.children(recursive=True)}
    found.update((p.pid, p) for p in psutil.process_iter() if p.pid != me.pid and _carries_our_mark(p))
    left = []
    for process in found.values():
        try:
            if process.status() != psutil.STATUS_ZOMBIE and not _is_our_multiprocessing_helper(process):
                left.append(process)
        except psutil.NoSuchProcess:
            pass
    return left


@pytest.fixture
def job_processes():
    """A function that lists the job processes still running (see :func:`no_leftovers`)."""
    return _running_job_processes


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test must leave no process behind: ranks forked by the fork server, orphans, subprocesses."""
    yield
    left = _running_job_processes()
    assert not left, left
