"""The skeleton every training job shares: its checks, its roles, and the chief's job folder.

A training job function (data-parallel or with parameter servers) runs on every rank
and begins with :func:`start_job`, which checks the arguments, works out the ranks'
roles and has the chief report that the job runs. The :class:`Job` it returns carries
the chief's duties: it logs each epoch, checkpoints it and reports the job's state in
the job folder, which the evaluator and a restarted job read::

    job_dir/status.json                  the chief's latest report (read_status)
    job_dir/checkpoints/epoch-0001.pt    one checkpoint per epoch (companion.checkpoint)

A job folder holds one job: the status names it (its settings, and digests of its
initial model and its data), and a job starts only in a new folder, or in its own to
resume it, so no evaluator or restart ever reads another run's checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.checkpoint import save_checkpoint
from companion.distributed.launch import group_timeout
from companion.distributed.roles import TRAINERS, assign_roles, global_batches
from companion.utils import atomic_write

__all__ = ["Job", "RankResult", "checkpoint_paths", "latest_checkpoint", "read_status", "start_job"]

_STATUS_FILE = "status.json"
_CHECKPOINTS_FOLDER = "checkpoints"


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
        staleness: a parameter server's record, per update it applied, of how many
            updates old the parameters the gradient was computed on were.
    """

    rank: int
    role: str
    state_dict: dict[str, torch.Tensor] | None = None
    losses: list[float] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    staleness: list[int] = field(default_factory=list)


def read_status(job_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The chief's latest status report for the job in ``job_dir``, or ``None`` if none yet.

    The report holds ``state`` (``"running"``, ``"succeeded"`` or ``"failed"``), the
    last finished ``epoch``, its ``loss``, the ``checkpoints`` written so far and, on
    failure, the ``error``. The chief replaces the file atomically, so a reader never
    sees half of one.

    Example:
        >>> import tempfile
        >>> read_status(tempfile.mkdtemp()) is None
        True
    """
    path = Path(job_dir) / _STATUS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def checkpoint_paths(job_dir: str | os.PathLike) -> list[Path]:
    """The chief's checkpoints in ``job_dir/checkpoints``, oldest first.

    Example:
        >>> import tempfile
        >>> job_dir = Path(tempfile.mkdtemp())
        >>> for epoch in (2, 1):
        ...     _ = save_checkpoint(job_dir / "checkpoints" / f"epoch-{epoch:04d}.pt", nn.Linear(2, 1))
        >>> [path.name for path in checkpoint_paths(job_dir)]
        ['epoch-0001.pt', 'epoch-0002.pt']
    """
    return sorted((Path(job_dir) / _CHECKPOINTS_FOLDER).glob("epoch-*.pt"))


def latest_checkpoint(job_dir: str | os.PathLike) -> Path | None:
    """The chief's most recent checkpoint in ``job_dir/checkpoints``, or ``None``.

    Example:
        >>> import tempfile
        >>> latest_checkpoint(tempfile.mkdtemp()) is None
        True
    """
    paths = checkpoint_paths(job_dir)
    return paths[-1] if paths else None


class Job:
    """One rank's part in a training job: its role, its rows of the data, the chief's duties.

    :func:`start_job` makes it on every rank. On the chief (rank 0),
    :meth:`epoch_done` logs the epoch, writes its checkpoint and reports the status,
    and :meth:`reporting` reports how the job ended; on the other ranks they do nothing.

    Args:
        rank: this process's rank.
        roles: every rank's role (:func:`~companion.distributed.roles.assign_roles`).
        epochs: number of epochs, an int >= 1.
        batch_size: rows per global batch, a multiple of the number of training ranks.
        lr: the learning rate, a float > 0.
        seed: base seed, an int >= 0.
        job_dir: the job's folder, or ``None`` to keep nothing on disk.
        config: what makes the job the one it is (JSON values), which the status names;
            ``None`` on the ranks other than the chief.
        timeout: seconds, a float > 0, that the job may wait for a rank (the evaluator
            for the chief).

    Example:
        >>> job = Job(rank=1, roles=["chief", "worker", "ps"], epochs=1, batch_size=4, lr=0.1, seed=0)
        >>> job.role, job.trainers
        ('worker', [0, 1])
        >>> [rows.tolist() for rows in job.rows(8, epoch=1)]  # its half of each global batch
        [[4, 6], [3, 0]]
    """

    def __init__(
        self,
        *,
        rank: int,
        roles: list[str],
        epochs: int,
        batch_size: int,
        lr: float,
        seed: int,
        job_dir: str | os.PathLike | None = None,
        config: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.rank = rank
        self.roles = roles
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.job_dir = Path(job_dir) if job_dir is not None else None
        self.config = config
        self.timeout = timeout
        self.log: list[str] = []
        self.status: dict[str, Any] = {
            "state": "running", "epoch": 0, "epochs": epochs, "checkpoints": [], "job": config
        }

    @property
    def role(self) -> str:
        """This rank's role."""
        return self.roles[self.rank]

    @property
    def trainers(self) -> list[int]:
        """The ranks that train (the chief and the workers)."""
        return [rank for rank, role in enumerate(self.roles) if role in TRAINERS]

    def rows(self, n_samples: int, *, epoch: int) -> list[torch.Tensor]:
        """This trainer's rows of each global batch of ``epoch`` (:func:`global_batches`)."""
        shard, n_shards = self.trainers.index(self.rank), len(self.trainers)
        batches = global_batches(n_samples, batch_size=self.batch_size, epoch=epoch, seed=self.seed)
        return [batch[shard::n_shards] for batch in batches]

    def check_folder(self, *, resume: bool) -> None:
        """Check that the job folder is new, or this job's own and ``resume`` is set.

        A folder holds one job (its ``status.json`` names it), so that an evaluator
        never evaluates, and a restart never resumes from, the checkpoints of another
        run. A folder without a status or checkpoints is new.

        Raises:
            ValueError: the folder holds another job's run, a run of this job while
                ``resume`` is ``False``, or checkpoints without a status.

        Example:
            >>> import tempfile
            >>> folder = tempfile.mkdtemp()
            >>> chief = Job(rank=0, roles=["chief"], epochs=1, batch_size=4, lr=0.1, seed=0,
            ...             job_dir=folder, config={"lr": 0.1})
            >>> chief.check_folder(resume=False)  # new
            >>> chief.report()
            >>> chief.check_folder(resume=True)  # its own
            >>> chief.check_folder(resume=False)
            Traceback (most recent call last):
            ValueError: Expected `job_dir` to be a new folder, ...: found an earlier run of this job (running, epoch 0 of 1).
        """
        if self.job_dir is None:
            return
        status = read_status(self.job_dir)
        if status is None:
            found = "checkpoints but no status.json" if checkpoint_paths(self.job_dir) else None
        elif not isinstance(status.get("job"), dict):
            found = "the status.json of a job that does not say what it is"
        elif status["job"] != self.config:
            there, here = status["job"], self.config or {}
            differences = "; ".join(f"{key} {there.get(key)} there, {here.get(key)} here"
                                    for key in sorted(there.keys() | here.keys()) if there.get(key) != here.get(key))
            found = f"a run of another job ({differences})"
        elif not resume:
            found = f"an earlier run of this job ({status['state']}, epoch {status['epoch']} of {status['epochs']})"
        else:
            found = None
        if found is not None:
            raise ValueError(message("job_dir", "a new folder, or this job's own to resume it", str(self.job_dir),
                                     found=found))

    def report(self, **changes: Any) -> None:
        """Update the status; the chief writes it to ``job_dir/status.json``."""
        self.status.update(changes)
        if self.rank == 0 and self.job_dir is not None:
            text = json.dumps(self.status).encode("utf-8")
            atomic_write(self.job_dir / _STATUS_FILE, lambda file: file.write(text))

    def epoch_done(
        self,
        epoch: int,
        losses: list[float],
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        """The chief logs ``epoch`` (its loss is ``losses[-1]``), checkpoints it and reports it."""
        if self.rank != 0:
            return
        self.log.append(f"[chief] epoch {epoch}/{self.epochs}: train loss {losses[-1]:.4f}")
        if self.job_dir is not None:
            path = self.job_dir / _CHECKPOINTS_FOLDER / f"epoch-{epoch:04d}.pt"
            save_checkpoint(path, model, optimizer, epoch=epoch, extra={"losses": list(losses)})
            self.status["checkpoints"].append(path.name)
        self.report(epoch=epoch, loss=losses[-1])

    @contextmanager
    def reporting(self) -> Iterator[None]:
        """Around the training: the chief reports ``"failed"`` (and the error) if it raises, else ``"succeeded"``."""
        try:
            yield
        except BaseException as error:
            self.report(state="failed", error=f"{type(error).__name__}: {error}")
            raise
        self.report(state="succeeded")

    def result(self, model: nn.Module, losses: list[float]) -> RankResult:
        """A trainer's :class:`RankResult`: its final weights (on the CPU), losses, checkpoints and log."""
        state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
        return RankResult(self.rank, self.role, state, losses, list(self.status["checkpoints"]), log=self.log)


def start_job(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    job_dir: str | os.PathLike | None,
    evaluator: bool,
    parameter_servers: int = 0,
    settings: Mapping[str, Any] | None = None,
    resume: bool = False,
) -> Job:
    """Start a training job on this rank: check it, assign the roles, report it running.

    Every rank calls it with the same arguments, so a bad one fails on every rank
    alike. The job is named by its settings (``settings``, ``epochs``, ``batch_size``,
    ``lr``, ``seed``, the name of ``loss_fn``) and digests of ``model``'s initial
    state and of the data; the chief claims ``job_dir`` for it (:meth:`Job.check_folder`:
    a new folder, or its own to resume) and every rank fails alike if it may not. The
    chief then reports ``"running"`` before any rank goes on (a barrier), so no rank
    reads the status of an earlier run in the same folder.

    Args:
        model: the initial model.
        X: training features ``(N, ...)``, a float tensor.
        y: training targets ``(N, ...)``.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar mean loss.
        epochs: number of epochs, an int >= 1.
        batch_size: rows per global batch, a multiple of the number of training ranks
            and at most ``N``.
        lr: the learning rate, a float > 0.
        seed: base seed, an int >= 0.
        job_dir: the job's folder (required with an evaluator, which reads it), or ``None``.
        evaluator: whether the last rank is the evaluator.
        parameter_servers: number of parameter-server ranks, an int >= 0.
        settings: the job function's own settings that make the job what it is (JSON
            values, e.g. ``{"training": "ddp", "momentum": 0.9}``).
        resume: whether this run continues the job in ``job_dir`` (else it must be new).

    Returns:
        This rank's :class:`Job`; its ``timeout`` is that of the process group
        (:func:`~companion.distributed.launch.group_timeout`).

    Raises:
        RuntimeError: no ``torch.distributed`` process group is running here.

    Example:
        >>> from companion.distributed.launch import launch
        >>> job = launch(start_job, nprocs=2, args=(nn.Linear(3, 1), torch.randn(8, 3), torch.randn(8, 1)),
        ...              kwargs=dict(loss_fn=nn.MSELoss(), epochs=1, batch_size=4, lr=0.1, seed=0,
        ...                          job_dir=None, evaluator=False, parameter_servers=1))
        >>> [rank_job.role for rank_job in job.results]
        ['chief', 'ps']
    """
    if not dist.is_initialized():
        raise RuntimeError(
            "Expected a torch.distributed process group, but got none: run this job function "
            "with companion.distributed.launch(...) or under torchrun."
        )
    rank, world_size = dist.get_rank(), dist.get_world_size()
    roles = assign_roles(world_size, parameter_servers=parameter_servers, evaluator=evaluator)
    n_trainers = sum(role in TRAINERS for role in roles)
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
    if evaluator and job_dir is None:
        raise ValueError(message("job_dir", "a folder (the evaluator reads checkpoints there)", None))
    check_instance("resume", resume, bool, "a bool")
    config = None
    if rank == 0:  # the chief alone keeps the folder: only it digests the model and the data
        config = {**(settings or {}), "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
                  "loss_fn": getattr(loss_fn, "__qualname__", type(loss_fn).__qualname__),
                  "model": _digest(repr(model), model.state_dict().values()), "data": _digest("", (X, y))}
    job = Job(rank=rank, roles=roles, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, job_dir=job_dir,
              config=config, timeout=group_timeout())
    refusal: list[str | None] = [None]
    if rank == 0:
        try:
            job.check_folder(resume=resume)
        except ValueError as error:
            refusal[0] = str(error)
    dist.broadcast_object_list(refusal, src=0)
    if refusal[0] is not None:
        raise ValueError(refusal[0])
    job.report()
    dist.barrier()
    return job


def _digest(text: str, tensors: Iterable[torch.Tensor]) -> str:
    """16 hex digits of the SHA-256 of ``text`` and of each tensor's dtype, shape and values."""
    digest = hashlib.sha256(text.encode("utf-8"))
    for tensor in tensors:
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{flat.dtype} {tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
