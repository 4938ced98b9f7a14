"""The torchrun entry point: ``torchrun ... -m companion.distributed`` trains a demo classifier.

torchrun starts this module on every rank of every machine and sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`main` joins the process
group, runs :func:`~companion.distributed.ddp.train_ddp` or
:func:`~companion.distributed.parameter_server.train_parameter_server` and leaves.
See the package's docstring for the command lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import torch
from torch import nn

from companion.data import make_gaussian_blobs, split, standardize
from companion.distributed.ddp import train_ddp
from companion.distributed.job import read_status
from companion.distributed.launch import process_group
from companion.distributed.parameter_server import train_parameter_server

__all__ = ["main"]


def _demo_job(args: argparse.Namespace) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    X, y = make_gaussian_blobs(args.samples, 8, 3, class_sep=1.5, seed=args.seed)
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
    parser.add_argument("--job-dir", required=True,
                        help="a new folder, or with --resume the folder of this same job")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parameter-servers", type=int, default=1)
    parser.add_argument("--evaluator", action="store_true")
    parser.add_argument("--resume", action="store_true", help="continue the job in --job-dir (ddp)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a collective may wait, and the evaluator for the chief to finish")
    args = parser.parse_args(argv)
    model, (X, y, X_val, y_val) = _demo_job(args)
    common = dict(
        loss_fn=nn.CrossEntropyLoss(), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, job_dir=args.job_dir, val_data=(X_val, y_val) if args.evaluator else None,
    )
    with process_group(timeout=args.timeout):
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
