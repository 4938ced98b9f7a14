"""Baselines a model must beat: the most common label, the mean, the best single feature.

A baseline is the simplest sensible predictor for a task. Before trusting a
model, compare it with one: a network that cannot beat "always predict the
majority class" has learnt nothing useful, and added complexity is only worth
keeping when it beats the simpler model (claims E14–E15 of the course).

Each baseline follows scikit-learn's estimator shape on tensors: ``fit(X, y)``
returns the baseline itself, ``predict(X)`` returns one prediction per row, and
fitted attributes end in an underscore. They are checked against
:class:`sklearn.dummy.DummyClassifier`, :class:`sklearn.dummy.DummyRegressor`,
:class:`sklearn.linear_model.LinearRegression` and
:class:`sklearn.linear_model.LogisticRegression` in the test suite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import log_loss, mean_squared_error

from companion._validation import (
    as_tensor,
    check_choice,
    check_float,
    check_int,
    check_same_length,
    check_tensor,
    message,
)

__all__ = ["MostCommonLabel", "MeanRegressor", "BestSingleFeature"]


def _rows(name: str, X: Any) -> torch.Tensor:
    """``X`` as a tensor with at least one dimension (rows first)."""
    X = as_tensor(name, X)
    return check_tensor(name, X, ndim=tuple(range(1, 9)))


def _labels(y: Any) -> torch.Tensor:
    """Class labels: a 1-D integer tensor."""
    y = check_tensor("y", as_tensor("y", y), ndim=1)
    if y.is_floating_point() or y.dtype == torch.bool:
        if y.dtype == torch.bool or torch.equal(y, y.round()):
            return y.long()
        raise ValueError(message("y", "integer class labels", y))
    return y


def _fitted(estimator: Any, attribute: str) -> None:
    """Raise scikit-learn's :class:`NotFittedError` (a ``ValueError``) before ``fit`` ran."""
    if not hasattr(estimator, attribute):
        name = type(estimator).__name__
        raise NotFittedError(message(f"{name}.{attribute}", "set by `fit(X, y)` before predicting", None))


class MostCommonLabel:
    """Classification baseline: always predict the most frequent class of the training labels.

    Ties go to the smallest label, as in scikit-learn. :meth:`predict_proba` returns
    the class frequencies seen in training for every row (scikit-learn's
    ``DummyClassifier(strategy="prior")``).

    Attributes:
        classes_: the sorted distinct labels seen in ``fit``, shape ``(C,)``.
        class_prior_: each class's share of the training labels, shape ``(C,)``.
        label_: the most common label (a 0-dim tensor).

    Example:
        >>> baseline = MostCommonLabel().fit(torch.zeros(5, 2), torch.tensor([0, 1, 1, 2, 1]))
        >>> baseline.predict(torch.zeros(3, 2)).tolist()
        [1, 1, 1]
        >>> baseline.class_prior_.tolist()
        [0.2, 0.6, 0.2]
        >>> tuple(baseline.predict_proba(torch.zeros(4, 2)).shape)
        (4, 3)
    """

    def fit(self, X: Any, y: Any) -> MostCommonLabel:
        """Count the labels.

        Args:
            X: features ``(N, ...)``; only their number of rows is used.
            y: integer class labels ``(N,)``.

        Returns:
            ``self``.
        """
        X = _rows("X", X)
        y = _labels(y)
        check_same_length("X", X, "y", y)
        self.classes_, counts = torch.unique(y, sorted=True, return_counts=True)
        self.class_prior_ = counts.double() / counts.sum()
        self.label_ = self.classes_[torch.argmax(counts)]  # first maximum: the smallest label
        return self

    def predict(self, X: Any) -> torch.Tensor:
        """The most common label for every row of ``X`` ``(N, ...)``; returns ``(N,)``."""
        _fitted(self, "label_")
        X = _rows("X", X)
        return self.label_.expand(len(X)).clone()

    def predict_proba(self, X: Any) -> torch.Tensor:
        """The training class frequencies for every row of ``X``; returns ``(N, C)`` float32."""
        _fitted(self, "class_prior_")
        X = _rows("X", X)
        return self.class_prior_.float().expand(len(X), -1).clone()


class MeanRegressor:
    """Regression baseline: always predict the mean of the training targets.

    Attributes:
        mean_: the training targets' mean, shape ``()`` for ``y`` of shape ``(N,)``
            or ``(K,)`` for ``(N, K)`` targets.

    Example:
        >>> baseline = MeanRegressor().fit(torch.zeros(4, 1), torch.tensor([1.0, 2.0, 3.0, 6.0]))
        >>> baseline.predict(torch.zeros(2, 1)).tolist()
        [3.0, 3.0]
    """

    def fit(self, X: Any, y: Any) -> MeanRegressor:
        """Average the targets.

        Args:
            X: features ``(N, ...)``; only their number of rows is used.
            y: targets ``(N,)`` or ``(N, K)``, finite.

        Returns:
            ``self``.
        """
        X = _rows("X", X)
        y = as_tensor("y", y)
        y = check_tensor("y", y if y.is_floating_point() else y.float(), ndim=(1, 2), finite=True)
        check_same_length("X", X, "y", y)
        self.mean_ = y.double().mean(dim=0).to(y.dtype)
        return self

    def predict(self, X: Any) -> torch.Tensor:
        """The training mean for every row of ``X`` ``(N, ...)``; returns ``(N,)`` or ``(N, K)``."""
        _fitted(self, "mean_")
        X = _rows("X", X)
        return self.mean_.expand(len(X), *self.mean_.shape).clone()


class BestSingleFeature:
    """Baseline: a linear model on the one feature that predicts the label best.

    ``fit`` fits one scikit-learn model per feature column and keeps the best:

    * ``task="regression"``: :class:`~sklearn.linear_model.LinearRegression`,
      ``y ≈ a·x_j + b``; the best feature has the lowest training mean squared error.
    * ``task="classification"``: :class:`~sklearn.linear_model.LogisticRegression`
      on ``x_j`` (a sigmoid for two classes, a softmax for more, with its L2 penalty
      ``0.5·‖w‖² / C``); the best feature has the lowest training log loss.

    Features are scored on the data given to ``fit``; pass training data, and
    compare the baseline with your model on held-out data.

    Args:
        task: ``"regression"`` or ``"classification"``.
        C: inverse L2 strength for classification, as in scikit-learn's
            ``LogisticRegression``, a float > 0 (ignored for regression).
        max_iter: solver iterations for classification, as in ``LogisticRegression``,
            an int >= 1.

    Attributes:
        feature_: index of the chosen column.
        scores_: each feature's training loss (MSE or mean log loss), shape ``(F,)``.
        estimator_: the fitted scikit-learn model of the chosen column.
        coef_: the chosen feature's slope, shape ``()`` for regression and binary
            classification, ``(C,)`` for more classes.
        intercept_: the matching intercept, same shape as ``coef_``.
        classes_: the sorted class labels (classification only), shape ``(C,)``.

    Example:
        >>> X = torch.tensor([[0.0, 5.0], [1.0, 3.0], [2.0, 4.0], [3.0, 1.0]])
        >>> y = 2 * X[:, 0] + 1
        >>> baseline = BestSingleFeature(task="regression").fit(X, y)
        >>> baseline.feature_, round(float(baseline.coef_), 4), round(float(baseline.intercept_), 4)
        (0, 2.0, 1.0)
    """

    def __init__(self, *, task: str = "regression", C: float = 1.0, max_iter: int = 100) -> None:
        self.task = check_choice("task", task, ("regression", "classification"))
        self.C = check_float("C", C, low=0, low_open=True)
        self.max_iter = check_int("max_iter", max_iter, low=1)

    def fit(self, X: Any, y: Any) -> BestSingleFeature:
        """Fit one linear model per column of ``X`` and keep the best.

        Args:
            X: features ``(N, F)``, finite.
            y: targets ``(N,)``: real numbers for regression, integer labels for
                classification.

        Returns:
            ``self``.
        """
        X = as_tensor("X", X)
        X = check_tensor("X", X if X.is_floating_point() else X.float(), ndim=2, finite=True)
        y = _labels(y) if self.task == "classification" else as_tensor("y", y)
        check_tensor("y", y, ndim=1, finite=True)
        check_same_length("X", X, "y", y)
        features = X.detach().cpu().double().numpy()
        target = y.detach().cpu().numpy()
        if self.task == "classification":
            self.classes_ = torch.unique(y, sorted=True)
            if len(self.classes_) < 2:
                raise ValueError(message("y", "labels of at least two classes", y))
        estimators, scores = [], []
        for j in range(features.shape[1]):
            column = features[:, [j]]
            if self.task == "regression":
                estimator = LinearRegression().fit(column, target)
                scores.append(mean_squared_error(target, estimator.predict(column)))
            else:
                estimator = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(column, target)
                scores.append(log_loss(target, estimator.predict_proba(column), labels=estimator.classes_))
            estimators.append(estimator)
        self.scores_ = torch.tensor(scores, dtype=X.dtype)
        self.feature_ = int(np.argmin(scores))
        self.estimator_ = estimators[self.feature_]
        slopes = torch.as_tensor(self.estimator_.coef_, dtype=X.dtype)  # (1,), (1, 1) or (C, 1)
        intercepts = torch.as_tensor(self.estimator_.intercept_, dtype=X.dtype)  # (), (1,) or (C,)
        self.coef_ = slopes.reshape(()) if slopes.numel() == 1 else slopes[:, 0]
        self.intercept_ = intercepts.reshape(()) if intercepts.numel() == 1 else intercepts
        self.n_features_in_ = X.shape[1]
        return self

    def _column(self, X: Any) -> tuple[np.ndarray, torch.dtype]:
        """The chosen column of ``X`` as a float64 array ``(N, 1)``, and ``X``'s dtype."""
        _fitted(self, "estimator_")
        X = as_tensor("X", X)
        X = check_tensor("X", X if X.is_floating_point() else X.float(), ndim=2)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(message("X", f"a tensor with {self.n_features_in_} columns", X))
        return X[:, [self.feature_]].detach().cpu().double().numpy(), X.dtype

    def predict(self, X: Any) -> torch.Tensor:
        """Predictions for ``X`` ``(N, F)``: values (regression) or labels (classification), ``(N,)``."""
        if self.task == "regression":
            column, dtype = self._column(X)
            return torch.as_tensor(self.estimator_.predict(column), dtype=dtype)
        return self.classes_[self.predict_proba(X).argmax(dim=1)]

    def predict_proba(self, X: Any) -> torch.Tensor:
        """Class probabilities for ``X`` ``(N, F)``, shape ``(N, C)`` (classification only)."""
        if self.task != "classification":
            raise ValueError(message("task", "'classification' to predict probabilities", self.task))
        column, dtype = self._column(X)
        return torch.as_tensor(self.estimator_.predict_proba(column), dtype=dtype)
