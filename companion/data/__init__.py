"""Offline data: tensors and loaders, generated tables, shifting data, images, bundled sets.

Nothing here downloads anything. Generators take a ``seed`` and return the same
tensors every time they are called with it.

* :mod:`~companion.data.tensors`: ``TensorData``, ``split``, ``standardize``, ``make_loader``.
* :mod:`~companion.data.tabular`: tables with a known truth (regression, Gaussian
  blobs, counts, categories, related tasks).
* :mod:`~companion.data.shifts`: a drifting stream and data with slices that differ.
* :mod:`~companion.data.images`: shapes with exact object masks.
* :mod:`~companion.data.bundled`: scikit-learn's bundled digits and breast-cancer data.
* :mod:`~companion.data.fairness`: a table with a sensitive attribute and a proxy for it.
* :mod:`~companion.data.reviews`: a toy review language from a grammar, with several labelling tasks.
* :mod:`~companion.data.text`: generated documents and sentences (topics, negation).

Example:
    >>> from companion.data import make_gaussian_blobs, make_loader, split
    >>> (X_train, y_train), (X_test, y_test) = split(*make_gaussian_blobs(100), seed=0)
    >>> len(X_train), len(X_test), len(make_loader(X_train, y_train, batch_size=16))
    (80, 20, 5)
"""

from companion.data.bundled import load_breast_cancer, load_digits
from companion.data.fairness import make_group_classification
from companion.data.images import SHAPE_CLASSES, make_shapes
from companion.data.reviews import decode_reviews, make_reviews
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
from companion.data.text import NEGATION_WORDS, make_negation_sentences, make_topic_documents

__all__ = [
    "NEGATION_WORDS",
    "SHAPE_CLASSES",
    "TensorData",
    "decode_reviews",
    "load_breast_cancer",
    "load_digits",
    "make_categorical",
    "make_counts",
    "make_drifting_stream",
    "make_gaussian_blobs",
    "make_group_classification",
    "make_loader",
    "make_negation_sentences",
    "make_regression",
    "make_reviews",
    "make_related_tasks",
    "make_shapes",
    "make_sliced_chunks",
    "make_sliced_classification",
    "make_topic_documents",
    "split",
    "standardize",
]
