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
    for world_size, per_rank, width in ((1, 12, 0), (2, 12, 0), (3, 12, 0), (4, 5, 0), (3, 4, 2)):
        rows = torch.arange(100, 100 + per_rank * world_size)
        batch = rows if not width else torch.stack([rows] * width, dim=1)  # (B,) or (B, width)
        shards = [answer(batch.clone(), rank, world_size) for rank in range(world_size)]
        if not all(isinstance(s, torch.Tensor) for s in shards):
            return "return a tensor of rows (a slice of `batch`)."
        if any(s.shape[1:] != batch.shape[1:] for s in shards):
            return f"for a batch of shape {tuple(batch.shape)} return whole rows, of shape (rows, *batch.shape[1:])."
        taken = [int(row) for s in shards for row in (s if not width else s[:, 0])]
        if len(taken) > len(batch) or len(set(taken)) < len(taken):
            return f"with {world_size} ranks some rows go to two ranks (or twice to one)."
        missing = sorted(set(rows.tolist()) - set(taken))
        if missing:
            if missing == [int(rows[0])]:
                return "the first row is taken by no rank: ranks count from 0 to world_size - 1."
            if {len(s) for s in shards} == {world_size} != {per_rank}:
                return (
                    f"each rank took {world_size} rows (world_size) where it should take "
                    f"len(batch) // world_size = {per_rank}."
                )
            return f"with {world_size} ranks some rows of the batch are taken by no rank."
        if len({len(s) for s in shards}) != 1:
            return "the shards differ in size: DDP's gradient average then no longer equals the batch mean."
    return None
