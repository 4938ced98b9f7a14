"""Who does what in a training job: each rank's role, and the rows each trainer takes of every batch.

Roles follow from the rank and the world size alone (:func:`assign_roles`), so every
process works them out by itself, with no message. The data is divided the same way:
every rank draws the same global batches (:func:`global_batches`) and each training
rank takes its own slice of each.
"""

from __future__ import annotations

import torch

from companion._validation import check_instance, check_int, message

__all__ = ["ROLES", "TRAINERS", "assign_roles", "global_batches"]

ROLES = ("chief", "worker", "ps", "evaluator")
"""Every role a rank can have: the chief (rank 0, trains and coordinates), workers,
parameter servers and the evaluator."""

TRAINERS = ("chief", "worker")
"""The roles that train on a shard of every global batch."""


def assign_roles(world_size: int, *, parameter_servers: int = 0, evaluator: bool = False) -> list[str]:
    """The role of every rank: one chief, then workers, parameter servers, an evaluator.

    Rank 0 is always the chief (it also trains). Parameter servers and the evaluator
    take the highest ranks, so adding them never renumbers the workers.

    Args:
        world_size: number of processes, an int >= 1 + parameter_servers + evaluator.
        parameter_servers: number of parameter-server ranks, an int >= 0.
        evaluator: whether the last rank is the (single) evaluator.

    Returns:
        A list of ``world_size`` role names from :data:`ROLES`.

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
    workers = world_size - needed
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
