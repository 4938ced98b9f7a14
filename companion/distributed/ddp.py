"""Data-parallel training with all-reduce: PyTorch's DistributedDataParallel, checkpointed by the chief.

Every training rank holds the whole model and takes its slice of every global batch;
DDP averages the gradients among the ranks, so no parameter server is needed and
``n`` ranks take the same steps as one process on the same global batches.
"""

from __future__ import annotations

import copy
import os
import signal
import sys
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from companion._validation import check_float, message
from companion.checkpoint import load_checkpoint
from companion.distributed.evaluator import run_evaluator
from companion.distributed.job import RankResult, latest_checkpoint, start_job

__all__ = ["train_ddp"]


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
    chief writes a checkpoint per epoch to ``job_dir/checkpoints/epoch-XXXX.pt``; the
    folder must be new, or this same job's to resume it (:meth:`Job.check_folder`).
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
        val_data: ``(X_val, y_val)``; when given, the last rank is the evaluator, which
            waits for the chief as long as the job may run (the process group's timeout).
        resume: continue the job in ``job_dir`` from the chief's latest checkpoint, if
            any; the folder must hold this same job (same settings, initial model and
            data; ``crash_at`` aside) or nothing.
        crash_at: ``(rank, epoch)``: that rank kills itself (SIGKILL) halfway through
            that epoch, to simulate a machine failure.

    Returns:
        This rank's :class:`RankResult` (the chief's ``losses`` cover every epoch,
        including those before a resume).

    Example:
        >>> from companion.data import make_regression
        >>> from companion.distributed.launch import launch
        >>> X, y = make_regression(64, 3)
        >>> job = launch(train_ddp, nprocs=2, args=(nn.Linear(3, 1), X, y.unsqueeze(1)),
        ...              kwargs=dict(loss_fn=nn.MSELoss(), epochs=2, batch_size=16, lr=0.1))
        >>> [r.role for r in job.results]
        ['chief', 'worker']
    """
    momentum = check_float("momentum", momentum, low=0, high=1, high_open=True)
    if resume and job_dir is None:
        raise ValueError(message("job_dir", "a folder to resume from", None))
    job = start_job(
        model, X, y, loss_fn=loss_fn, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        job_dir=job_dir, evaluator=val_data is not None, settings={"training": "ddp", "momentum": momentum},
        resume=resume,
    )
    # Every rank must create every group, in the same order, even ranks outside it.
    world_size = len(job.roles)
    group = dist.new_group(job.trainers) if len(job.trainers) < world_size else None
    if job.role == "evaluator":
        X_val, y_val = val_data  # type: ignore[misc]
        return run_evaluator(model, X_val, y_val, loss_fn=loss_fn, job_dir=job_dir, rank=job.rank,
                             timeout=job.timeout)

    device = _rank_device()
    model = copy.deepcopy(model).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=job.lr, momentum=momentum)
    losses: list[float] = []
    start_epoch = 1
    latest = latest_checkpoint(job_dir) if resume else None
    if latest is not None:
        info = load_checkpoint(latest, model, optimizer, map_location=device)
        start_epoch, losses = info["epoch"] + 1, list(info["extra"]["losses"])
        job.log.append(f"[{job.role} {job.rank}] resumed from {latest.name}")
    ddp = DistributedDataParallel(
        model, process_group=group, device_ids=[device.index] if device.type == "cuda" else None
    )
    with job.reporting():
        for epoch in range(start_epoch, job.epochs + 1):
            torch.manual_seed(job.seed + epoch * world_size + job.rank)
            batches = job.rows(len(X), epoch=epoch)
            total = torch.zeros(2, device=device)  # (sum of losses * rows, rows)
            for step, rows in enumerate(batches):
                if crash_at == (job.rank, epoch) and step == len(batches) // 2:
                    _crash()
                loss = loss_fn(ddp(X[rows].to(device)), y[rows].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # DDP averages the gradients over the training ranks here
                optimizer.step()
                total += torch.stack([loss.detach() * len(rows), torch.tensor(float(len(rows)), device=device)])
            dist.all_reduce(total, group=group)
            losses.append(float(total[0] / total[1]))
            job.epoch_done(epoch, losses, model, optimizer)
    return job.result(model, losses)


def _rank_device() -> torch.device:
    """The GPU :func:`~companion.distributed.launch.process_group` gave this rank under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _crash() -> None:
    """Die at once, as a machine that loses power would (no cleanup, no report)."""
    sys.stdout.flush()
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
