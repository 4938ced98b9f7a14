"""Offline data: generators, the data sets bundled with scikit-learn, splits and loaders.

Nothing here downloads anything. Generators take a ``seed`` and return the same
tensors every time they are called with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from companion._validation import (
    check_float,
    check_int,
    check_same_length,
    check_tensor,
    message,
)

__all__ = [
    "make_categorical",
    "make_related_tasks",
    "TensorData",
    "make_regression",
    "make_classification",
    "make_counts",
    "make_shapes",
    "load_digits",
    "load_breast_cancer",
    "split",
    "standardize",
    "make_loader",
    "SHAPE_CLASSES",
    "make_drifting_stream",
    "make_sliced_chunks",
    "make_sliced_classification",
]


@dataclass
class TensorData:
    """Features and targets as tensors, with names. Unpacks as ``X, y = data``.

    Attributes:
        X: features, shape ``(N, ...)``.
        y: targets, shape ``(N,)``.
        feature_names: one name per feature column (tabular data only).
        target_names: one name per class (classification only).
    """

    X: torch.Tensor
    y: torch.Tensor
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.X, self.y))

    def __len__(self) -> int:
        return len(self.y)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(check_int("seed", seed, low=0))


def make_regression(
    n_samples: int = 200,
    n_features: int = 1,
    *,
    noise: float = 0.1,
    seed: int = 0,
) -> TensorData:
    """Linear data ``y = X @ w + b + noise`` with known weights.

    Weights are drawn from N(0, 1) and the bias is 0.5; features are N(0, 1).

    Args:
        n_samples: number of rows, an int >= 1.
        n_features: number of features, an int >= 1.
        noise: standard deviation of the Gaussian noise, a float >= 0.
        seed: random seed.

    Returns:
        ``TensorData`` with ``X`` of shape ``(n_samples, n_features)`` and ``y`` of
        shape ``(n_samples,)``, both float32.

    Example:
        >>> X, y = make_regression(10, 3)
        >>> tuple(X.shape), tuple(y.shape)
        ((10, 3), (10,))
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    n_features = check_int("n_features", n_features, low=1)
    noise = check_float("noise", noise, low=0)
    g = _generator(seed)
    X = torch.randn(n_samples, n_features, generator=g)
    w = torch.randn(n_features, generator=g)
    y = X @ w + 0.5 + noise * torch.randn(n_samples, generator=g)
    return TensorData(X, y, [f"x{i}" for i in range(n_features)])


def make_classification(
    n_samples: int = 200,
    n_features: int = 2,
    n_classes: int = 2,
    *,
    class_sep: float = 2.0,
    seed: int = 0,
) -> TensorData:
    """Gaussian blobs, one per class, with centres ``class_sep`` apart on average.

    Args:
        n_samples: number of rows, an int >= n_classes.
        n_features: number of features, an int >= 1.
        n_classes: number of classes, an int >= 2.
        class_sep: scale of the class centres; larger is easier, a float > 0.
        seed: random seed.

    Returns:
        ``TensorData`` with float32 ``X`` of shape ``(n_samples, n_features)`` and
        int64 labels ``y`` in ``[0, n_classes)``, classes in equal shares.

    Example:
        >>> X, y = make_classification(12, 2, 3)
        >>> sorted(y.unique().tolist())
        [0, 1, 2]
    """
    n_classes = check_int("n_classes", n_classes, low=2)
    n_samples = check_int("n_samples", n_samples, low=n_classes)
    n_features = check_int("n_features", n_features, low=1)
    class_sep = check_float("class_sep", class_sep, low=0, low_open=True)
    g = _generator(seed)
    centres = class_sep * torch.randn(n_classes, n_features, generator=g)
    y = torch.arange(n_samples) % n_classes
    y = y[torch.randperm(n_samples, generator=g)]
    X = centres[y] + torch.randn(n_samples, n_features, generator=g)
    return TensorData(
        X, y, [f"x{i}" for i in range(n_features)], [f"class {c}" for c in range(n_classes)]
    )


def make_counts(
    n_samples: int = 500,
    coef: Sequence[float] = (0.5, -0.3),
    *,
    intercept: float = 1.0,
    seed: int = 0,
) -> TensorData:
    """Count data from a Poisson model: ``y ~ Poisson(exp(intercept + X @ coef))``.

    Args:
        n_samples: number of rows, an int >= 1.
        coef: true log-rate coefficients, one per feature.
        intercept: true log-rate at ``X = 0``.
        seed: random seed.

    Returns:
        ``TensorData`` with float32 ``X`` of shape ``(n_samples, len(coef))`` drawn
        from N(0, 1) and float32 counts ``y`` of shape ``(n_samples,)``.

    Example:
        >>> X, y = make_counts(100)
        >>> bool((y >= 0).all()) and bool(torch.equal(y, y.round()))
        True
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    if len(coef) == 0:
        raise ValueError(message("coef", "a non-empty sequence of floats", coef))
    w = torch.tensor([check_float(f"coef[{i}]", c) for i, c in enumerate(coef)])
    intercept = check_float("intercept", intercept)
    g = _generator(seed)
    X = torch.randn(n_samples, len(w), generator=g)
    rate = torch.exp(intercept + X @ w)
    y = torch.poisson(rate, generator=g)
    return TensorData(X, y, [f"x{i}" for i in range(len(w))])


SHAPE_CLASSES = ("circle", "square", "triangle")


def make_shapes(
    n_samples: int = 300,
    *,
    size: int = 32,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Colour images of one shape each (circle, square or triangle) with exact object masks.

    Each image has a random background colour, one shape of another random colour at
    a random position and scale, and Gaussian pixel noise. The mask marks the
    object's pixels, so attributions can be scored against ground truth.

    Args:
        n_samples: number of images, an int >= 1.
        size: height and width in pixels, an int >= 16.
        noise: standard deviation of the pixel noise, a float >= 0.
        seed: random seed.

    Returns:
        ``(images, labels, masks)``: float32 images ``(N, 3, size, size)`` in
        ``[0, 1]``, int64 labels ``(N,)`` indexing :data:`SHAPE_CLASSES`, and bool
        masks ``(N, size, size)``.

    Example:
        >>> images, labels, masks = make_shapes(6, size=16)
        >>> tuple(images.shape), tuple(masks.shape)
        ((6, 3, 16, 16), (6, 16, 16))
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    size = check_int("size", size, low=16)
    noise = check_float("noise", noise, low=0)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    images = np.empty((n_samples, 3, size, size), dtype=np.float32)
    masks = np.empty((n_samples, size, size), dtype=bool)
    labels = np.arange(n_samples) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    for i, label in enumerate(labels):
        radius = rng.uniform(0.18, 0.32) * size
        cy, cx = rng.uniform(radius + 1, size - radius - 1, size=2)
        dy, dx = rows - cy, cols - cx
        if SHAPE_CLASSES[label] == "circle":
            mask = dy**2 + dx**2 <= radius**2
        elif SHAPE_CLASSES[label] == "square":
            half = radius * 0.85
            mask = (np.abs(dy) <= half) & (np.abs(dx) <= half)
        else:  # an upward triangle: below the two slanted edges, above the base
            mask = (dy <= radius * 0.8) & (2 * np.abs(dx) <= dy + radius)
        background, foreground = rng.uniform(0, 1, size=(2, 3))
        while np.abs(background - foreground).sum() < 0.9:  # keep the object visible
            foreground = rng.uniform(0, 1, size=3)
        image = np.where(mask, foreground[:, None, None], background[:, None, None])
        image = image + noise * rng.standard_normal(image.shape)
        images[i] = np.clip(image, 0.0, 1.0)
        masks[i] = mask
    return torch.from_numpy(images), torch.from_numpy(labels).long(), torch.from_numpy(masks)


def load_digits(*, as_images: bool = False) -> TensorData:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes).

    Args:
        as_images: return ``X`` as ``(N, 1, 8, 8)`` images instead of ``(N, 64)`` rows.

    Returns:
        ``TensorData`` with float32 pixels scaled to ``[0, 1]`` and int64 labels.

    Example:
        >>> X, y = load_digits()
        >>> tuple(X.shape), float(X.max())
        ((1797, 64), 1.0)
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    X = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    if as_images:
        X = X.reshape(-1, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.long)
    return TensorData(X, y, [f"pixel {i}" for i in range(64)], [str(d) for d in range(10)])


def load_breast_cancer() -> TensorData:
    """scikit-learn's bundled Wisconsin breast-cancer data (569 rows, 30 features).

    Returns:
        ``TensorData`` with float32 raw features (standardize them with
        :func:`standardize` fitted on the training split) and int64 labels
        (1 = benign, 0 = malignant, as in scikit-learn).

    Example:
        >>> data = load_breast_cancer()
        >>> tuple(data.X.shape), data.target_names
        ((569, 30), ['malignant', 'benign'])
    """
    from sklearn.datasets import load_breast_cancer as sk_load

    bunch = sk_load()
    return TensorData(
        torch.tensor(bunch.data, dtype=torch.float32),
        torch.tensor(bunch.target, dtype=torch.long),
        [str(name) for name in bunch.feature_names],
        [str(name) for name in bunch.target_names],
    )


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
        fractions: share of rows in each part; each in (0, 1), summing to 1.
        seed: random seed for the shuffle.

    Returns:
        One ``(X_part, y_part)`` pair per fraction; the last part takes the rounding
        remainder.

    Example:
        >>> X, y = make_regression(100)
        >>> [len(p[0]) for p in split(X, y, fractions=(0.6, 0.2, 0.2))]
        [60, 20, 20]
    """
    check_tensor("X", X)
    check_tensor("y", y)
    n = check_same_length("X", X, "y", y)
    parts = [check_float("fractions", f, low=0, high=1, low_open=True) for f in fractions]
    if not parts or abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(message("fractions", "fractions summing to 1", tuple(fractions)))
    order = torch.randperm(n, generator=_generator(seed))
    bounds = np.round(np.cumsum([0.0, *parts]) * n).astype(int)
    bounds[-1] = n
    return [(X[order[a:b]], y[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def standardize(
    train: torch.Tensor, *others: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Scale columns to mean 0 and std 1 using the statistics of ``train`` only.

    Fitting the scaling on the training split alone keeps validation and test data
    unseen, as serving data will be.

    Args:
        train: training features ``(N, F)``.
        *others: more feature tensors ``(M, F)`` scaled with ``train``'s statistics.

    Returns:
        The scaled tensors, ``train`` first. Constant columns are centred, not divided.

    Example:
        >>> a, b = standardize(torch.tensor([[0.0], [2.0]]), torch.tensor([[4.0]]))
        >>> a.flatten().tolist(), b.flatten().tolist()
        ([-1.0, 1.0], [3.0])
    """
    check_tensor("train", train, ndim=2, floating=True)
    mean = train.mean(dim=0)
    std = train.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    scaled = []
    for i, t in enumerate((train, *others)):
        check_tensor(f"others[{i - 1}]" if i else "train", t, ndim=2, floating=True)
        if t.shape[1] != train.shape[1]:
            raise ValueError(message(f"others[{i - 1}]", f"a tensor with {train.shape[1]} columns", t))
        scaled.append((t - mean) / std)
    return tuple(scaled)


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
        seed: random seed for the shuffle.

    Example:
        >>> X, y = make_regression(10)
        >>> [len(xb) for xb, _ in make_loader(X, y, batch_size=4, shuffle=False)]
        [4, 4, 2]
    """
    check_tensor("X", X)
    check_tensor("y", y)
    check_same_length("X", X, "y", y)
    batch_size = check_int("batch_size", batch_size, low=1)
    return DataLoader(
        TensorDataset(X, y),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=_generator(seed) if shuffle else None,
    )


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
        seed: random seed.

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
    g = _generator(seed)
    batches = []
    for t in range(n_batches):
        angle = torch.tensor(drift * t)
        normal = torch.stack([torch.cos(angle), torch.sin(angle)])
        X = torch.randn(batch_size, 2, generator=g)
        p = torch.sigmoid((X @ normal) / noise)
        y = (torch.rand(batch_size, generator=g) < p).float()
        batches.append(TensorData(X, y, ["x0", "x1"], ["negative", "positive"]))
    return batches


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
    than others. Only one chunk exists in memory at a time.

    Args:
        n_chunks: number of chunks, an int >= 1.
        chunk_size: rows per chunk, an int >= 1.
        n_features: features per row, an int >= 1.
        slices: slice names, one per noise level.
        label_noise: share of flipped labels per slice, each in [0, 0.5].
        seed: random seed; chunk ``i`` is drawn with ``seed + 1 + i``.

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
    names = np.asarray([str(s) for s in slices])
    noise = torch.tensor([check_float("label_noise", v, low=0, high=0.5) for v in label_noise])
    if len(names) != len(noise) or len(names) == 0:
        raise ValueError(message("label_noise", f"one value per slice ({len(names)})", tuple(label_noise)))
    w = torch.randn(n_features, generator=_generator(seed))

    def chunks() -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, np.ndarray]]]:
        for i in range(n_chunks):
            g = _generator(seed + 1 + i)
            X = torch.randn(chunk_size, n_features, generator=g)
            s = torch.randint(len(names), (chunk_size,), generator=g)
            flip = torch.rand(chunk_size, generator=g) < noise[s]
            y = ((X @ w > 0) ^ flip).float()
            yield X, y, {"slice": names[s.numpy()]}

    return chunks()


def make_categorical(
    n_samples: int = 3000,
    *,
    n_categories: int = 500,
    n_factors: int = 4,
    n_outputs: int = 16,
    noise: float = 1.0,
    seed: int = 0,
    world_seed: int = 0,
) -> TensorData:
    """One categorical feature whose categories share hidden factors, with several numeric targets.

    Each category ``c`` (think: a store or a product) has ``n_factors`` hidden traits
    ``z_c ~ N(0, I)``; each row picks a category uniformly and observes
    ``y = z_c @ W + noise * N(0, I)`` with ``W`` of shape ``(n_factors, n_outputs)``.
    An embedding of dimension ``n_factors`` can represent the categories exactly;
    smaller ones underfit, larger ones can memorize noise. The categories' traits and
    ``W`` depend on ``world_seed`` only, so training and validation sets drawn with
    different ``seed`` come from the same distribution.

    Args:
        n_samples: number of rows, an int >= 1.
        n_categories: number of categories, an int >= 2.
        n_factors: hidden traits per category, an int >= 1.
        n_outputs: targets per row, an int >= 1.
        noise: standard deviation of the target noise, a float >= 0.
        seed: random seed of the rows.
        world_seed: random seed of the categories' traits and of ``W``.

    Returns:
        ``TensorData`` with int64 category ids ``X`` of shape ``(n_samples,)`` and
        float32 targets ``y`` of shape ``(n_samples, n_outputs)``.

    Example:
        >>> X, y = make_categorical(10, n_categories=7)
        >>> X.dtype, tuple(y.shape), int(X.max()) < 7
        (torch.int64, (10, 16), True)
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    n_categories = check_int("n_categories", n_categories, low=2)
    n_factors = check_int("n_factors", n_factors, low=1)
    n_outputs = check_int("n_outputs", n_outputs, low=1)
    noise = check_float("noise", noise, low=0)
    world = _generator(world_seed)
    traits = torch.randn(n_categories, n_factors, generator=world)
    W = torch.randn(n_factors, n_outputs, generator=world) / n_factors**0.5
    g = _generator(seed)
    X = torch.randint(0, n_categories, (n_samples,), generator=g)
    y = traits[X] @ W + noise * torch.randn(n_samples, n_outputs, generator=g)
    return TensorData(X, y, ["category"], [])


def make_related_tasks(
    n_samples: int = 1000,
    *,
    task: str = "source",
    seed: int = 0,
    world_seed: int = 1234,
) -> TensorData:
    """Two classification tasks on the same 32 features that depend on the same hidden factors.

    Rows are ``x ~ N(0, I_32)``. Twelve hidden factors ``h = tanh(2 A x / sqrt(32))``
    (a fixed random ``A``) drive both tasks: the ``"source"`` task's label is the
    argmax of 10 fixed random linear scores of ``h`` (10 classes), the
    ``"target"`` task's the argmax of 4 other ones (4 classes). A network trained
    on plenty of source data learns features close to ``h``, which is what makes
    transfer to the target task pay off. ``A`` and the scores depend on
    ``world_seed`` only, so both tasks share one world.

    Args:
        n_samples: number of rows, an int >= 1.
        task: ``"source"`` (10 classes) or ``"target"`` (4 classes).
        seed: random seed of the rows.
        world_seed: random seed of the hidden factors and of both tasks' scores.

    Returns:
        ``TensorData`` with float32 ``X`` of shape ``(n_samples, 32)`` and int64
        labels ``y`` of shape ``(n_samples,)``.

    Example:
        >>> X, y = make_related_tasks(50, task="target")
        >>> tuple(X.shape), int(y.max()) < 4
        ((50, 32), True)
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    if task not in ("source", "target"):
        raise ValueError(message("task", "one of ('source', 'target')", task))
    n_features, n_factors = 32, 12
    world = _generator(world_seed)
    A = torch.randn(n_factors, n_features, generator=world)
    scores = {"source": torch.randn(10, n_factors, generator=world),
              "target": torch.randn(4, n_factors, generator=world)}[task]
    g = _generator(seed)
    X = torch.randn(n_samples, n_features, generator=g)
    h = torch.tanh(2 * X @ A.T / n_features**0.5)
    y = (h @ scores.T).argmax(dim=1)
    return TensorData(X, y, [f"x{i}" for i in range(n_features)],
                      [f"class {c}" for c in range(len(scores))])


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
        slices: slice names.
        shares: probability of each slice, each in (0, 1], summing to 1.
        label_noise: share of flipped labels per slice, each in [0, 0.5].
        flip_rule: per slice, whether its rule is the opposite of the others'.
        offsets: per slice, a shift of the label's log-odds scale, finite floats.
        n_features: numeric features per row, an int >= 1.
        seed: random seed of the rows.
        rule_seed: random seed of ``w``: sets drawn with one ``rule_seed`` and
            different ``seed`` (e.g. training and test sets with different slice
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
    names = [str(name) for name in slices]
    for argument, values in (("shares", shares), ("label_noise", label_noise),
                             ("flip_rule", flip_rule), ("offsets", offsets)):
        if len(values) != len(names) or not names:
            raise ValueError(message(argument, f"one value per slice ({len(names)})", tuple(values)))
    p = torch.tensor([check_float("shares", v, low=0, high=1, low_open=True) for v in shares])
    if abs(float(p.sum()) - 1.0) > 1e-6:
        raise ValueError(message("shares", "shares summing to 1", tuple(shares)))
    noise = torch.tensor([check_float("label_noise", v, low=0, high=0.5) for v in label_noise])
    flip = torch.tensor([bool(v) for v in flip_rule])
    shift = torch.tensor([check_float("offsets", v) for v in offsets])
    w = torch.randn(n_features, generator=_generator(rule_seed))
    g = _generator(seed)
    X = torch.randn(n_samples, n_features, generator=g)
    s = torch.multinomial(p, n_samples, replacement=True, generator=g)
    y = (X @ w + shift[s] > 0) ^ flip[s] ^ (torch.rand(n_samples, generator=g) < noise[s])
    one_hot = torch.nn.functional.one_hot(s, len(names)).float()
    data = TensorData(
        torch.cat([X, one_hot], dim=1),
        y.long(),
        [f"x{i}" for i in range(n_features)] + [f"slice={name}" for name in names],
        ["0", "1"],
    )
    return data, np.asarray(names)[s.numpy()]
