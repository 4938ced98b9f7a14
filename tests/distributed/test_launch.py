"""Tests for companion.distributed.launch: a real process group on 127.0.0.1 (gloo, 2-3 processes)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset

from companion.distributed.launch import JobFailedError, JobTimeoutError, launch


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _torch_error_files() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("pytorch-errorfile-*"))


def _rank_times_ten():
    return dist.get_rank() * 10


def _fail_on_rank_one():
    if dist.get_rank() == 1:
        raise ValueError("bad shard")
    dist.barrier()  # rank 0 waits on rank 1, which never arrives


class _SlowToDescribe(ValueError):
    def __str__(self):
        time.sleep(1.0)  # the rank takes a while to write down its error
        return "bad shard"


def _fail_slowly_on_rank_one():
    if dist.get_rank() == 1:
        raise _SlowToDescribe()
    dist.barrier()


def _kill_rank_one():
    if dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.barrier()


def _exit_rank_one():
    if dist.get_rank() == 1:
        os._exit(3)
    dist.barrier()


def _sleep_forever():
    time.sleep(60)


def _load_with_a_worker_process():
    loader = DataLoader(TensorDataset(torch.arange(4.0)), batch_size=2, num_workers=1,
                        multiprocessing_context="fork")
    return [batch.tolist() for (batch,) in loader]


def _optimizer_import_done():
    return "torch._dynamo" in sys.modules


def test_launch_ranks_start_with_the_optimizer_import_done():
    # torch.optim imports torch._dynamo on a process's first optimizer; the forkserver does it
    # once for all ranks, so a job does not pay seconds per rank for it.
    assert launch(_optimizer_import_done, nprocs=2, timeout=30).results == [True, True]


def test_launch_returns_each_rank_and_leaves_no_port():
    job = launch(_rank_times_ten, nprocs=3, timeout=30)
    assert job.results == [0, 10, 20]
    assert job.backend == "gloo"
    assert _port_closed(job.port)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in job.pids)


def test_launch_ranks_may_start_processes_of_their_own():
    # A rank is not a daemon process, so its DataLoader can start workers.
    assert launch(_load_with_a_worker_process, nprocs=1, timeout=30).results == [[[0.0, 1.0], [2.0, 3.0]]]


def test_launch_failure_names_the_rank_and_stops_fast():
    start = time.monotonic()
    with pytest.raises(JobFailedError, match=r"The job failed: rank 1 failed with ValueError: bad shard") as info:
        launch(_fail_on_rank_one, nprocs=2, timeout=30)
    assert info.value.rank == 1
    assert time.monotonic() - start < 20  # well before the 30 s timeout


def test_launch_names_the_rank_that_raised_not_the_ranks_it_broke():
    # The failing rank keeps its connections until its process has ended, so the others'
    # collectives break only after the launcher has seen it fail, however long it takes to
    # write down its error. (Had it left the group first, rank 0 would end before it.)
    with pytest.raises(JobFailedError) as info:
        launch(_fail_slowly_on_rank_one, nprocs=3, timeout=30)
    assert info.value.rank == 1, info.value


def test_launch_failure_comes_from_the_ranks_traceback():
    before = _torch_error_files()
    with pytest.raises(JobFailedError) as info:
        launch(_fail_on_rank_one, nprocs=2, timeout=30)
    cause = str(info.value.__cause__)
    assert "in _fail_on_rank_one" in cause and 'raise ValueError("bad shard")' in cause
    assert info.value.failures[1] == "rank 1 failed with ValueError: bad shard"
    assert _torch_error_files() <= before  # torch.multiprocessing's error files were removed


def test_launch_names_a_killed_rank():
    with pytest.raises(JobFailedError, match=r"The job failed: rank 1 was killed by signal SIGKILL \(exit code -9\)") as info:
        launch(_kill_rank_one, nprocs=2, timeout=30)
    assert info.value.rank == 1 and not isinstance(info.value, JobTimeoutError)


def test_launch_names_a_rank_that_exits():
    with pytest.raises(JobFailedError, match=r"The job failed: rank 1 exited with code 3\.") as info:
        launch(_exit_rank_one, nprocs=2, timeout=30)
    assert info.value.rank == 1


def test_launch_timeout_stops_the_job():
    start = time.monotonic()
    with pytest.raises(JobTimeoutError, match=r"did not finish within 1 s; ranks \[0, 1\] were still running") as info:
        launch(_sleep_forever, nprocs=2, timeout=1.0)
    assert time.monotonic() - start < 10
    assert info.value.rank is None and sorted(info.value.failures) == [0, 1]


def test_launch_rejects_bad_input():
    with pytest.raises(ValueError, match="Expected `nprocs` to be an int >= 1, but got 0."):
        launch(_rank_times_ten, nprocs=0)
    with pytest.raises(TypeError, match="Expected `fn` to be callable"):
        launch(3, nprocs=1)
    with pytest.raises(ValueError, match="Expected `backend` to be one of"):
        launch(_rank_times_ten, nprocs=1, backend="mpi")
    with pytest.raises(ValueError, match="Expected `timeout` to be a float > 0"):
        launch(_rank_times_ten, nprocs=1, timeout=0)
    with pytest.raises(ValueError, match="Expected `start_method` to be one of"):
        launch(_rank_times_ten, nprocs=1, start_method="thread")
