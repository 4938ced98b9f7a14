"""Asynchronous training with parameter servers: workers pull parameters and push gradients.

The servers hold the parameters, split between them; each applies every gradient
part as it arrives and answers with its new parameters. Messages are point-to-point
(``torch.distributed`` send/recv over gloo).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from companion._validation import check_int
from companion.distributed.evaluator import run_evaluator
from companion.distributed.job import RankResult, start_job

__all__ = ["train_parameter_server"]


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
    bit. Each server records the *staleness* of every gradient it applies: how many
    updates (from other workers) it applied between sending that worker the parameters
    and receiving the gradient computed on them (0 with one worker; about ``W - 1``
    with ``W`` workers taking turns). Messages are point-to-point (``torch.distributed`` send/recv over gloo; the
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
        job_dir: folder for checkpoints and ``status.json``, a new one.
        val_data: ``(X_val, y_val)``; when given, the last rank is the evaluator, which
            waits for the chief as long as the job may run (the process group's timeout).

    Returns:
        This rank's :class:`RankResult`; the chief's ``state_dict`` holds the final
        parameters, a server's ``log`` how many updates it applied and its
        ``staleness`` the staleness of each.

    Example:
        >>> from companion.data import make_regression
        >>> from companion.distributed.launch import launch
        >>> X, y = make_regression(64, 3)
        >>> job = launch(train_parameter_server, nprocs=3, args=(nn.Linear(3, 1), X, y.unsqueeze(1)),
        ...              kwargs=dict(loss_fn=nn.MSELoss(), epochs=2, batch_size=16, lr=0.1))
        >>> [r.role for r in job.results]
        ['chief', 'worker', 'ps']
    """
    parameter_servers = check_int("parameter_servers", parameter_servers, low=1)
    job = start_job(
        model, X, y, loss_fn=loss_fn, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        job_dir=job_dir, evaluator=val_data is not None, parameter_servers=parameter_servers,
        settings={"training": "parameter_server", "parameter_servers": parameter_servers},
    )
    # Any-source receives need gloo; under NCCL the messages use an extra gloo group.
    comm = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    if job.role == "evaluator":
        X_val, y_val = val_data  # type: ignore[misc]
        return run_evaluator(model, X_val, y_val, loss_fn=loss_fn, job_dir=job_dir, rank=job.rank,
                             timeout=job.timeout)

    model = copy.deepcopy(model)
    flat = parameters_to_vector(model.parameters()).detach()
    parts = [part.clone() for part in torch.tensor_split(flat, parameter_servers)]
    servers = [rank for rank, role in enumerate(job.roles) if role == "ps"]
    if job.role == "ps":
        index = servers.index(job.rank)
        staleness = _serve(parts[index], trainers=job.trainers, lr=job.lr, comm=comm)
        job.log.append(f"[ps {job.rank}] applied {len(staleness)} updates to {len(parts[index])} parameters")
        return RankResult(job.rank, job.role, log=job.log, staleness=staleness)

    torch.manual_seed(job.seed + job.rank)
    losses: list[float] = []
    with job.reporting():
        _exchange(None, parts, servers, comm)  # the servers' initial parameters
        vector_to_parameters(torch.cat(parts), model.parameters())
        for epoch in range(1, job.epochs + 1):
            total, n_rows = 0.0, 0
            for rows in job.rows(len(X), epoch=epoch):
                loss = loss_fn(model(X[rows]), y[rows])
                model.zero_grad(set_to_none=True)
                loss.backward()
                grad = parameters_to_vector(p.grad for p in model.parameters())
                _exchange(torch.tensor_split(grad, parameter_servers), parts, servers, comm)
                vector_to_parameters(torch.cat(parts), model.parameters())
                total, n_rows = total + float(loss.detach()) * len(rows), n_rows + len(rows)
            losses.append(total / n_rows)
            if epoch < job.epochs:
                job.epoch_done(epoch, losses, model)
        # Say 'done'; the chief also receives the final parameters once all are done.
        done = [torch.zeros(len(part)) for part in parts]
        _exchange(done, parts, servers, comm, done=True, pull=job.rank == 0)
        if job.rank == 0:
            vector_to_parameters(torch.cat(parts), model.parameters())
        job.epoch_done(job.epochs, losses, model)
    return job.result(model, losses)


def _exchange(
    grads: Sequence[torch.Tensor] | None,
    parts: list[torch.Tensor],
    servers: list[int],
    comm: dist.ProcessGroup | None,
    *,
    done: bool = False,
    pull: bool = True,
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


def _serve(
    params: torch.Tensor, *, trainers: list[int], lr: float, comm: dist.ProcessGroup | None
) -> list[int]:
    """A parameter server's loop: apply each gradient as it arrives and reply; return each one's staleness.

    A gradient's staleness is the number of updates applied between the reply that
    sent its worker the parameters and its arrival: a worker computes its next
    gradient on the parameters of the server's last reply to it.
    """
    for trainer in trainers:
        dist.send(params, dst=trainer, group=comm)
    message_buffer = torch.zeros(len(params) + 1)
    active, staleness = len(trainers), []
    sent_version = dict.fromkeys(trainers, 0)  # the update count each worker's parameters carry
    while active:
        sender = dist.recv(message_buffer, group=comm)  # from whichever worker is first
        if message_buffer[-1] == 0:
            active -= 1
            continue
        staleness.append(len(staleness) - sent_version[sender])
        params -= lr * message_buffer[:-1]
        sent_version[sender] = len(staleness)
        dist.send(params, dst=sender, group=comm)
    dist.send(params, dst=trainers[0], group=comm)  # the final parameters go to the chief
    return staleness
