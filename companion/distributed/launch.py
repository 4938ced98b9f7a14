"""Start a job's ranks on this machine and watch them: torch.multiprocessing, plus what it lacks.

:func:`launch` builds on :func:`torch.multiprocessing.start_processes`, which starts
the processes and, as soon as one fails, stops the others and names it. On top of it:
each rank joins one process group through a rendezvous store that the launcher serves
on 127.0.0.1 only (:func:`process_group`), its return value comes back in a
:class:`LaunchResult`, the whole job has a timeout (:class:`JobTimeoutError`), a
failure is raised as a :class:`JobFailedError` that names the rank and what went wrong
there, and no rank outlives the launcher, even one killed with SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import select
import signal
import socket
import sys
import tempfile
import threading
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

__all__ = ["JobFailedError", "JobTimeoutError", "LaunchResult", "group_timeout", "launch", "process_group"]

# What the forkserver imports once, before it forks any rank: this package (torch with it),
# and torch._dynamo, which torch.optim imports lazily on the first optimizer a process
# creates. Without it every rank of every job pays that import again (about a second
# per rank on an idle machine, several on a busy one). Importing it starts no thread.
_FORKSERVER_PRELOAD = ["companion.distributed", "torch._dynamo"]

# When a rank fails, the others get this long to stop by themselves (their collectives
# break at once, so they record their own errors), then as long again after SIGTERM.
_GRACE_SECONDS = 1.0

# The timeout this process joined its process group with (process_group sets it).
_group_timeout: float | None = None


@dataclass
class LaunchResult:
    """What :func:`launch` returns.

    Attributes:
        results: the job function's return value on each rank, indexed by rank.
        backend: the process-group backend used (``"gloo"`` or ``"nccl"``).
        port: the port of the rendezvous store, which the launcher served on 127.0.0.1
            only (closed again when launch returns).
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
def process_group(
    backend: str | None = None, *, timeout: float = 60.0, store: dist.Store | None = None
) -> Iterator[str]:
    """Join the process group the environment describes; leave it when the block ends.

    ``RANK`` and ``WORLD_SIZE`` say who, and ``MASTER_ADDR`` and ``MASTER_PORT`` where
    the ranks meet, unless ``store`` is given (torchrun sets them; :func:`launch` sets
    them and hands each rank a ``store``). When the block ends, the ranks wait for each other at
    a barrier, so no one leaves while another still talks to it, then leave. When the
    block raises, the rank neither waits nor leaves: its process is about to end, and
    only then do the other ranks' collectives break, after the launcher has seen this
    rank fail first.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks NCCL when this machine has a
            GPU for each of its ``LOCAL_WORLD_SIZE`` processes, else gloo.
        timeout: seconds, a float > 0, that a collective waits for the other ranks. It is
            also the job's timeout for what a rank waits for besides collectives: the
            evaluator waits this long for the chief to finish.
        store: the rendezvous store to meet in instead, a client of the store the
            launcher serves (``torch.distributed.TCPStore``).

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
    global _group_timeout
    timeout = check_float("timeout", timeout, low=0, low_open=True)
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    backend = _pick_backend(backend, local_world_size)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if store is None:
        dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=timeout))
    else:
        dist.init_process_group(backend, store=store, rank=int(os.environ["RANK"]),
                                world_size=int(os.environ["WORLD_SIZE"]), timeout=timedelta(seconds=timeout))
    _group_timeout = timeout
    yield backend
    dist.barrier()
    dist.destroy_process_group()
    _group_timeout = None


def group_timeout() -> float:
    """Seconds this rank's job may wait: the ``timeout`` it joined :func:`process_group` with.

    A rank that joined its group some other way gets torch's default for a process
    group (``torch.distributed.default_pg_timeout``, 30 minutes).

    Example:
        >>> group_timeout()  # no group here
        1800.0
    """
    return _group_timeout if _group_timeout is not None else dist.default_pg_timeout.total_seconds()


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

    The launcher serves the group's rendezvous store on 127.0.0.1 only, on a port the
    system picks. Each process joins the ``torch.distributed`` group there, runs ``fn``
    (which reads its rank from ``torch.distributed.get_rank()``), waits for the others
    at a barrier and leaves the group (:func:`process_group`). The launcher watches the
    processes: when one fails or dies, it stops the others at once and raises
    :class:`JobFailedError` naming that rank; when the job runs past ``timeout`` it
    stops it and raises :class:`JobTimeoutError`. No process or port outlives the call,
    nor the launcher: a rank ends as soon as the launcher's process ends (on Linux),
    and a launcher that gets SIGTERM (with SIGTERM's default action in place, in the
    main thread) first stops its ranks, then dies of the signal.

    Args:
        fn: the job function, run on every rank. It is pickled to the processes, so it
            must be importable (defined in a module, not in a notebook cell).
        nprocs: number of processes (ranks), an int >= 1.
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks NCCL when there is a GPU
            for every process, else gloo.
        timeout: seconds, a float > 0, for the whole job, for each collective, and for
            what a rank waits for besides (the evaluator waits this long for the chief).
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
    start = time.monotonic()
    with _stopped_by_sigterm(), _rendezvous_store(timeout) as port, \
            tempfile.TemporaryDirectory(prefix="companion-job-") as folder:
        rank_args = (fn, tuple(args), dict(kwargs or {}), nprocs, port, backend, timeout, folder, os.getpid())
        context = start_processes(_run_rank, rank_args, nprocs, join=False, start_method=method)
        try:
            _join(context, start=start, timeout=timeout)
        finally:
            _stop(context)
        results = [pickle.loads(Path(folder, f"rank{rank}.pickle").read_bytes()) for rank in range(nprocs)]
    return LaunchResult(results, backend, port, context.pids(), time.monotonic() - start)


class _Terminated(BaseException):
    """SIGTERM arrived while :func:`launch` ran (raised by its handler, caught by launch)."""


@contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """Turn SIGTERM into an exception while the block runs, then die of it.

    By default SIGTERM ends a Python process at once, without running any ``finally``;
    here it unwinds the block instead (stopping the ranks, removing the job's files),
    then the process dies of the signal as it would have. Only where SIGTERM has its
    default action (a program that handles it keeps its own handler) and in the main
    thread (the only one that can set a handler).
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not interrupt the clean-up
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # the default action ends the process here
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def _rendezvous_store(timeout: float) -> Iterator[int]:
    """Serve the job's rendezvous store on 127.0.0.1 only, on a port the system picks; yield the port.

    A TCPStore binds every interface (``*:port``) by itself; handed a socket already
    bound to loopback, it serves there. Binding port 0 also leaves no moment between
    picking a free port and taking it, in which another process could take it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        store = dist.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False,
                              timeout=timedelta(seconds=timeout), master_listen_fd=os.dup(listener.fileno()))
        try:
            yield port
        finally:
            del store  # the store closes its copy of the socket, the with block ours


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
    launcher: int,
) -> None:
    """One rank's process (torch.multiprocessing passes the rank first): run ``fn``, save its value."""
    _end_with(launcher)
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
    store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=timedelta(seconds=timeout))
    with process_group(backend, timeout=timeout, store=store):
        value = fn(*args, **kwargs)
    Path(folder, f"rank{rank}.pickle").write_bytes(pickle.dumps(value))


def _end_with(launcher: int) -> None:
    """End this process (SIGKILL) as soon as the ``launcher`` process ends, however it ends (Linux).

    ``PR_SET_PDEATHSIG`` cannot do it: a rank's parent is the fork server, which outlives
    the launcher as long as any rank runs (every process it forks keeps its "alive" pipe
    open). So a thread waits on a pidfd of the launcher, which becomes readable when the
    launcher ends, even before its parent collects it. A launcher that ended before this
    rank began watching it ends the rank at once.
    """
    if not hasattr(os, "pidfd_open"):  # not Linux: the launcher's SIGTERM path is all there is
        return
    try:
        pidfd = os.pidfd_open(launcher)
    except ProcessLookupError:  # the launcher ended already
        os.kill(os.getpid(), signal.SIGKILL)
    except OSError:  # a kernel before 5.3, or a sandbox that forbids pidfds: no watch
        return

    def watch() -> None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll()
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="companion-launcher-watch", daemon=True).start()


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
        first_failure, *then = (failure.rstrip(".") for failure in failures.values())
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
