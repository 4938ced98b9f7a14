"""The course's models: networks, generalized linear models, classifiers and category embeddings.

Every model is an :class:`torch.nn.Module` that :func:`companion.training.fit` can
train, and every model names its output width ``out_features`` (the number of
classes for a classifier). Each model with a natural training loss exposes it as
``model.loss(output, y)``, so that ``fit(model, loader, loss_fn=model.loss, ...)``
trains it the right way.

- :mod:`~companion.models.networks`: :class:`MLP`, :class:`SmallCNN`, :data:`ACTIVATIONS`.
- :mod:`~companion.models.glm`: :class:`LinearRegression`, :class:`LogisticRegression`,
  :class:`PoissonRegression`, each with an exact ``fit(X, y)``.
- :mod:`~companion.models.classifiers`: :class:`SoftmaxClassifier` (one label per
  example), :class:`MultiLabelClassifier` (several).
- :mod:`~companion.models.embedding`: :class:`CategoryEmbeddingModel`,
  :func:`embedding_dim_rule_of_thumb`.

Example:
    >>> from companion.models import MLP
    >>> MLP(4, (8,), 3)(torch.randn(2, 4)).shape
    torch.Size([2, 3])
"""

import torch  # noqa: F401  (for the doctest above)

from companion.models.classifiers import MultiLabelClassifier, SoftmaxClassifier
from companion.models.embedding import CategoryEmbeddingModel, embedding_dim_rule_of_thumb
from companion.models.glm import LinearRegression, LogisticRegression, PoissonRegression
from companion.models.networks import ACTIVATIONS, MLP, SmallCNN
from companion.models.sequence import BagOfWords, GRUClassifier
from companion.models.tiny_transformer import (
    MaskedLanguageModel,
    SequenceClassifier,
    TinyTransformer,
)

__all__ = [
    "BagOfWords",
    "GRUClassifier",
    "MaskedLanguageModel",
    "SequenceClassifier",
    "TinyTransformer",
    "ACTIVATIONS",
    "CategoryEmbeddingModel",
    "LinearRegression",
    "LogisticRegression",
    "MLP",
    "MultiLabelClassifier",
    "PoissonRegression",
    "SmallCNN",
    "SoftmaxClassifier",
    "embedding_dim_rule_of_thumb",
]
