"""Tests for ``python -m companion.distributed``: the torchrun entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from companion.distributed.job import read_status


def test_torchrun_entry_point(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    out = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node=3", "-m", "companion.distributed",
         "--mode", "ps", "--job-dir", str(tmp_path), "--epochs", "2", "--samples", "256", "--evaluator"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert read_status(tmp_path)["state"] == "succeeded"
    assert "[chief] epoch 2/2" in out.stdout
    assert "[evaluator] epoch-0002.pt" in out.stdout
