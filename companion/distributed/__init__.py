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

How the strategies differ: asynchronous servers apply *stale* gradients
(:func:`train_stale_sgd` sets the staleness, the servers measure it); a larger global
batch wants a larger learning rate, reached by a warm-up (:func:`scaled_lr`,
:func:`linear_warmup`, :func:`train_sgd`); a model too big for one device is split
into pipeline stages fed micro-batches (:func:`run_pipeline`, :func:`gpipe_bubble`).

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
from companion.distributed.large_batch import linear_warmup, scaled_lr, train_sgd, warmup_factor
from companion.distributed.launch import (
    JobFailedError,
    JobTimeoutError,
    LaunchResult,
    launch,
    process_group,
)
from companion.distributed.parameter_server import train_parameter_server
from companion.distributed.pipeline import (
    bubble_fraction,
    gpipe_bubble,
    gpipe_timeline,
    measured_bubble,
    run_pipeline,
)
from companion.distributed.roles import ROLES, assign_roles, global_batches
from companion.distributed.staleness import train_stale_sgd

__all__ = [
    "ROLES",
    "JobFailedError",
    "JobTimeoutError",
    "LaunchResult",
    "RankResult",
    "assign_roles",
    "bubble_fraction",
    "global_batches",
    "gpipe_bubble",
    "gpipe_timeline",
    "latest_checkpoint",
    "launch",
    "linear_warmup",
    "measured_bubble",
    "process_group",
    "read_status",
    "run_evaluator",
    "run_pipeline",
    "scaled_lr",
    "train_ddp",
    "train_parameter_server",
    "train_sgd",
    "train_stale_sgd",
    "warmup_factor",
]
