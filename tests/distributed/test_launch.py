"""Tests for companion.distributed.launch: a real process group on 127.0.0.1 (gloo, 2-3 processes)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset

from companion.distributed.launch import (
    _FORKSERVER_PRELOAD,
    JobFailedError,
    JobTimeoutError,
    launch,
)


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


def _store_listen_addresses():
    """Every address on which some process of this machine listens on the job's rendezvous port."""
    port = int(os.environ["MASTER_PORT"])
    return sorted({c.laddr.ip for c in psutil.net_connections("tcp")
                   if c.status == psutil.CONN_LISTEN and c.laddr.port == port})


# A launcher in a process of its own, running a job that would last 5 minutes; each rank
# tells its pid (written whole, then renamed) once it runs.
_LAUNCHER = """
import os, sys, time
from pathlib import Path
import torch.distributed as dist
from companion.distributed import launch

def job(folder):
    path = Path(folder, f"rank{dist.get_rank()}.pid")
    path.with_suffix(".tmp").write_text(str(os.getpid()))
    path.with_suffix(".tmp").replace(path)
    time.sleep(300)

if __name__ == "__main__":
    launch(job, nprocs=2, timeout=600, args=(sys.argv[1],))
"""


def _wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


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


def test_launch_store_listens_on_loopback_only():
    # The rendezvous store takes no connection from the network, only from this machine.
    job = launch(_store_listen_addresses, nprocs=2, timeout=30)
    assert job.results == [["127.0.0.1"], ["127.0.0.1"]]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_launcher_leaves_no_rank_running(signum, tmp_path, job_processes):
    script = tmp_path / "launcher.py"
    script.write_text(_LAUNCHER)
    # The launcher's temporary folder, short: the fork server's socket path must fit in 108 bytes.
    with tempfile.TemporaryDirectory() as temp:
        env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=temp)
        launcher = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env)
        pid_files = [tmp_path / f"rank{rank}.pid" for rank in range(2)]
        try:
            assert _wait_for(lambda: all(p.exists() for p in pid_files) or launcher.poll() is not None, 120)
            assert launcher.poll() is None, "the launcher ended before its ranks ran"
            ranks = {int(p.read_text()) for p in pid_files}
            assert ranks <= {p.pid for p in job_processes()}  # the check sees them
            launcher.send_signal(signum)
            assert launcher.wait(timeout=60) == -signum  # the launcher still dies of the signal
            # Its ranks, its fork server and its resource tracker all end, though their parent is gone.
            assert _wait_for(lambda: not job_processes(), 30), job_processes()
            if signum == signal.SIGTERM:  # a SIGTERM lets the launcher clean up before it dies
                assert not list(Path(temp).glob("companion-job-*"))
        finally:  # leave nothing running, whatever failed
            launcher.kill()
            launcher.wait()
            left = job_processes()
            for process in left:
                process.kill()
            psutil.wait_procs(left, timeout=30)


def test_leftover_check_sees_ranks_forked_by_the_fork_server(job_processes):
    # A rank has its fork server's command line; the check must still count it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_FORKSERVER_PRELOAD)  # as launch() does, should this start the server
    rank = context.Process(target=time.sleep, args=(60,))
    rank.start()
    try:
        assert rank.pid in {p.pid for p in job_processes()}
    finally:
        rank.kill()
        rank.join()
    assert rank.pid not in {p.pid for p in job_processes()}


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
