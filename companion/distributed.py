"""A training cluster on ``torch.distributed``: chief, workers, parameter servers, evaluator.

Every process runs the same job function; its **role** follows from its rank and
the world size (:func:`assign_roles`), as in a cloud training job:

* the **chief** (rank 0) trains its shard like a worker and also coordinates: it
  logs, writes atomic checkpoints (only the chief writes them) and reports the job's
  status in ``<job_dir>/status.json``;
* **workers** train on their shard of every global batch;
* **parameter servers** hold the parameters; workers pull them and push gradients
  (:func:`train_parameter_server`, point-to-point messages, asynchronous updates);
* at most one **evaluator** evaluates each checkpoint as the chief writes it
  (:func:`run_evaluator`).

Data-parallel training with all-reduce (:func:`train_ddp`, PyTorch's
``DistributedDataParallel``) needs no parameter server: workers average gradients
among themselves.

On one machine, :func:`launch` starts the processes on 127.0.0.1 (gloo on CPU, NCCL
when every process gets its own GPU), watches them, and stops the whole job with a
:class:`JobFailedError` naming the rank as soon as one process fails.

Across machines, ``torchrun`` starts the same code (``python -m companion.distributed``).
On the first machine (10.0.0.1), then on the second, with the job folder on storage
both machines see::

    torchrun --nnodes=2 --nproc-per-node=2 --node-rank=0 \\
        --master-addr=10.0.0.1 --master-port=29500 \\
        -m companion.distributed --mode ddp --job-dir /mnt/shared/job --evaluator
    torchrun --nnodes=2 --nproc-per-node=2 --node-rank=1 \\
        --master-addr=10.0.0.1 --master-port=29500 \\
        -m companion.distributed --mode ddp --job-dir /mnt/shared/job --evaluator

On one machine: ``torchrun --standalone --nproc-per-node=3 -m companion.distributed
--mode ps --parameter-servers 1 --job-dir /tmp/job``.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import pickle
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from companion._validation import (
    check_callable,
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "JobFailedError",
    "JobTimeoutError",
    "LaunchResult",
    "RankResult",
    "assign_roles",
    "global_batches",
    "launch",
    "latest_checkpoint",
    "main",
    "read_status",
    "run_evaluator",
    "train_ddp",
    "train_parameter_server",
]

ROLES = ("chief", "worker", "ps", "evaluator")
_TRAINERS = ("chief", "worker")
_CHECKPOINT_GLOB = "epoch-*.pt"


# --------------------------------------------------------------------------- roles


def assign_roles(world_size: int, *, parameter_servers: int = 0, evaluator: bool = False) -> list[str]:
    """The role of every rank: one chief, then workers, parameter servers, an evaluator.

    Rank 0 is always the chief (it also trains). Parameter servers and the evaluator
    take the highest ranks, so adding them never renumbers the workers.

    Args:
        world_size: number of processes, an int >= 1 + parameter_servers + evaluator.
        parameter_servers: number of parameter-server ranks, an int >= 0.
        evaluator: whether the last rank is the (single) evaluator.

    Returns:
        A list of ``world_size`` role names from ``("chief", "worker", "ps", "evaluator")``.

    Example:
        >>> assign_roles(5, parameter_servers=1, evaluator=True)
        ['chief', 'worker', 'worker', 'ps', 'evaluator']
    """
    world_size = check_int("world_size", world_size, low=1)
    parameter_servers = check_int("parameter_servers", parameter_servers, low=0)
    check_instance("evaluator", evaluator, bool, "a bool")
    needed = 1 + parameter_servers + int(evaluator)
    if world_size < needed:
        raise ValueError(
            message(
                "world_size",
                f"an int >= {needed} (one chief, {parameter_servers} parameter server(s)"
                f"{' and one evaluator' if evaluator else ''})",
                world_size,
            )
        )
    workers = world_size - parameter_servers - int(evaluator) - 1
    return ["chief"] + ["worker"] * workers + ["ps"] * parameter_servers + ["evaluator"] * int(evaluator)


def global_batches(n_samples: int, *, batch_size: int, epoch: int, seed: int = 0) -> list[torch.Tensor]:
    """Row indices of each global batch of an epoch; the last incomplete batch is dropped.

    Every rank computes the same permutation (seeded with ``seed + epoch``, as
    :class:`torch.utils.data.DistributedSampler` does) and takes its own slice
    ``batch[i::n_trainers]`` of each batch. So the global batches are the same
    whatever the number of workers, which is what makes two workers equal to one.

    Args:
        n_samples: rows in the data set, an int >= batch_size.
        batch_size: rows per global batch, an int >= 1.
        epoch: the epoch (from 1), an int >= 0.
        seed: base seed, an int >= 0.

    Returns:
        ``n_samples // batch_size`` int64 tensors of shape ``(batch_size,)``.

    Example:
        >>> [b.tolist() for b in global_batches(5, batch_size=2, epoch=1)]
        [[0, 4], [2, 3]]
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    n_samples = check_int("n_samples", n_samples, low=batch_size)
    epoch = check_int("epoch", epoch, low=0)
    seed = check_int("seed", seed, low=0)
    order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed + epoch))
    n_batches = n_samples // batch_size
    return list(order[: n_batches * batch_size].view(n_batches, batch_size))


# --------------------------------------------------------------------------- launching


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

    Attributes:
        rank: the rank that failed first (a killed process comes before the ranks
            whose collectives then broke).
        failures: ``{rank: description}`` for every rank that failed.
    """

    def __init__(self, text: str, *, rank: int | None, failures: Mapping[int, str]) -> None:
        super().__init__(text)
        self.rank = rank
        self.failures = dict(failures)


class JobTimeoutError(JobFailedError, TimeoutError):
    """The job ran past its timeout and was stopped."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pick_backend(backend: str | None, nprocs: int) -> str:
    if backend is None:
        # NCCL needs one GPU per process; otherwise gloo (CPU) works everywhere.
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return "nccl" if gpus >= nprocs else "gloo"
    return check_choice("backend", backend, ("gloo", "nccl"))


# What the forkserver imports once, before it forks any rank: this module (torch with it),
# and torch._dynamo, which torch.optim imports lazily on the first optimizer a process
# creates. Without it every rank of every job pays that import again (about a second
# per rank on an idle machine, several on a busy one). Importing it starts no thread.
_FORKSERVER_PRELOAD = (__name__, "torch._dynamo")


def _pick_start_method(start_method: str | None) -> str:
    if start_method is not None:
        return check_choice("start_method", start_method, tuple(mp.get_all_start_methods()))
    # A plain fork copies this process, whose autograd threads or CUDA context break the
    # children. forkserver forks them from a clean server that imported torch once, so
    # it is safe and, after the first job, fast; spawn is the fallback where it is missing.
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def _rank_device() -> torch.device:
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


@contextmanager
def _process_group(backend: str, timeout: float) -> Iterator[None]:
    """Join the process group described by the environment; always leave it cleanly."""
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=timeout))
    try:
        yield
        dist.barrier()  # nobody tears down while another rank still talks to it
    finally:
        dist.destroy_process_group()


def _run_rank(
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    rank: int,
    world_size: int,
    port: int,
    backend: str,
    timeout: float,
    report_dir: str,
) -> None:
    """Body of one launched process: join the group, run ``fn``, report, leave."""
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
    report = Path(report_dir) / f"rank{rank}"
    code = 0
    try:
        with _process_group(backend, timeout):
            try:
                value = fn(*args, **kwargs)
            except BaseException as error:
                _report_error(report, error)  # before leaving the group breaks the others
                raise
        _write_report(report.with_suffix(".ok"), value)
    except BaseException as error:  # report every failure to the launcher, then exit non-zero
        if not report.with_suffix(".err").exists():
            _report_error(report, error)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip inherited atexit handlers (the parent's, under fork)


def _report_error(report: Path, error: BaseException) -> None:
    description = f"{type(error).__name__}: {error}".strip()
    value = {"time": time.time(), "error": description, "traceback": traceback.format_exc()}
    _write_report(report.with_suffix(".err"), value)


def _write_report(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(value, f)
    os.replace(tmp, path)


def _describe_exit(rank: int, exitcode: int | None, report_dir: Path) -> tuple[float, str]:
    """``(sort key, description)`` of a failed rank; killed ranks sort first."""
    err = report_dir / f"rank{rank}.err"
    if err.exists():
        with open(err, "rb") as f:
            report = pickle.load(f)
        return report["time"], f"rank {rank} failed with {report['error']}"
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return float("-inf"), f"rank {rank} was killed by signal {name} (exit code {exitcode})"
    return float("-inf"), f"rank {rank} exited with code {exitcode} without a report"


def _stop(processes: Sequence[Any], grace: float = 1.0) -> None:
    """Terminate every process still running (SIGTERM, then SIGKILL) and reap all."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


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
    others at a barrier and leaves the group, on every exit path. The launcher
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
    context = mp.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(list(_FORKSERVER_PRELOAD))
    kwargs = dict(kwargs or {})
    port = _free_port()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="companion-job-") as tmp:
        report_dir = Path(tmp)
        processes = [
            context.Process(
                target=_run_rank,
                args=(fn, tuple(args), kwargs, rank, nprocs, port, backend, timeout, tmp),
                name=f"companion-rank{rank}",
                daemon=True,
            )
            for rank in range(nprocs)
        ]
        try:
            for p in processes:
                p.start()
            pids = [int(p.pid) for p in processes]
            _watch(processes, report_dir, start=start, timeout=timeout)
        finally:
            _stop(processes)
        results = []
        for rank in range(nprocs):
            with open(report_dir / f"rank{rank}.ok", "rb") as f:
                results.append(pickle.load(f))
    return LaunchResult(results, backend, port, pids, time.monotonic() - start)


def _watch(processes: Sequence[Any], report_dir: Path, *, start: float, timeout: float) -> None:
    """Return when every process exited 0; raise as soon as one fails or time runs out."""
    while True:
        codes = [p.exitcode for p in processes]
        failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            time.sleep(0.2)  # let ranks whose collectives just broke write their reports
            codes = [p.exitcode for p in processes]
            failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
            found = sorted(_describe_exit(r, codes[r], report_dir) + (r,) for r in failed)
            failures = {r: text for _, text, r in found}
            first = found[0][2]
            others = "; ".join(text for _, text, _ in found[1:])
            raise JobFailedError(
                f"The job failed: {failures[first]}."
                + (f" Then {others}." if others else "")
                + f" All {len(processes)} processes were stopped after "
                f"{time.monotonic() - start:.1f} s.",
                rank=first,
                failures=failures,
            )
        if all(code == 0 for code in codes):
            return
        if time.monotonic() - start > timeout:
            running = [rank for rank, code in enumerate(codes) if code is None]
            raise JobTimeoutError(
                f"The job did not finish within {timeout:g} s; ranks {running} were still "
                "running and were stopped.",
                rank=None,
                failures={r: "still running at the timeout" for r in running},
            )
        time.sleep(0.02)


# --------------------------------------------------------------------------- status and checkpoints


@dataclass
class RankResult:
    """What a job function returns on one rank.

    Attributes:
        rank: this process's rank.
        role: ``"chief"``, ``"worker"``, ``"ps"`` or ``"evaluator"``.
        state_dict: the final weights (trainers; on CPU), else ``None``.
        losses: mean training loss per epoch (chief: over all trainers' shards).
        checkpoints: file names the chief wrote, or the evaluator evaluated, in order.
        val_losses: the evaluator's validation loss for each checkpoint it evaluated.
        log: the lines this rank logged.
    """

    rank: int
    role: str
    state_dict: dict[str, torch.Tensor] | None = None
    losses: list[float] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(value)), encoding="utf-8")
    os.replace(tmp, path)  # readers see the old or the new status, never half of one


def read_status(job_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The chief's latest status report for the job in ``job_dir``, or ``None`` if none yet.

    The report holds ``state`` (``"running"``, ``"succeeded"`` or ``"failed"``), the
    last finished ``epoch``, its ``loss``, the ``checkpoints`` written so far and, on
    failure, the ``error``.
    """
    path = Path(job_dir) / "status.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def latest_checkpoint(job_dir: str | os.PathLike) -> Path | None:
    """The chief's most recent checkpoint in ``job_dir/checkpoints``, or ``None``."""
    paths = sorted((Path(job_dir) / "checkpoints").glob(_CHECKPOINT_GLOB))
    return paths[-1] if paths else None


class _Chief:
    """The chief's coordination duties: log, checkpoint, report status."""

    def __init__(self, job_dir: str | os.PathLike | None, epochs: int, log: list[str]) -> None:
        self.job_dir = Path(job_dir) if job_dir is not None else None
        self.status: dict[str, Any] = {"state": "running", "epoch": 0, "epochs": epochs, "checkpoints": []}
        self.log = log

    def report(self, **changes: Any) -> None:
        self.status.update(changes)
        if self.job_dir is not None:
            _write_json(self.job_dir / "status.json", self.status)

    def epoch_done(self, epoch: int, loss: float, model: nn.Module, optimizer: Any, losses: list[float]) -> None:
        self.log.append(f"[chief] epoch {epoch}/{self.status['epochs']}: train loss {loss:.4f}")
        if self.job_dir is not None:
            path = self.job_dir / "checkpoints" / f"epoch-{epoch:04d}.pt"
            save_checkpoint(path, model, optimizer, epoch=epoch, extra={"losses": list(losses)})
            self.status["checkpoints"].append(path.name)
        self.report(epoch=epoch, loss=loss)


def _require_group() -> tuple[int, int]:
    if not dist.is_initialized():
        raise RuntimeError(
            "Expected a torch.distributed process group, but got none: run this job function "
            "with companion.distributed.launch(...) or under torchrun."
        )
    return dist.get_rank(), dist.get_world_size()


def _check_job(model: Any, X: Any, y: Any, loss_fn: Any, epochs: Any, batch_size: Any, lr: Any, seed: Any, n_trainers: int) -> tuple[int, int, float, int]:
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("X", X, floating=True)
    check_tensor("y", y)
    check_same_length("X", X, "y", y)
    check_callable("loss_fn", loss_fn)
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=n_trainers)
    if batch_size % n_trainers:
        raise ValueError(message("batch_size", f"a multiple of the {n_trainers} training ranks", batch_size))
    check_int("len(X)", len(X), low=batch_size)
    lr = check_float("lr", lr, low=0, low_open=True)
    seed = check_int("seed", seed, low=0)
    return epochs, batch_size, lr, seed


def _start_job(roles: list[str], rank: int, chief: _Chief, job_dir: Any) -> None:
    """Chief reports 'running' before anyone starts, so no rank reads a stale status."""
    if "evaluator" in roles and job_dir is None:
        raise ValueError(message("job_dir", "a folder (the evaluator reads checkpoints there)", None))
    if rank == 0:
        chief.report()
    dist.barrier()


# --------------------------------------------------------------------------- data-parallel (all-reduce)


def train_ddp(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float = 0.0,
    seed: int = 0,
    job_dir: str | os.PathLike | None = None,
    val_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    resume: bool = False,
    crash_at: tuple[int, int] | None = None,
) -> RankResult:
    """Data-parallel SGD with ``DistributedDataParallel``; run on every rank (see :func:`launch`).

    Roles: rank 0 is the chief, the others workers, and with ``val_data`` the last
    rank is the evaluator (:func:`run_evaluator`). Each training rank takes its slice
    of every global batch (:func:`global_batches`); DDP all-reduces the gradients, so
    ``n`` ranks take the same steps as one process on the same global batches. The
    chief writes a checkpoint per epoch to ``job_dir/checkpoints/epoch-XXXX.pt``.
    Each rank reseeds its own generator with ``seed + epoch * world_size + rank``
    each epoch: ranks draw different random numbers (dropout), and a resumed run
    draws the same ones as an uninterrupted run.

    Args:
        model: the initial model (the same on every rank); it is copied, not changed.
        X: training features ``(N, ...)``, a float tensor.
        y: training targets ``(N, ...)``.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar mean loss.
        epochs: number of epochs, an int >= 1.
        batch_size: rows per global batch, a multiple of the number of training ranks.
        lr: SGD learning rate, a float > 0.
        momentum: SGD momentum, a float in [0, 1).
        seed: base seed, an int >= 0.
        job_dir: folder for checkpoints and ``status.json`` (required with ``val_data``
            or ``resume``).
        val_data: ``(X_val, y_val)``; when given, the last rank is the evaluator.
        resume: start from the chief's latest checkpoint in ``job_dir``, if any.
        crash_at: ``(rank, epoch)``: that rank kills itself (SIGKILL) halfway through
            that epoch, to simulate a machine failure.

    Returns:
        This rank's :class:`RankResult` (the chief's ``losses`` cover every epoch,
        including those before a resume).

    Example:
        >>> from companion.data import make_regression
        >>> X, y = make_regression(64, 3)
        >>> job = launch(train_ddp, nprocs=2, args=(nn.Linear(3, 1), X, y.unsqueeze(1)),
        ...              kwargs=dict(loss_fn=nn.MSELoss(), epochs=2, batch_size=16, lr=0.1))
        >>> [r.role for r in job.results]
        ['chief', 'worker']
    """
    rank, world = _require_group()
    roles = assign_roles(world, evaluator=val_data is not None)
    trainers = [r for r, role in enumerate(roles) if role in _TRAINERS]
    epochs, batch_size, lr, seed = _check_job(model, X, y, loss_fn, epochs, batch_size, lr, seed, len(trainers))
    momentum = check_float("momentum", momentum, low=0, high=1, high_open=True)
    if resume and job_dir is None:
        raise ValueError(message("job_dir", "a folder to resume from", None))
    # Every rank must create every group, in the same order, even ranks outside it.
    group = dist.new_group(trainers) if len(trainers) < world else None
    log: list[str] = []
    chief = _Chief(job_dir, epochs, log)
    _start_job(roles, rank, chief, job_dir)
    if roles[rank] == "evaluator":
        X_val, y_val = val_data  # type: ignore[misc]
        return run_evaluator(model, X_val, y_val, loss_fn=loss_fn, job_dir=job_dir, rank=rank)

    device = _rank_device()
    model = copy.deepcopy(model).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses: list[float] = []
    start_epoch = 1
    latest = latest_checkpoint(job_dir) if resume else None
    if latest is not None:
        info = load_checkpoint(latest, model, optimizer, map_location=device)
        start_epoch, losses = info["epoch"] + 1, list(info["extra"]["losses"])
        log.append(f"[{roles[rank]} {rank}] resumed from {latest.name}")
    ddp = DistributedDataParallel(model, process_group=group, device_ids=[device.index] if device.type == "cuda" else None)
    shard, n_shards = trainers.index(rank), len(trainers)
    try:
        for epoch in range(start_epoch, epochs + 1):
            torch.manual_seed(seed + epoch * world + rank)
            batches = global_batches(len(X), batch_size=batch_size, epoch=epoch, seed=seed)
            total = torch.zeros(2, device=device)  # (sum of losses * rows, rows)
            for step, batch in enumerate(batches):
                if crash_at == (rank, epoch) and step == len(batches) // 2:
                    _crash()
                local = batch[shard::n_shards]
                xb, yb = X[local].to(device), y[local].to(device)
                loss = loss_fn(ddp(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # DDP averages the gradients over the training ranks here
                optimizer.step()
                total += torch.stack([loss.detach() * len(local), torch.tensor(float(len(local)), device=device)])
            dist.all_reduce(total, group=group)
            losses.append(float(total[0] / total[1]))
            if rank == 0:
                chief.epoch_done(epoch, losses[-1], model, optimizer, losses)
    except BaseException as error:
        if rank == 0:
            chief.report(state="failed", error=f"{type(error).__name__}: {error}")
        raise
    if rank == 0:
        chief.report(state="succeeded")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return RankResult(rank, roles[rank], state, losses, list(chief.status["checkpoints"]), log=log)


def _crash() -> None:
    """Die at once, as a machine that loses power would (no cleanup, no report)."""
    sys.stdout.flush()
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


# --------------------------------------------------------------------------- parameter servers


def train_parameter_server(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    parameter_servers: int = 1,
    seed: int = 0,
    job_dir: str | os.PathLike | None = None,
    val_data: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> RankResult:
    """Asynchronous SGD with parameter servers; run on every rank (see :func:`launch`).

    The flattened parameters are split into ``parameter_servers`` contiguous parts,
    one per server. Each training rank (chief and workers) pulls the parameters,
    computes the gradient of its slice of a global batch and pushes it to the
    servers, which apply it at once (``p -= lr * g``) and send back the new
    parameters. Servers do not wait for all workers, so a worker's gradient may be a
    few updates old (asynchronous training): runs converge but do not repeat bit for
    bit. Messages are point-to-point (``torch.distributed`` send/recv over gloo; the
    servers keep the parameters in CPU memory). When all workers are done, the servers
    send the final parameters to the chief, which writes the last checkpoint.

    Args:
        model: the initial model (the same on every rank).
        X: training features ``(N, ...)``, a float tensor.
        y: training targets ``(N, ...)``.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar mean loss.
        epochs: passes over the data per training rank, an int >= 1.
        batch_size: rows per global batch, a multiple of the number of training ranks.
        lr: the servers' SGD learning rate, a float > 0.
        parameter_servers: number of server ranks, an int >= 1.
        seed: base seed, an int >= 0.
        job_dir: folder for checkpoints and ``status.json``.
        val_data: ``(X_val, y_val)``; when given, the last rank is the evaluator.

    Returns:
        This rank's :class:`RankResult`; the chief's ``state_dict`` holds the final
        parameters, a server's ``log`` how many updates it applied.

    Example:
        >>> from companion.data import make_regression
        >>> X, y = make_regression(64, 3)
        >>> job = launch(train_parameter_server, nprocs=3, args=(nn.Linear(3, 1), X, y.unsqueeze(1)),
        ...              kwargs=dict(loss_fn=nn.MSELoss(), epochs=2, batch_size=16, lr=0.1))
        >>> [r.role for r in job.results]
        ['chief', 'worker', 'ps']
    """
    rank, world = _require_group()
    parameter_servers = check_int("parameter_servers", parameter_servers, low=1)
    roles = assign_roles(world, parameter_servers=parameter_servers, evaluator=val_data is not None)
    trainers = [r for r, role in enumerate(roles) if role in _TRAINERS]
    servers = [r for r, role in enumerate(roles) if role == "ps"]
    epochs, batch_size, lr, seed = _check_job(model, X, y, loss_fn, epochs, batch_size, lr, seed, len(trainers))
    # Any-source receives need gloo; under NCCL the messages use an extra gloo group.
    comm = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    log: list[str] = []
    chief = _Chief(job_dir, epochs, log)
    _start_job(roles, rank, chief, job_dir)
    role = roles[rank]
    if role == "evaluator":
        X_val, y_val = val_data  # type: ignore[misc]
        return run_evaluator(model, X_val, y_val, loss_fn=loss_fn, job_dir=job_dir, rank=rank)

    model = copy.deepcopy(model)
    flat = parameters_to_vector(model.parameters()).detach()
    parts = [p.clone() for p in torch.tensor_split(flat, parameter_servers)]
    if role == "ps":
        index = servers.index(rank)
        updates = _serve(parts[index], trainers=trainers, lr=lr, comm=comm)
        log.append(f"[ps {rank}] applied {updates} updates to {len(parts[index])} parameters")
        return RankResult(rank, role, log=log)

    torch.manual_seed(seed + rank)
    shard, n_shards = trainers.index(rank), len(trainers)
    losses: list[float] = []
    try:
        _exchange(None, parts, servers, comm)  # the servers' initial parameters
        vector_to_parameters(torch.cat(parts), model.parameters())
        for epoch in range(1, epochs + 1):
            total, rows = 0.0, 0
            for batch in global_batches(len(X), batch_size=batch_size, epoch=epoch, seed=seed):
                local = batch[shard::n_shards]
                loss = loss_fn(model(X[local]), y[local])
                model.zero_grad(set_to_none=True)
                loss.backward()
                grad = parameters_to_vector(p.grad for p in model.parameters())
                _exchange(torch.tensor_split(grad, parameter_servers), parts, servers, comm)
                vector_to_parameters(torch.cat(parts), model.parameters())
                total, rows = total + float(loss.detach()) * len(local), rows + len(local)
            losses.append(total / rows)
            if rank == 0 and epoch < epochs:
                chief.epoch_done(epoch, losses[-1], model, None, losses)
        # Say 'done'; the chief also receives the final parameters once all are done.
        _exchange([torch.zeros(len(p)) for p in parts], parts, servers, comm, done=True, pull=rank == 0)
        if rank == 0:
            vector_to_parameters(torch.cat(parts), model.parameters())
            chief.epoch_done(epochs, losses[-1], model, None, losses)
    except BaseException as error:
        if rank == 0:
            chief.report(state="failed", error=f"{type(error).__name__}: {error}")
        raise
    if rank == 0:
        chief.report(state="succeeded")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return RankResult(rank, role, state, losses, list(chief.status["checkpoints"]), log=log)


def _exchange(
    grads: Sequence[torch.Tensor] | None, parts: list[torch.Tensor], servers: list[int], comm: Any,
    *, done: bool = False, pull: bool = True,
) -> None:
    """Push a gradient part to each server (or 'done'), and pull each server's parameters.

    A message is the gradient part plus a last element: 1 for a gradient, 0 for done.
    All receives are posted before waiting on any send: a server's reply can then
    always land, so no cycle of blocked sends between servers and workers can form.
    """
    flag = torch.tensor([0.0 if done else 1.0])
    # no messages on a pull-only exchange; kept alive until sent
    messages = [torch.cat([g.detach().float(), flag]) for g in grads or ()]
    requests = [dist.isend(m, dst=server, group=comm) for m, server in zip(messages, servers, strict=False)]
    if pull:
        requests += [dist.irecv(part, src=server, group=comm) for part, server in zip(parts, servers, strict=True)]
    for request in requests:
        request.wait()


def _serve(params: torch.Tensor, *, trainers: list[int], lr: float, comm: Any) -> int:
    """A parameter server's loop: apply each gradient as it arrives and reply; return the count."""
    for trainer in trainers:
        dist.send(params, dst=trainer, group=comm)
    message_buffer = torch.zeros(len(params) + 1)
    active, updates = len(trainers), 0
    while active:
        sender = dist.recv(message_buffer, group=comm)  # from whichever worker is first
        if message_buffer[-1] == 0:
            active -= 1
            continue
        params -= lr * message_buffer[:-1]
        updates += 1
        dist.send(params, dst=sender, group=comm)
    dist.send(params, dst=trainers[0], group=comm)  # the final parameters go to the chief
    return updates


# --------------------------------------------------------------------------- evaluator


def run_evaluator(
    model: nn.Module,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    job_dir: str | os.PathLike,
    rank: int = 0,
    poll_interval: float = 0.05,
    timeout: float = 60.0,
) -> RankResult:
    """Evaluate every checkpoint the chief writes in ``job_dir``, as it appears.

    The evaluator polls ``job_dir/checkpoints``, evaluates each new ``epoch-*.pt`` in
    order on ``(X_val, y_val)``, and stops once the chief's status is no longer
    ``"running"`` and every checkpoint the status lists has been evaluated. Needs no
    process group: it only reads files, so it can run anywhere that sees ``job_dir``.

    Args:
        model: a model of the checkpoints' architecture (copied; weights replaced).
        X_val: validation features ``(M, ...)``.
        y_val: validation targets ``(M, ...)``.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar mean loss.
        job_dir: the job's folder.
        rank: this process's rank, for the result.
        poll_interval: seconds between looks, a float > 0.
        timeout: seconds to wait for the chief to finish, a float > 0.

    Returns:
        A :class:`RankResult` with ``checkpoints`` (names evaluated, in order) and
        ``val_losses``.

    Raises:
        TimeoutError: the chief did not finish within ``timeout`` seconds.
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("X_val", X_val, floating=True)
    check_tensor("y_val", y_val)
    check_same_length("X_val", X_val, "y_val", y_val)
    check_callable("loss_fn", loss_fn)
    poll_interval = check_float("poll_interval", poll_interval, low=0, low_open=True)
    timeout = check_float("timeout", timeout, low=0, low_open=True)
    folder = Path(job_dir) / "checkpoints"
    model = copy.deepcopy(model).eval()
    result = RankResult(rank, "evaluator")
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(job_dir)  # read before listing: a finished status lists every file
        for path in sorted(folder.glob(_CHECKPOINT_GLOB)):
            if path.name in result.checkpoints:
                continue
            info = load_checkpoint(path, model)
            with torch.no_grad():
                val_loss = float(loss_fn(model(X_val), y_val))
            result.checkpoints.append(path.name)
            result.val_losses.append(val_loss)
            result.log.append(f"[evaluator] {path.name} (epoch {info['epoch']}): validation loss {val_loss:.4f}")
        if status is not None and status["state"] != "running":
            if set(status["checkpoints"]) <= set(result.checkpoints):
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"The evaluator waited {timeout:g} s for the chief to finish the job in {str(job_dir)!r}."
            )
        time.sleep(poll_interval)


# --------------------------------------------------------------------------- torchrun entry point


def _demo_job(args: argparse.Namespace) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    from companion.data import make_classification, split, standardize

    X, y = make_classification(args.samples, 8, 3, class_sep=1.5, seed=args.seed)
    (X_train, y_train), (X_val, y_val) = split(X, y, fractions=(0.8, 0.2), seed=args.seed)
    X_train, X_val = standardize(X_train, X_val)
    torch.manual_seed(args.seed)  # the same initial weights on every machine
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    return model, (X_train, y_train, X_val, y_val)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``torchrun ... -m companion.distributed``: train a demo classifier.

    Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` from the
    environment (torchrun sets them), joins the process group, runs
    :func:`train_ddp` or :func:`train_parameter_server` and leaves the group. The
    chief prints the log and the status. Returns the exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m companion.distributed", description=main.__doc__)
    parser.add_argument("--mode", choices=("ddp", "ps"), default="ddp")
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parameter-servers", type=int, default=1)
    parser.add_argument("--evaluator", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    model, (X, y, X_val, y_val) = _demo_job(args)
    common = dict(
        loss_fn=nn.CrossEntropyLoss(), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, job_dir=args.job_dir, val_data=(X_val, y_val) if args.evaluator else None,
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    with _process_group(_pick_backend(None, int(os.environ.get("LOCAL_WORLD_SIZE", world))), args.timeout):
        if args.mode == "ddp":
            result = train_ddp(model, X, y, resume=args.resume, **common)
        else:
            result = train_parameter_server(model, X, y, parameter_servers=args.parameter_servers, **common)
    for line in result.log:
        print(line, flush=True)
    if result.rank == 0:
        print(json.dumps(read_status(args.job_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
