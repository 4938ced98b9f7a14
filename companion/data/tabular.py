"""Generated tables with a known truth: regression, classes, counts, categories, related tasks.

Every generator takes a ``seed`` and returns the same :class:`TensorData` every time
it is called with it; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from companion._validation import check_choice, check_float, check_int, message
from companion.data._common import as_list, numbered, seeded_generator
from companion.data.tensors import TensorData

__all__ = [
    "make_categorical",
    "make_counts",
    "make_gaussian_blobs",
    "make_regression",
    "make_related_tasks",
]


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
        seed: random seed, an int >= 0.

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
    g = seeded_generator(seed)
    X = torch.randn(n_samples, n_features, generator=g)
    w = torch.randn(n_features, generator=g)
    y = X @ w + 0.5 + noise * torch.randn(n_samples, generator=g)
    return TensorData(X, y, numbered("x", n_features))


def make_gaussian_blobs(
    n_samples: int = 200,
    n_features: int = 2,
    n_classes: int = 2,
    *,
    class_sep: float = 2.0,
    seed: int = 0,
) -> TensorData:
    """Classes as Gaussian blobs: one unit-variance blob per class around a random centre.

    Class centres are drawn from ``N(0, class_sep**2 I)``; each row is its class's
    centre plus ``N(0, I)`` noise, and the classes come in equal shares. With one
    shared covariance the Bayes boundary between two classes is a hyperplane. (Not
    scikit-learn's ``make_classification``, which places clusters on hypercube
    vertices and adds redundant features.)

    Args:
        n_samples: number of rows, an int >= n_classes.
        n_features: number of features, an int >= 1.
        n_classes: number of classes, an int >= 2.
        class_sep: scale of the class centres; larger is easier, a float > 0.
        seed: random seed, an int >= 0.

    Returns:
        ``TensorData`` with float32 ``X`` of shape ``(n_samples, n_features)`` and
        int64 labels ``y`` in ``[0, n_classes)``, classes in equal shares.

    Example:
        >>> X, y = make_gaussian_blobs(12, 2, 3)
        >>> tuple(X.shape), torch.bincount(y).tolist()
        ((12, 2), [4, 4, 4])
    """
    n_classes = check_int("n_classes", n_classes, low=2)
    n_samples = check_int("n_samples", n_samples, low=n_classes)
    n_features = check_int("n_features", n_features, low=1)
    class_sep = check_float("class_sep", class_sep, low=0, low_open=True)
    g = seeded_generator(seed)
    centres = class_sep * torch.randn(n_classes, n_features, generator=g)
    y = torch.arange(n_samples) % n_classes
    y = y[torch.randperm(n_samples, generator=g)]
    X = centres[y] + torch.randn(n_samples, n_features, generator=g)
    return TensorData(X, y, numbered("x", n_features), numbered("class ", n_classes))


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
        coef: true log-rate coefficients, one finite float per feature (at least one).
        intercept: true log-rate at ``X = 0``, a finite float.
        seed: random seed, an int >= 0.

    Returns:
        ``TensorData`` with float32 ``X`` of shape ``(n_samples, len(coef))`` drawn
        from N(0, 1) and float32 counts ``y`` of shape ``(n_samples,)``.

    Example:
        >>> X, y = make_counts(100)
        >>> bool((y >= 0).all()) and bool(torch.equal(y, y.round()))
        True
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    requirement = "a non-empty sequence of floats"
    coefficients = as_list("coef", coef, requirement)
    if not coefficients:
        raise ValueError(message("coef", requirement, coef))
    w = torch.tensor([check_float(f"coef[{i}]", c) for i, c in enumerate(coefficients)])
    intercept = check_float("intercept", intercept)
    g = seeded_generator(seed)
    X = torch.randn(n_samples, len(w), generator=g)
    rate = torch.exp(intercept + X @ w)
    y = torch.poisson(rate, generator=g)
    return TensorData(X, y, numbered("x", len(w)))


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
        seed: random seed of the rows, an int >= 0.
        world_seed: random seed of the categories' traits and of ``W``, an int >= 0.

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
    world = seeded_generator(world_seed, name="world_seed")
    traits = torch.randn(n_categories, n_factors, generator=world)
    W = torch.randn(n_factors, n_outputs, generator=world) / n_factors**0.5
    g = seeded_generator(seed)
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
        seed: random seed of the rows, an int >= 0.
        world_seed: random seed of the hidden factors and of both tasks' scores, an int >= 0.

    Returns:
        ``TensorData`` with float32 ``X`` of shape ``(n_samples, 32)`` and int64
        labels ``y`` of shape ``(n_samples,)``.

    Example:
        >>> X, y = make_related_tasks(50, task="target")
        >>> tuple(X.shape), int(y.max()) < 4
        ((50, 32), True)
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    task = check_choice("task", task, ("source", "target"))
    n_features, n_factors = 32, 12
    world = seeded_generator(world_seed, name="world_seed")
    A = torch.randn(n_factors, n_features, generator=world)
    scores = {"source": torch.randn(10, n_factors, generator=world),
              "target": torch.randn(4, n_factors, generator=world)}[task]
    g = seeded_generator(seed)
    X = torch.randn(n_samples, n_features, generator=g)
    h = torch.tanh(2 * X @ A.T / n_features**0.5)
    y = (h @ scores.T).argmax(dim=1)
    return TensorData(X, y, numbered("x", n_features), numbered("class ", len(scores)))
