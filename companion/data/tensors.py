"""Data as tensors: the ``TensorData`` container, splits, standardization and seeded loaders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from companion._validation import (
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.data._common import as_list, seeded_generator

__all__ = ["TensorData", "make_loader", "split", "standardize"]


@dataclass
class TensorData:
    """Features and targets as tensors, with names. Unpacks as ``X, y = data``.

    Attributes:
        X: features, shape ``(N, ...)``.
        y: targets, shape ``(N, ...)``.
        feature_names: one name per feature column (tabular data only).
        target_names: one name per class (classification only).

    Raises:
        TypeError: ``X`` or ``y`` is not a tensor.
        ValueError: ``X`` or ``y`` has no rows dimension, or their lengths differ.

    Example:
        >>> data = TensorData(torch.zeros(4, 2), torch.tensor([0, 1, 1, 0]), ["a", "b"])
        >>> X, y = data
        >>> len(data), tuple(X.shape), data.feature_names
        (4, (4, 2), ['a', 'b'])
    """

    X: torch.Tensor
    y: torch.Tensor
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name, value in (("X", self.X), ("y", self.y)):
            check_tensor(name, value, non_empty=False)
            if value.ndim == 0:
                raise ValueError(message(name, "a tensor with one row per example", value))
        check_same_length("X", self.X, "y", self.y)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.X, self.y))

    def __len__(self) -> int:
        return len(self.y)


def split(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    fractions: Sequence[float] = (0.8, 0.2),
    seed: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffle rows and cut them into parts, e.g. train/validation/test.

    Args:
        X: features, shape ``(N, ...)``.
        y: targets, shape ``(N, ...)``.
        fractions: share of rows in each part; each in (0, 1], summing to 1.
        seed: random seed for the shuffle, an int >= 0.

    Returns:
        One ``(X_part, y_part)`` pair per fraction; the last part takes the rounding
        remainder.

    Example:
        >>> X = torch.arange(100.0).unsqueeze(1)
        >>> [len(part_X) for part_X, _ in split(X, X[:, 0], fractions=(0.6, 0.2, 0.2))]
        [60, 20, 20]
    """
    check_tensor("X", X)
    check_tensor("y", y)
    n = check_same_length("X", X, "y", y)
    requirement = "a sequence of fractions summing to 1"
    parts = [
        check_float("fractions", f, low=0, high=1, low_open=True)
        for f in as_list("fractions", fractions, requirement)
    ]
    if not parts or abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(message("fractions", "fractions summing to 1", tuple(fractions)))
    order = torch.randperm(n, generator=seeded_generator(seed))
    bounds = np.round(np.cumsum([0.0, *parts]) * n).astype(int)
    bounds[-1] = n
    return [(X[order[a:b]], y[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def standardize(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Scale columns to mean 0 and std 1 using the statistics of ``train`` only.

    Fitting the scaling on the training split alone keeps validation and test data
    unseen, as serving data will be.

    Args:
        train: training features ``(N, F)``, floating point.
        *others: more feature tensors ``(M, F)`` scaled with ``train``'s statistics.

    Returns:
        The scaled tensors, ``train`` first. Constant columns are centred, not divided.

    Example:
        >>> a, b = standardize(torch.tensor([[0.0], [2.0]]), torch.tensor([[4.0]]))
        >>> a.flatten().tolist(), b.flatten().tolist()
        ([-1.0, 1.0], [3.0])
    """
    check_tensor("train", train, ndim=2, floating=True)
    for i, other in enumerate(others):
        check_tensor(f"others[{i}]", other, ndim=2, floating=True)
        if other.shape[1] != train.shape[1]:
            raise ValueError(message(f"others[{i}]", f"a tensor with {train.shape[1]} columns", other))
    mean = train.mean(dim=0)
    std = train.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple((t - mean) / std for t in (train, *others))


def make_loader(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
) -> DataLoader:
    """A :class:`~torch.utils.data.DataLoader` over ``(X, y)`` whose shuffle is seeded.

    Args:
        X: features, shape ``(N, ...)``.
        y: targets, shape ``(N, ...)``.
        batch_size: rows per batch, an int >= 1.
        shuffle: reshuffle every epoch (with a generator seeded by ``seed``).
        seed: random seed for the shuffle, an int >= 0.

    Example:
        >>> X = torch.arange(10.0).unsqueeze(1)
        >>> [len(xb) for xb, _ in make_loader(X, X[:, 0], batch_size=4, shuffle=False)]
        [4, 4, 2]
    """
    check_tensor("X", X)
    check_tensor("y", y)
    check_same_length("X", X, "y", y)
    batch_size = check_int("batch_size", batch_size, low=1)
    check_instance("shuffle", shuffle, bool, "a bool")
    generator = seeded_generator(seed)
    return DataLoader(
        TensorDataset(X, y),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
    )
