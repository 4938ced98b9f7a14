"""Data with a sensitive attribute and a proxy for it: the raw material of a fairness check.

:func:`make_group_classification` labels rows with one linear rule, except that each
group's log-odds are shifted by its own offset (its base rate differs: the world differs,
or the historical labels recorded biased decisions; the data cannot tell which). Every
row carries its group as one-hot columns (the sensitive attribute) and a
"neighbourhood" that matches the group with a set probability (a proxy feature, like a
postcode), so a model can learn the group's offset from the proxy even when the
attribute itself is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from companion._validation import check_float, check_int, message
from companion.data._common import as_list, numbered, seeded_generator
from companion.data.tensors import TensorData

__all__ = ["make_group_classification"]


def _per_group(name: str, values: Sequence[float], n_groups: int, **bounds: float | bool) -> list[float]:
    """``values``, one float per group, each checked with ``check_float(name, value, **bounds)``."""
    values = as_list(name, values, f"a sequence with one float per group ({n_groups})")
    if len(values) != n_groups:
        raise ValueError(message(name, f"one float per group ({n_groups})", tuple(values)))
    return [check_float(name, value, **bounds) for value in values]  # type: ignore[arg-type]


def make_group_classification(
    n_samples: int = 4000,
    *,
    groups: Sequence[str] = ("A", "B"),
    shares: Sequence[float] = (0.5, 0.5),
    offsets: Sequence[float] = (0.0, -1.0),
    proxy_agreement: float = 0.9,
    label_noise: float = 0.5,
    n_features: int = 3,
    seed: int = 0,
    rule_seed: int = 0,
) -> tuple[TensorData, np.ndarray]:
    """Binary labels whose base rate differs by group, with the group and a proxy for it as features.

    Each row belongs to group ``g``, drawn with probabilities ``shares``. Its
    ``n_features`` numeric features ``x`` are N(0, I) in every group, and its label is
    ``y = [x @ w + offsets[g] + label_noise * e > 0]`` with ``e ~ N(0, 1)`` and one unit
    vector ``w`` (from ``rule_seed``), so group ``g``'s share of positives is
    ``Phi(offsets[g] / sqrt(1 + label_noise**2))``. Its neighbourhood is its own group's
    index with probability ``proxy_agreement`` and otherwise one of the other indices,
    uniformly: ``1 / len(groups)`` makes the neighbourhood independent of the group, 1
    makes it a copy. With equal offsets the groups are generated identically.

    Args:
        n_samples: number of rows, an int >= 1.
        groups: distinct group names, at least two.
        shares: probability of each group, each in (0, 1], summing to 1.
        offsets: per group, a shift of the label's log-odds scale, finite floats.
        proxy_agreement: probability that a row's neighbourhood matches its group, a
            float in [1 / len(groups), 1].
        label_noise: standard deviation of the noise added to the score before
            thresholding, a float >= 0 (0: the label is a function of ``x`` and group).
        n_features: numeric features per row, an int >= 1.
        seed: random seed of the rows, an int >= 0.
        rule_seed: random seed of ``w``, an int >= 0: sets drawn with one
            ``rule_seed`` and different ``seed`` follow the same rule.

    Returns:
        ``(data, group_of_row)``: ``TensorData`` with float32 ``X`` of shape
        ``(n_samples, n_features + 2 * len(groups))`` (the numeric features ``x0, ...``,
        then one-hot columns ``group=<name>``, then one-hot columns
        ``neighbourhood=<i>``) and int64 labels ``y`` in {0, 1}, and a NumPy array with
        each row's group name (the sensitive feature of a fairness metric).

    Example:
        >>> data, group = make_group_classification(8, n_features=2)
        >>> tuple(data.X.shape), data.feature_names[2:]
        ((8, 6), ['group=A', 'group=B', 'neighbourhood=0', 'neighbourhood=1'])
        >>> sorted(set(group)) <= ["A", "B"], data.y.dtype
        (True, torch.int64)
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    n_features = check_int("n_features", n_features, low=1)
    requirement = "a sequence of at least two distinct group names"
    names = [str(name) for name in as_list("groups", groups, requirement)]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(message("groups", requirement, tuple(groups)))
    k = len(names)
    p = torch.tensor(_per_group("shares", shares, k, low=0, high=1, low_open=True))
    if abs(float(p.sum()) - 1.0) > 1e-6:
        raise ValueError(message("shares", "shares summing to 1", tuple(shares)))
    shift = torch.tensor(_per_group("offsets", offsets, k))
    agreement = check_float("proxy_agreement", proxy_agreement, low=1 / k, high=1)
    label_noise = check_float("label_noise", label_noise, low=0)
    w = torch.randn(n_features, generator=seeded_generator(rule_seed, name="rule_seed"))
    w = w / w.norm()
    g = seeded_generator(seed)
    X = torch.randn(n_samples, n_features, generator=g)
    group = torch.multinomial(p, n_samples, replacement=True, generator=g)
    y = X @ w + shift[group] + label_noise * torch.randn(n_samples, generator=g) > 0
    # A neighbourhood other than the row's group: one of the k - 1 others, uniformly.
    other = (group + torch.randint(1, k, (n_samples,), generator=g)) % k
    neighbourhood = torch.where(torch.rand(n_samples, generator=g) < agreement, group, other)
    one_hot = torch.nn.functional.one_hot
    data = TensorData(
        torch.cat([X, one_hot(group, k).float(), one_hot(neighbourhood, k).float()], dim=1),
        y.long(),
        numbered("x", n_features) + [f"group={name}" for name in names] + numbered("neighbourhood=", k),
        ["0", "1"],
    )
    return data, np.asarray(names)[group.numpy()]
