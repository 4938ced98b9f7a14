"""Start a job's ranks on this machine and watch them: torch.multiprocessing, plus what it lacks.

:func:`launch` builds on :func:`torch.multiprocessing.start_processes`, which starts
the processes and, as soon as one fails, stops the others and names it. On top of it:
each rank joins one process group on 127.0.0.1 (:func:`process_group`), its return
value comes back in a :class:`LaunchResult`, the whole job has a timeout
(:class:`JobTimeoutError`), and a failure is raised as a :class:`JobFailedError` that
names the rank and what went wrong there.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.multiprocessing import (
    ProcessContext,
    ProcessExitedException,
    ProcessRaisedException,
    start_processes,
)

from companion._validation import check_callable, check_choice, check_float, check_int
from companion.utils import free_port

__all__ = ["JobFailedError", "JobTimeoutError", "LaunchResult", "launch", "process_group"]

# What the forkserver imports once, before it forks any rank: this package (torch with it),
# and torch._dynamo, which torch.optim imports lazily on the first optimizer a process
# creates. Without it every rank of every job pays that import again (about a second
# per rank on an idle machine, several on a busy one). Importing it starts no thread.
_FORKSERVER_PRELOAD = ["companion.distributed", "torch._dynamo"]

# When a rank fails, the others get this long to stop by themselves (their collectives
# break at once, so they record their own errors), then as long again after SIGTERM.
_GRACE_SECONDS = 1.0


@dataclass
class LaunchResult:
    """What :func:`launch` returns.

    Attributes:
        results: the job function's return value on each rank, indexed by rank.
        backend: the process-group backend used (``"gloo"`` or ``"nccl"``).
        port: the rendezvous port on 127.0.0.1 (closed again when launch returns).
        pids: the process id of each rank (all ended when launch returns).
        seconds: wall-clock time of the job.
    """

    results: list[Any]
    backend: str
    port: int
    pids: list[int]
    seconds: float


class JobFailedError(RuntimeError):
    """A rank failed, so the job was stopped. ``rank`` is the first rank that failed.

    The exception it was raised from (``__cause__``) holds that rank's traceback.

    Attributes:
        rank: the rank that failed first (a killed process comes before the ranks
            whose collectives then broke), or ``None`` for a timeout.
        failures: ``{rank: description}`` for every rank that failed.
    """

    def __init__(self, text: str, *, rank: int | None, failures: Mapping[int, str]) -> None:
        super().__init__(text)
        self.rank = rank
        self.failures = dict(failures)


class JobTimeoutError(JobFailedError, TimeoutError):
    """The job ran past its timeout and was stopped."""


def _pick_backend(backend: str | None, local_world_size: int) -> str:
    if backend is None:
        # NCCL needs one GPU per process; otherwise gloo (CPU) works everywhere.
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return "nccl" if gpus >= local_world_size else "gloo"
    return check_choice("backend", backend, ("gloo", "nccl"))


@contextmanager
def process_group(backend: str | None = None, *, timeout: float = 60.0) -> Iterator[str]:
    """Join the process group the environment describes; leave it when the block ends.

    ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` say where (torchrun
    and :func:`launch` set them). When the block ends, the ranks wait for each other at
    a barrier, so no one leaves while another still talks to it, then leave. When the
    block raises, the rank neither waits nor leaves: its process is about to end, and
    only then do the other ranks' collectives break, after the launcher has seen this
    rank fail first.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks NCCL when this machine has a
            GPU for each of its ``LOCAL_WORLD_SIZE`` processes, else gloo.
        timeout: seconds, a float > 0, that a collective waits for the other ranks.

    Yields:
        The backend.

    Example:
        >>> import os
        >>> from unittest import mock
        >>> from companion.utils import free_port
        >>> env = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0",
        ...            WORLD_SIZE="1", GLOO_SOCKET_IFNAME="lo")
        >>> with mock.patch.dict(os.environ, env), process_group("gloo", timeout=30):
        ...     dist.get_world_size()
        1
    """
    timeout = check_float("timeout", timeout, low=0, low_open=True)
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    backend = _pick_backend(backend, local_world_size)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=timeout))
    yield backend
    dist.barrier()
    dist.destroy_process_group()


def _pick_start_method(start_method: str | None) -> str:
    if start_method is not None:
        return check_choice("start_method", start_method, tuple(multiprocessing.get_all_start_methods()))
    # A plain fork copies this process, whose autograd threads or CUDA context break the
    # children. forkserver forks them from a clean server that imported torch once, so
    # it is safe and, after the first job, fast; spawn is the fallback where it is missing.
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def launch(
    fn: Callable[..., Any],
    *,
    nprocs: int,
    backend: str | None = None,
    timeout: float = 60.0,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    start_method: str | None = None,
) -> LaunchResult:
    """Run ``fn(*args, **kwargs)`` in ``nprocs`` processes that form one process group.

    Each process joins a ``torch.distributed`` group on 127.0.0.1 (a free port), runs
    ``fn`` (which reads its rank from ``torch.distributed.get_rank()``), waits for the
    others at a barrier and leaves the group (:func:`process_group`). The launcher
    watches the processes: when one fails or dies, it stops the others at once and
    raises :class:`JobFailedError` naming that rank; when the job runs past
    ``timeout`` it stops it and raises :class:`JobTimeoutError`. No process or port
    outlives the call.

    Args:
        fn: the job function, run on every rank. It is pickled to the processes, so it
            must be importable (defined in a module, not in a notebook cell).
        nprocs: number of processes (ranks), an int >= 1.
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks NCCL when there is a GPU
            for every process, else gloo.
        timeout: seconds, a float > 0, for the whole job and for each collective.
        args: positional arguments of ``fn`` (pickled to each process).
        kwargs: keyword arguments of ``fn``.
        start_method: how processes start; ``None`` means ``"forkserver"`` where it
            exists (safe after autograd or CUDA ran here, fast after the first job), else
            ``"spawn"``.

    Returns:
        A :class:`LaunchResult` whose ``results[rank]`` is ``fn``'s return value there.

    Raises:
        JobFailedError: a rank raised or died; the message names it.
        JobTimeoutError: the job did not finish within ``timeout`` seconds.

    Example:
        >>> launch(dist.get_world_size, nprocs=2).results
        [2, 2]
    """
    check_callable("fn", fn)
    nprocs = check_int("nprocs", nprocs, low=1)
    timeout = check_float("timeout", timeout, low=0, low_open=True)
    backend = _pick_backend(backend, nprocs)
    method = _pick_start_method(start_method)
    if method == "forkserver":
        multiprocessing.get_context(method).set_forkserver_preload(_FORKSERVER_PRELOAD)
    port = free_port()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="companion-job-") as folder:
        rank_args = (fn, tuple(args), dict(kwargs or {}), nprocs, port, backend, timeout, folder)
        context = start_processes(_run_rank, rank_args, nprocs, join=False, start_method=method)
        try:
            _join(context, start=start, timeout=timeout)
        finally:
            _stop(context)
        results = [pickle.loads(Path(folder, f"rank{rank}.pickle").read_bytes()) for rank in range(nprocs)]
    return LaunchResult(results, backend, port, context.pids(), time.monotonic() - start)


def _run_rank(
    rank: int,
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    world_size: int,
    port: int,
    backend: str,
    timeout: float,
    folder: str,
) -> None:
    """One rank's process (torch.multiprocessing passes the rank first): run ``fn``, save its value."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
    )
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)  # processes share the cores; one thread each
    with process_group(backend, timeout=timeout):
        value = fn(*args, **kwargs)
    Path(folder, f"rank{rank}.pickle").write_bytes(pickle.dumps(value))


def _join(context: ProcessContext, *, start: float, timeout: float) -> None:
    """Return when every rank exited 0; raise as soon as one fails, or when time runs out."""
    try:
        while not context.join(timeout=max(0.0, start + timeout - time.monotonic()), grace_period=_GRACE_SECONDS):
            if time.monotonic() - start >= timeout:
                running = [rank for rank, process in enumerate(context.processes) if process.is_alive()]
                raise JobTimeoutError(
                    f"The job did not finish within {timeout:g} s; ranks {running} were still "
                    "running and were stopped.",
                    rank=None,
                    failures={rank: "still running at the timeout" for rank in running},
                )
    except (ProcessRaisedException, ProcessExitedException) as error:
        raised = {rank: f"rank {rank} failed with {_exception_line(error_file)}"
                  for rank, error_file in enumerate(context.error_files) if os.path.exists(error_file)}
        first = error.error_index  # then the ranks whose collectives broke
        failures = {first: raised.pop(first, None) or _describe_exit(error), **raised}
        first_failure, *then = failures.values()
        raise JobFailedError(
            f"The job failed: {first_failure}." + (f" Then {'; '.join(then)}." if then else "")
            + f" All {len(context.processes)} processes were stopped after "
            f"{time.monotonic() - start:.1f} s.",
            rank=first,
            failures=failures,
        ) from error


def _describe_exit(error: ProcessExitedException) -> str:
    if error.signal_name is not None:
        return f"rank {error.error_index} was killed by signal {error.signal_name} (exit code {error.exit_code})"
    return f"rank {error.error_index} exited with code {error.exit_code}"


def _exception_line(error_file: str) -> str:
    """``ValueError: bad shard``: the line after the last frame of the traceback a rank wrote."""
    with open(error_file, "rb") as file:
        lines = pickle.load(file).rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    after_frames = lines[frames[-1] + 1 :] if frames else lines
    return next((line for line in after_frames if not line.startswith(" ")), lines[-1])


def _stop(context: ProcessContext) -> None:
    """Stop every rank still running (SIGTERM, then SIGKILL), reap all, remove their error files."""
    for process in context.processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _GRACE_SECONDS
    for process in context.processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    for error_file in context.error_files:  # torch.multiprocessing leaves them in the temp folder
        Path(error_file).unlink(missing_ok=True)
