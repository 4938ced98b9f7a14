"""Offline data: tensors and loaders, generated tables, shifting data, images, bundled sets.

Nothing here downloads anything. Generators take a ``seed`` and return the same
tensors every time they are called with it.

* :mod:`~companion.data.tensors`: ``TensorData``, ``split``, ``standardize``, ``make_loader``.
* :mod:`~companion.data.tabular`: tables with a known truth (regression, Gaussian
  blobs, counts, categories, related tasks).
* :mod:`~companion.data.shifts`: a drifting stream and data with slices that differ.
* :mod:`~companion.data.images`: shapes with exact object masks.
* :mod:`~companion.data.bundled`: scikit-learn's bundled digits and breast-cancer data.

Example:
    >>> from companion.data import make_gaussian_blobs, make_loader, split
    >>> (X_train, y_train), (X_test, y_test) = split(*make_gaussian_blobs(100), seed=0)
    >>> len(X_train), len(X_test), len(make_loader(X_train, y_train, batch_size=16))
    (80, 20, 5)
"""

from companion.data.bundled import load_breast_cancer, load_digits
from companion.data.images import SHAPE_CLASSES, make_shapes
from companion.data.shifts import (
    make_drifting_stream,
    make_sliced_chunks,
    make_sliced_classification,
)
from companion.data.tabular import (
    make_categorical,
    make_counts,
    make_gaussian_blobs,
    make_regression,
    make_related_tasks,
)
from companion.data.tensors import TensorData, make_loader, split, standardize

__all__ = [
    "SHAPE_CLASSES",
    "TensorData",
    "load_breast_cancer",
    "load_digits",
    "make_categorical",
    "make_counts",
    "make_drifting_stream",
    "make_gaussian_blobs",
    "make_loader",
    "make_regression",
    "make_related_tasks",
    "make_shapes",
    "make_sliced_chunks",
    "make_sliced_classification",
    "split",
    "standardize",
]
