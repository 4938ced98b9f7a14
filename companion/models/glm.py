"""Generalized linear models: linear, logistic and Poisson regression, fitted exactly or by ``fit``.

Each GLM is an :class:`torch.nn.Module` whose ``forward`` returns the linear
predictor ``eta = x @ coef + intercept``, so :func:`companion.training.fit` can
train it with ``loss_fn=model.loss`` (the mean negative log-likelihood). Each also
has a scikit-learn-like ``fit(X, y)`` that finds the maximum-likelihood
coefficients exactly (closed form for least squares, full-batch L-BFGS in float64
for the others), so that its coefficients can be read as effects and compared with
scikit-learn's. ``predict`` returns the expected value of ``y``: a mean, a
probability, or a rate.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import (
    as_tensor,
    check_float,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.inference import predict_logits

__all__ = ["LinearRegression", "LogisticRegression", "PoissonRegression"]


class _GLM(nn.Module):
    """A generalized linear model ``E[y | x] = inverse_link(x @ coef + intercept)``.

    ``forward`` returns the linear predictor ``eta = x @ coef + intercept`` of
    shape ``(N,)``; :meth:`predict` applies the inverse link and returns the
    model's expected value of ``y``. :meth:`loss` is the mean negative
    log-likelihood (up to a constant) as a function of ``eta``.
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        self.linear = nn.Linear(self.in_features, 1)

    # -- what each GLM defines ---------------------------------------------------------
    def _inverse_link(self, eta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _nll(self, eta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_target(self, y: torch.Tensor) -> None:
        """Raise if ``y`` lies outside the model's support."""

    # -- shared ---------------------------------------------------------------------------
    @property
    def coef(self) -> torch.Tensor:
        """Fitted coefficients ``(in_features,)``, detached."""
        return self.linear.weight.detach()[0].clone()

    @property
    def intercept(self) -> torch.Tensor:
        """Fitted intercept (a scalar tensor), detached."""
        return self.linear.bias.detach()[0].clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Shapes and dtypes only: no value is read, so this costs no device sync.
        check_tensor("x", x, ndim=2, floating=True, non_empty=False)
        if x.shape[1] != self.in_features:
            raise ValueError(message("x", f"a tensor with {self.in_features} columns", x))
        return self.linear(x).squeeze(-1)

    def predict(self, X: Any) -> torch.Tensor:
        """The expected value of ``y`` given each row of ``X``: shape ``(N,)``, on the CPU, no gradient.

        Example:
            >>> model = PoissonRegression(1)
            >>> model.predict([[0.0], [1.0]]).shape
            torch.Size([2])
        """
        X = self._check_X(X)
        return self._inverse_link(predict_logits(self, X.to(self.linear.weight.dtype)))

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of targets ``y`` ``(N,)`` given ``output = self(x)`` ``(N,)``.

        Use it as ``loss_fn=model.loss`` in :func:`companion.training.fit`.

        Example:
            >>> LinearRegression(1).loss(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))
            tensor(2.)
        """
        check_tensor("output", output, ndim=1, floating=True)
        y = check_tensor("y", y, ndim=1)
        check_same_length("output", output, "y", y)
        self._check_target(y)
        return self._nll(output, y.to(output.dtype))

    def _check_X(self, X: Any) -> torch.Tensor:
        X = check_tensor("X", as_tensor("X", X), ndim=2, finite=True)
        if X.shape[1] != self.in_features:
            raise ValueError(message("X", f"a tensor with {self.in_features} columns", X))
        return X

    def _check_Xy(self, X: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        X = self._check_X(X)
        y = check_tensor("y", as_tensor("y", y), ndim=1, finite=True)
        check_same_length("X", X, "y", y)
        self._check_target(y)
        return X.double(), y.double()

    def _design(self, X: torch.Tensor) -> torch.Tensor:
        """``X`` with a column of ones appended, for the intercept."""
        return torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)

    def fit(self, X: Any, y: Any, *, max_iter: int = 500, tol: float = 1e-10) -> _GLM:
        """Find the maximum-likelihood coefficients on all of ``(X, y)`` at once.

        Full-batch L-BFGS (strong-Wolfe line search) in float64 minimizes the mean
        negative log-likelihood, starting from zero, until the gradient's largest
        entry falls below ``tol``. The log-likelihoods of these GLMs are concave, so
        the optimum is unique when it exists (for logistic regression it does not
        when the classes are linearly separable: the coefficients then grow
        without bound).

        Args:
            X: features ``(N, in_features)`` (tensor or array).
            y: targets ``(N,)`` in the model's support.
            max_iter: most L-BFGS iterations, an int >= 1.
            tol: stop when every gradient entry is below this, a float > 0.

        Returns:
            ``self``, with fitted ``coef`` and ``intercept``.

        Example:
            >>> X = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
            >>> model = PoissonRegression(1).fit(X, torch.tensor([1.0, 2.0, 4.0, 8.0]))
            >>> round(float(model.coef[0]), 2)
            0.69
        """
        X, y = self._check_Xy(X, y)
        max_iter = check_int("max_iter", max_iter, low=1)
        tol = check_float("tol", tol, low=0, low_open=True)
        design = self._design(X)
        theta = torch.zeros(design.shape[1], dtype=X.dtype, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [theta],
            lr=1,
            max_iter=max_iter,
            tolerance_grad=tol,
            tolerance_change=0.0,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            value = self._nll(design @ theta, y)
            value.backward()
            return value

        optimizer.step(closure)
        self._set_parameters(theta.detach())
        return self

    def _set_parameters(self, theta: torch.Tensor) -> None:
        """Copy ``theta = (coef..., intercept)`` into the layer, in the layer's dtype."""
        with torch.no_grad():
            self.linear.weight.copy_(theta[:-1].unsqueeze(0))
            self.linear.bias.copy_(theta[-1:])


class LinearRegression(_GLM):
    """Linear regression: ``y ~ Normal(x @ coef + intercept, sigma^2)``.

    The prediction is the expected value of ``y``; each coefficient is the change
    in that expected value per unit change of its feature, the others held fixed.
    :meth:`fit` solves least squares in closed form (float64 ``lstsq``), which is
    the maximum-likelihood fit under Gaussian noise. :meth:`loss` is the mean
    squared error (the negative log-likelihood up to scale and a constant).

    Args:
        in_features: number of features, an int >= 1.

    Shapes:
        input ``(N, in_features)``, output ``(N,)``.

    Example:
        >>> X = torch.randn(100, 2, dtype=torch.float64)
        >>> y = 3 * X[:, 0] - X[:, 1] + 0.5
        >>> model = LinearRegression(2).fit(X, y)
        >>> [round(float(c), 3) for c in model.coef], round(float(model.intercept), 3)
        ([3.0, -1.0], 0.5)
    """

    def _inverse_link(self, eta: torch.Tensor) -> torch.Tensor:
        return eta

    def _nll(self, eta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(eta, y)

    def fit(self, X: Any, y: Any, *, max_iter: int = 500, tol: float = 1e-10) -> LinearRegression:
        """Least squares in closed form (``max_iter`` and ``tol`` are unused; kept for one signature).

        Args:
            X: features ``(N, in_features)``.
            y: targets ``(N,)``.

        Returns:
            ``self``, with fitted ``coef`` and ``intercept``.

        Example:
            >>> model = LinearRegression(1).fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
            >>> round(float(model.coef[0]), 4), round(float(model.intercept), 4)
            (2.0, 1.0)
        """
        X, y = self._check_Xy(X, y)
        theta = torch.linalg.lstsq(self._design(X), y.unsqueeze(1), driver="gelsd").solution[:, 0]
        self._set_parameters(theta)
        return self


class LogisticRegression(_GLM):
    """Logistic regression: ``y ~ Bernoulli(sigmoid(x @ coef + intercept))``.

    The prediction is a probability, ``P(y = 1 | x)`` (not a label: threshold it
    yourself). Each coefficient is a change in log-odds: one unit more of its
    feature multiplies the odds ``p / (1 - p)`` by ``exp(coef)``. ``forward``
    returns the logit (log-odds); :meth:`loss` is binary cross-entropy on logits.

    Args:
        in_features: number of features, an int >= 1.

    Shapes:
        input ``(N, in_features)``, output ``(N,)`` logits; targets in ``{0, 1}``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(20000, 1, generator=g, dtype=torch.float64)
        >>> y = torch.bernoulli(torch.sigmoid(2 * X[:, 0] - 1), generator=g)
        >>> model = LogisticRegression(1).fit(X, y)
        >>> round(float(model.coef[0]), 1), round(float(model.intercept), 1)
        (2.0, -1.0)
    """

    def _inverse_link(self, eta: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(eta)

    def _nll(self, eta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(eta, y)

    def _check_target(self, y: torch.Tensor) -> None:
        if not ((y == 0) | (y == 1)).all():
            raise ValueError(message("y", "binary labels in {0, 1}", y))


class PoissonRegression(_GLM):
    """Poisson regression: ``y ~ Poisson(exp(x @ coef + intercept))`` (log link).

    The prediction is an expected count (a rate). Each coefficient is a log-rate
    ratio: one unit more of its feature multiplies the expected count by
    ``exp(coef)``. ``forward`` returns the log-rate; :meth:`loss` is the Poisson
    negative log-likelihood on log-rates, ``mean(exp(eta) - y * eta)``. Targets
    must be counts ``>= 0`` (they need not be integers, as in scikit-learn's
    ``PoissonRegressor``); negative targets raise a ``ValueError``.

    Args:
        in_features: number of features, an int >= 1.

    Shapes:
        input ``(N, in_features)``, output ``(N,)`` log-rates; targets ``(N,)`` >= 0.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(5000, 1, generator=g, dtype=torch.float64)
        >>> y = torch.poisson(torch.exp(0.5 * X[:, 0] + 1.0), generator=g)
        >>> model = PoissonRegression(1).fit(X, y)
        >>> round(float(model.coef[0]), 1), round(float(model.intercept), 1)
        (0.5, 1.0)
    """

    def _inverse_link(self, eta: torch.Tensor) -> torch.Tensor:
        return torch.exp(eta)

    def _nll(self, eta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.poisson_nll_loss(eta, y, log_input=True, full=False)

    def _check_target(self, y: torch.Tensor) -> None:
        if (y < 0).any():
            raise ValueError(
                message("y", "non-negative counts (Poisson targets must be >= 0)", y,
                        found=f"smallest value {float(y.min()):g}")
            )
