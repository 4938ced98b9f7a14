"""The evaluator: validate each checkpoint as the chief writes it, while training goes on.

It needs no process group: it only reads the job folder (the chief's status and
checkpoints), so it can run in a job's last rank or anywhere that sees the folder.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable

import torch
from torch import nn

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_same_length,
    check_tensor,
)
from companion.checkpoint import load_checkpoint
from companion.distributed.job import RankResult, checkpoint_paths, read_status

__all__ = ["run_evaluator"]


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
    ``"running"`` and every checkpoint the status lists has been evaluated.

    Args:
        model: a model of the checkpoints' architecture (copied; weights replaced).
        X_val: validation features ``(M, ...)``.
        y_val: validation targets ``(M, ...)``.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar mean loss.
        job_dir: the job's folder.
        rank: this process's rank, for the result.
        poll_interval: seconds between looks, a float > 0.
        timeout: seconds to wait for the chief to finish, a float > 0 (a job's evaluator
            rank waits as long as the job may run: the process group's timeout).

    Returns:
        A :class:`~companion.distributed.job.RankResult` with ``checkpoints`` (names
        evaluated, in order) and ``val_losses``.

    Raises:
        TimeoutError: the chief did not finish within ``timeout`` seconds.

    Example:
        >>> import tempfile
        >>> from companion.distributed.job import Job
        >>> job_dir = tempfile.mkdtemp()
        >>> chief = Job(rank=0, roles=["chief"], epochs=1, batch_size=4, lr=0.1, seed=0, job_dir=job_dir)
        >>> chief.epoch_done(1, [0.5], nn.Linear(2, 1))
        >>> chief.report(state="succeeded")
        >>> result = run_evaluator(nn.Linear(2, 1), torch.zeros(4, 2), torch.zeros(4, 1),
        ...                        loss_fn=nn.MSELoss(), job_dir=job_dir)
        >>> result.log
        ['[evaluator] epoch-0001.pt (epoch 1): validation loss ...']
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("X_val", X_val, floating=True)
    check_tensor("y_val", y_val)
    check_same_length("X_val", X_val, "y_val", y_val)
    check_callable("loss_fn", loss_fn)
    poll_interval = check_float("poll_interval", poll_interval, low=0, low_open=True)
    timeout = check_float("timeout", timeout, low=0, low_open=True)
    model = copy.deepcopy(model).eval()  # a copy: the caller's model keeps its mode and weights
    result = RankResult(rank, "evaluator")
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(job_dir)  # read before listing: a finished status lists every file
        for path in checkpoint_paths(job_dir):
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
