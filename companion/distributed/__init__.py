"""A training cluster on ``torch.distributed``: chief, workers, parameter servers, evaluator.

Every process runs the same job function; its **role** follows from its rank and
the world size (:func:`assign_roles`), as in a cloud training job:

* the **chief** (rank 0) trains its shard like a worker and also coordinates: it
  logs, writes atomic checkpoints (only the chief writes them) and reports the job's
  status in ``<job_dir>/status.json`` (:mod:`~companion.distributed.job`);
* **workers** train on their shard of every global batch (:func:`global_batches`);
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

Across machines, ``torchrun`` starts the same code (``python -m companion.distributed``,
:mod:`companion.distributed.__main__`). On the first machine (10.0.0.1), then on the
second, with the job folder on storage both machines see::

    torchrun --nnodes=2 --nproc-per-node=2 --node-rank=0 \\
        --master-addr=10.0.0.1 --master-port=29500 \\
        -m companion.distributed --mode ddp --job-dir /mnt/shared/job --evaluator
    torchrun --nnodes=2 --nproc-per-node=2 --node-rank=1 \\
        --master-addr=10.0.0.1 --master-port=29500 \\
        -m companion.distributed --mode ddp --job-dir /mnt/shared/job --evaluator

On one machine: ``torchrun --standalone --nproc-per-node=3 -m companion.distributed
--mode ps --parameter-servers 1 --job-dir /tmp/job``.
"""

from companion.distributed.ddp import train_ddp
from companion.distributed.evaluator import run_evaluator
from companion.distributed.job import RankResult, latest_checkpoint, read_status
from companion.distributed.launch import (
    JobFailedError,
    JobTimeoutError,
    LaunchResult,
    launch,
    process_group,
)
from companion.distributed.parameter_server import train_parameter_server
from companion.distributed.roles import ROLES, assign_roles, global_batches

__all__ = [
    "ROLES",
    "JobFailedError",
    "JobTimeoutError",
    "LaunchResult",
    "RankResult",
    "assign_roles",
    "global_batches",
    "latest_checkpoint",
    "launch",
    "process_group",
    "read_status",
    "run_evaluator",
    "train_ddp",
    "train_parameter_server",
]
