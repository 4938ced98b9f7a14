"""The small real data sets that ship with scikit-learn, as :class:`TensorData` (no download)."""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer as sklearn_load_breast_cancer
from sklearn.datasets import load_digits as sklearn_load_digits

from companion._validation import check_instance
from companion.data._common import numbered
from companion.data.tensors import TensorData

__all__ = ["load_breast_cancer", "load_digits"]


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
    check_instance("as_images", as_images, bool, "a bool")
    bunch = sklearn_load_digits()
    X = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    if as_images:
        X = X.reshape(-1, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.long)
    return TensorData(X, y, numbered("pixel ", 64), numbered("", 10))


def load_breast_cancer() -> TensorData:
    """scikit-learn's bundled Wisconsin breast-cancer data (569 rows, 30 features).

    Returns:
        ``TensorData`` with float32 raw features (standardize them with
        :func:`~companion.data.standardize` fitted on the training split) and int64
        labels (1 = benign, 0 = malignant, as in scikit-learn).

    Example:
        >>> data = load_breast_cancer()
        >>> tuple(data.X.shape), data.target_names
        ((569, 30), ['malignant', 'benign'])
    """
    bunch = sklearn_load_breast_cancer()
    return TensorData(
        torch.tensor(bunch.data, dtype=torch.float32),
        torch.tensor(bunch.target, dtype=torch.long),
        [str(name) for name in bunch.feature_names],
        [str(name) for name in bunch.target_names],
    )
