"""Exercise of notebook 4.4.1 (distributed training): shard a global batch across workers."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._registry import exercise


def _shard_solution(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    return batch[rank::world_size]  # every world_size-th row, starting at this rank


@exercise(
    "4.4.1-shard",
    "Write shard(batch, rank, world_size): the rows of a global batch that training rank `rank` "
    "of `world_size` takes, so that all ranks together take every row exactly once.",
    solution=_shard_solution,
)
def _grade_shard(answer: Callable[[torch.Tensor, int, int], torch.Tensor]) -> str | None:
    for world_size in (1, 2, 3, 4):
        batch = torch.arange(100, 100 + 12 * world_size)
        shards = [answer(batch.clone(), rank, world_size) for rank in range(world_size)]
        if not all(isinstance(s, torch.Tensor) for s in shards):
            return "return a tensor of row values (a slice of `batch`)."
        taken = torch.cat([s.flatten() for s in shards])
        if len(taken) > len(batch) or len(set(taken.tolist())) < len(taken):
            return f"with {world_size} ranks some rows go to two ranks (or twice to one)."
        if sorted(taken.tolist()) != batch.tolist():
            return f"with {world_size} ranks some rows of the batch are taken by no rank."
        if len({len(s) for s in shards}) != 1:
            return "the shards differ in size: DDP's gradient average then no longer equals the batch mean."
    return None
