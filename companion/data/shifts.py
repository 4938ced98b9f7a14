"""Data whose distribution is not one: a concept that drifts over time, slices that differ.

:func:`make_drifting_stream` arrives in batches while its decision boundary turns;
:func:`make_sliced_chunks` and :func:`make_sliced_classification` label rows with one
linear rule, except that named slices of the rows differ in size, label noise, rule
or base rate: the subsets that an aggregate metric hides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from companion._validation import check_float, check_instance, check_int, message
from companion.data._common import as_list, numbered, seeded_generator
from companion.data.tensors import TensorData

__all__ = ["make_drifting_stream", "make_sliced_chunks", "make_sliced_classification"]


def make_drifting_stream(
    n_batches: int = 40,
    batch_size: int = 100,
    *,
    drift: float = 0.1,
    noise: float = 0.25,
    seed: int = 0,
) -> list[TensorData]:
    """Binary classification data that arrives in batches while its concept drifts.

    Features are 2-D, drawn from N(0, I). Batch ``t`` labels a point positive when
    it lies on the positive side of a line through the origin whose normal has
    turned by ``drift * t`` radians since the first batch, so a model fitted to the
    early batches grows stale as the boundary rotates. A label is positive with
    probability ``sigmoid(signed distance / noise)``, so points near the boundary
    are uncertain and the task is not perfectly separable.

    Args:
        n_batches: number of batches, an int >= 1.
        batch_size: rows per batch, an int >= 1.
        drift: rotation of the boundary per batch in radians, a float >= 0.
        noise: width of the logistic blur around the boundary, a float > 0.
        seed: random seed, an int >= 0.

    Returns:
        A list of ``n_batches`` :class:`TensorData`, each with float32 ``X``
        ``(batch_size, 2)`` and float32 labels ``y`` ``(batch_size,)`` in ``{0, 1}``.

    Example:
        >>> stream = make_drifting_stream(3, 5)
        >>> len(stream), tuple(stream[0].X.shape), sorted(set(stream[0].y.tolist())) <= [0.0, 1.0]
        (3, (5, 2), True)
    """
    n_batches = check_int("n_batches", n_batches, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    drift = check_float("drift", drift, low=0)
    noise = check_float("noise", noise, low=0, low_open=True)
    g = seeded_generator(seed)
    batches = []
    for t in range(n_batches):
        angle = torch.tensor(drift * t)
        normal = torch.stack([torch.cos(angle), torch.sin(angle)])
        X = torch.randn(batch_size, 2, generator=g)
        p = torch.sigmoid((X @ normal) / noise)
        y = (torch.rand(batch_size, generator=g) < p).float()
        batches.append(TensorData(X, y, numbered("x", 2), ["negative", "positive"]))
    return batches


def _slice_names(slices: Sequence[str]) -> list[str]:
    requirement = "a non-empty sequence of distinct slice names"
    names = [str(name) for name in as_list("slices", slices, requirement)]
    if not names or len(set(names)) != len(names):
        raise ValueError(message("slices", requirement, tuple(slices)))
    return names


def _per_slice(
    name: str, values: Sequence[Any], n_slices: int, check: Callable[[str, Any], Any]
) -> list[Any]:
    """``values``, one per slice, each passed through ``check(name, value)``."""
    values = as_list(name, values, f"a sequence with one value per slice ({n_slices})")
    if len(values) != n_slices:
        raise ValueError(message(name, f"one value per slice ({n_slices})", tuple(values)))
    return [check(name, value) for value in values]


def _share(name: str, value: Any) -> float:
    return check_float(name, value, low=0, high=1, low_open=True)


def _label_noise(name: str, value: Any) -> float:
    return check_float(name, value, low=0, high=0.5)


def _flag(name: str, value: Any) -> bool:
    return bool(check_instance(name, value, (bool, np.bool_), "a bool"))


def make_sliced_chunks(
    n_chunks: int,
    chunk_size: int,
    *,
    n_features: int = 8,
    slices: Sequence[str] = ("web", "ios", "android", "partner"),
    label_noise: Sequence[float] = (0.0, 0.05, 0.1, 0.3),
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, np.ndarray]]]:
    """A large binary-classification data set, generated lazily one chunk at a time.

    Labels follow one fixed linear rule ``y = [X @ w > 0]`` (``w`` from ``seed``);
    each row belongs to a slice (e.g. the platform it came from), and a share
    ``label_noise[s]`` of slice ``s``'s labels is flipped, so some slices are noisier
    than others. Only one chunk exists in memory at a time; the arguments are
    checked when the function is called, before the first chunk is drawn.

    Args:
        n_chunks: number of chunks, an int >= 1.
        chunk_size: rows per chunk, an int >= 1.
        n_features: features per row, an int >= 1.
        slices: distinct slice names, at least one.
        label_noise: share of flipped labels per slice, each in [0, 0.5].
        seed: random seed, an int >= 0; chunk ``i`` is drawn with ``seed + 1 + i``.

    Yields:
        ``(X, y, columns)``: float32 ``X`` ``(chunk_size, n_features)``, float32
        labels ``y`` ``(chunk_size,)`` in {0, 1}, and ``{"slice": array of names}``.

    Example:
        >>> X, y, cols = next(make_sliced_chunks(2, 5))
        >>> tuple(X.shape), sorted(set(cols)), len(cols["slice"])
        ((5, 8), ['slice'], 5)
    """
    n_chunks = check_int("n_chunks", n_chunks, low=1)
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    n_features = check_int("n_features", n_features, low=1)
    names = np.asarray(_slice_names(slices))
    noise = torch.tensor(_per_slice("label_noise", label_noise, len(names), _label_noise))
    w = torch.randn(n_features, generator=seeded_generator(seed))

    def chunks() -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, np.ndarray]]]:
        for i in range(n_chunks):
            g = seeded_generator(seed + 1 + i)
            X = torch.randn(chunk_size, n_features, generator=g)
            s = torch.randint(len(names), (chunk_size,), generator=g)
            flip = torch.rand(chunk_size, generator=g) < noise[s]
            y = ((X @ w > 0) ^ flip).float()
            yield X, y, {"slice": names[s.numpy()]}

    return chunks()


def make_sliced_classification(
    n_samples: int = 2000,
    *,
    slices: Sequence[str] = ("A", "B", "C"),
    shares: Sequence[float] = (0.6, 0.3, 0.1),
    label_noise: Sequence[float] = (0.0, 0.0, 0.0),
    flip_rule: Sequence[bool] = (False, False, False),
    offsets: Sequence[float] = (0.0, 0.0, 0.0),
    n_features: int = 4,
    seed: int = 0,
    rule_seed: int = 0,
) -> tuple[TensorData, np.ndarray]:
    """Binary labels for rows from named slices that can differ in size, noise and rule.

    Every row belongs to one slice, drawn with probabilities ``shares``. The label is
    ``y = [X @ w + offsets[s] > 0]`` for one weight vector ``w`` (``w`` from N(0, 1);
    a positive offset raises the slice's share of positives), except in slices with
    ``flip_rule`` set, where it is ``[X @ w + offsets[s] < 0]`` (a subset that behaves
    differently, which a model learns only from enough of its rows); then a share
    ``label_noise[s]`` of slice ``s``'s labels is flipped at random (a noisier subset).
    ``X`` holds the ``n_features`` numeric features followed by a one-hot column per
    slice, so that a model can tell the slices apart.

    Args:
        n_samples: number of rows, an int >= 1.
        slices: distinct slice names, at least one.
        shares: probability of each slice, each in (0, 1], summing to 1.
        label_noise: share of flipped labels per slice, each in [0, 0.5].
        flip_rule: per slice, a bool: whether its rule is the opposite of the others'.
        offsets: per slice, a shift of the label's log-odds scale, finite floats.
        n_features: numeric features per row, an int >= 1.
        seed: random seed of the rows, an int >= 0.
        rule_seed: random seed of ``w``, an int >= 0: sets drawn with one ``rule_seed``
            and different ``seed`` (e.g. training and test sets with different slice
            shares) follow the same rule.

    Returns:
        ``(data, slice_of_row)``: ``TensorData`` with float32 ``X`` of shape
        ``(n_samples, n_features + len(slices))`` and int64 labels ``y`` in {0, 1},
        and a NumPy array with each row's slice name.

    Example:
        >>> data, where = make_sliced_classification(10, n_features=2)
        >>> tuple(data.X.shape), data.feature_names[2:], sorted(set(where)) <= ["A", "B", "C"]
        ((10, 5), ['slice=A', 'slice=B', 'slice=C'], True)
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    n_features = check_int("n_features", n_features, low=1)
    names = _slice_names(slices)
    p = torch.tensor(_per_slice("shares", shares, len(names), _share))
    if abs(float(p.sum()) - 1.0) > 1e-6:
        raise ValueError(message("shares", "shares summing to 1", tuple(shares)))
    noise = torch.tensor(_per_slice("label_noise", label_noise, len(names), _label_noise))
    flip = torch.tensor(_per_slice("flip_rule", flip_rule, len(names), _flag))
    shift = torch.tensor(_per_slice("offsets", offsets, len(names), check_float))
    w = torch.randn(n_features, generator=seeded_generator(rule_seed, name="rule_seed"))
    g = seeded_generator(seed)
    X = torch.randn(n_samples, n_features, generator=g)
    s = torch.multinomial(p, n_samples, replacement=True, generator=g)
    y = (X @ w + shift[s] > 0) ^ flip[s] ^ (torch.rand(n_samples, generator=g) < noise[s])
    one_hot = torch.nn.functional.one_hot(s, len(names)).float()
    data = TensorData(
        torch.cat([X, one_hot], dim=1),
        y.long(),
        numbered("x", n_features) + [f"slice={name}" for name in names],
        ["0", "1"],
    )
    return data, np.asarray(names)[s.numpy()]
