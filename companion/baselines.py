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

import torch
import torch.nn.functional as F

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
    if not hasattr(estimator, attribute):
        name = type(estimator).__name__
        raise RuntimeError(f"This {name} is not fitted yet: call `fit(X, y)` before `predict`.")


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

    ``fit`` fits one linear model per feature column and keeps the best:

    * ``task="regression"``: ordinary least squares ``y ≈ a·x_j + b``; the best
      feature has the lowest training mean squared error.
    * ``task="classification"``: logistic regression on ``x_j`` (a sigmoid for two
      classes, a softmax for more) with scikit-learn's default L2 penalty
      ``0.5·‖w‖² / C`` on the slope(s) added to the summed log loss, fitted by
      Newton's method; the best feature has the lowest training log loss.

    Features are scored on the data given to ``fit``; pass training data, and
    compare the baseline with your model on held-out data.

    Args:
        task: ``"regression"`` or ``"classification"``.
        C: inverse L2 strength for classification, as in scikit-learn's
            ``LogisticRegression``, a float > 0 (ignored for regression).
        max_iter: Newton iterations for classification, an int >= 1.

    Attributes:
        feature_: index of the chosen column.
        scores_: each feature's training loss (MSE or mean log loss), shape ``(F,)``.
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
        X64 = X.double()
        if self.task == "regression":
            slopes, intercepts, scores = _least_squares_per_feature(X64, y.double())
        else:
            self.classes_, codes = torch.unique(y, sorted=True, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(message("y", "labels of at least two classes", y))
            slopes, intercepts, scores = _logistic_per_feature(
                X64, codes, len(self.classes_), C=self.C, max_iter=self.max_iter
            )
        self.scores_ = scores.to(X.dtype)
        self.feature_ = int(torch.argmin(scores))
        self.coef_ = slopes[self.feature_].to(X.dtype)
        self.intercept_ = intercepts[self.feature_].to(X.dtype)
        self.n_features_in_ = X.shape[1]
        return self

    def _column(self, X: Any) -> torch.Tensor:
        _fitted(self, "coef_")
        X = as_tensor("X", X)
        X = check_tensor("X", X if X.is_floating_point() else X.float(), ndim=2)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(message("X", f"a tensor with {self.n_features_in_} columns", X))
        return X[:, self.feature_].to(self.coef_.dtype)

    def _logits(self, X: Any) -> torch.Tensor:
        x = self._column(X)
        return x[:, None] * self.coef_.reshape(1, -1) + self.intercept_.reshape(1, -1)

    def predict(self, X: Any) -> torch.Tensor:
        """Predictions for ``X`` ``(N, F)``: values (regression) or labels (classification), ``(N,)``."""
        if self.task == "regression":
            return self._column(X) * self.coef_ + self.intercept_
        return self.classes_[self.predict_proba(X).argmax(dim=1)]

    def predict_proba(self, X: Any) -> torch.Tensor:
        """Class probabilities for ``X`` ``(N, F)``, shape ``(N, C)`` (classification only)."""
        if self.task != "classification":
            raise AttributeError("predict_proba is only available with task='classification'.")
        logits = self._logits(X)
        if logits.shape[1] == 1:
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(logits, dim=1)


def _least_squares_per_feature(
    X: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form ``y ≈ a_j·x_j + b_j`` for every column ``j``; returns ``(a, b, mse)``, each ``(F,)``."""
    xc = X - X.mean(dim=0)
    yc = y - y.mean()
    var = (xc**2).sum(dim=0)
    slopes = torch.where(var > 0, (xc * yc[:, None]).sum(dim=0) / var.clamp_min(1e-300), 0.0)
    intercepts = y.mean() - slopes * X.mean(dim=0)
    residuals = y[:, None] - (X * slopes + intercepts)
    return slopes, intercepts, (residuals**2).mean(dim=0)


def _logistic_per_feature(
    X: torch.Tensor, codes: torch.Tensor, n_classes: int, *, C: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L2-penalized logistic regression on each column of ``X`` ``(N, F)``, all at once.

    Newton's method with backtracking, batched over columns: each column has only
    ``2k`` parameters (a slope and an intercept per output, ``k = 1`` for a sigmoid,
    ``k = C`` for a softmax), so its exact Hessian is tiny. Columns are standardized
    for conditioning while the penalty stays on the original-scale slope, so the
    objective is exactly scikit-learn's. Returns slopes and intercepts of shape
    ``(F,)`` (two classes) or ``(F, C)``, and the mean log loss per column ``(F,)``.
    """
    n, n_features = X.shape
    mean, std = X.mean(dim=0), X.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    Z = (X - mean) / std  # (N, F)
    k = 1 if n_classes == 2 else n_classes
    target = codes.to(X.dtype)[:, None] if k == 1 else F.one_hot(codes, k).to(X.dtype)  # (N, k)
    phi = torch.stack([Z, torch.ones_like(Z)], dim=2)  # (N, F, 2): the design row [z, 1]
    ridge = torch.stack([1.0 / (C * std**2), torch.zeros_like(std)], 1)  # on [slope, intercept]
    W = torch.zeros(n_features, 2, k, dtype=X.dtype)  # per column: [slopes; intercepts]

    def probabilities(W: torch.Tensor) -> torch.Tensor:
        logits = torch.einsum("nfi,fik->nfk", phi, W)
        return torch.sigmoid(logits) if k == 1 else torch.softmax(logits, dim=2)

    def objective(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = torch.einsum("nfi,fik->nfk", phi, W)
        if k == 1:
            nll = F.binary_cross_entropy_with_logits(
                logits[..., 0], target.expand(n, n_features), reduction="none"
            ).sum(dim=0)
        else:
            nll = -(torch.log_softmax(logits, dim=2) * target[:, None, :]).sum(dim=(0, 2))
        return nll + 0.5 * (ridge[:, :, None] * W**2).sum(dim=(1, 2)), nll

    size = 2 * k
    eye = torch.eye(k, dtype=X.dtype)
    value, nll = objective(W)
    done = torch.zeros(n_features, dtype=torch.bool)
    for _ in range(max_iter):
        p = probabilities(W)  # (N, F, k)
        grad = torch.einsum("nfi,nfk->fik", phi, p - target[:, None, :]) + ridge[:, :, None] * W
        pending = (grad.abs().amax(dim=(1, 2)) > 1e-8 * n) & ~done  # columns still improving
        if not pending.any():
            break
        curvature = p[..., :, None] * eye - p[..., :, None] * p[..., None, :]  # (N, F, k, k)
        outer = phi[..., :, None] * phi[..., None, :]  # (N, F, 2, 2)
        hessian = torch.einsum("nfij,nfkl->fikjl", outer, curvature).reshape(
            n_features, size, size
        ) + torch.diag_embed(ridge.repeat_interleave(k, dim=1))
        # The softmax's intercepts can all shift together without changing anything; the
        # pseudo-inverse gives the Newton step with no part along that flat direction.
        step = (torch.linalg.pinv(hessian, hermitian=True) @ grad.reshape(n_features, size, 1))
        step = step.reshape(W.shape)
        decrease = (grad * step).sum(dim=(1, 2))  # minus the slope along -step
        t = torch.ones(n_features, dtype=X.dtype)
        for _ in range(30):  # backtracking (Armijo), per column
            trial = W - t[:, None, None] * step
            trial_value, trial_nll = objective(trial)
            accept = pending & (trial_value <= value - 1e-4 * t * decrease)
            W = torch.where(accept[:, None, None], trial, W)
            value = torch.where(accept, trial_value, value)
            nll = torch.where(accept, trial_nll, nll)
            pending &= ~accept
            if not pending.any():
                break
            t = torch.where(pending, t / 2, t)
        else:  # no decrease left to find at float64 precision: these columns are done
            done |= pending
    slopes = W[:, 0, :] / std[:, None]
    intercepts = W[:, 1, :] - slopes * mean[:, None]
    if k == 1:
        slopes, intercepts = slopes[:, 0], intercepts[:, 0]
    return slopes, intercepts, nll / n
