"""What the data modules share: seeded generators, sequence arguments and numbered names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from companion._validation import check_int, message


def seeded_generator(seed: int, *, name: str = "seed") -> torch.Generator:
    """A fresh :class:`torch.Generator` seeded with ``seed``, an int >= 0 (``name`` is the argument's)."""
    return torch.Generator().manual_seed(check_int(name, seed, low=0))


def as_list(name: str, values: Any, requirement: str) -> list:
    """``values`` as a list; a TypeError in the template when it is not a sequence (a str is not)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(message(name, requirement, values))
    return list(values)


def numbered(prefix: str, n: int) -> list[str]:
    """``n`` names ``prefix0, prefix1, ...``: the default names of columns or classes."""
    return [f"{prefix}{i}" for i in range(n)]
