"""The course's models: three GLMs, a multilayer perceptron, two classifiers and a small CNN.

Every model is an :class:`torch.nn.Module` that :func:`companion.training.fit` can
train. The generalized linear models (:class:`LinearRegression`,
:class:`LogisticRegression`, :class:`PoissonRegression`) also have a
scikit-learn-like ``fit(X, y)`` that finds the maximum-likelihood coefficients
exactly (closed form for least squares, full-batch L-BFGS in float64 for the
others), so that their coefficients can be read as effects and compared with
scikit-learn's.

Each model with a natural training loss exposes it as ``model.loss(output, y)``
(the mean negative log-likelihood of its probabilistic model), so that
``fit(model, loader, loss_fn=model.loss, ...)`` trains it the right way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import (
    as_tensor,
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "SmallCNN",
    "LinearRegression",
    "LogisticRegression",
    "PoissonRegression",
    "SoftmaxClassifier",
    "MultiLabelClassifier",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
"""The hidden-layer activations :class:`MLP` and :class:`SmallCNN` accept, by name."""


def _check_widths(name: str, widths: Sequence[int]) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(message(name, "a sequence of ints >= 1", widths))
    return tuple(check_int(f"{name}[{i}]", w, low=1) for i, w in enumerate(widths))


class MLP(nn.Module):
    """A multilayer perceptron: ``Linear -> [BatchNorm] -> activation -> [Dropout]`` per hidden layer.

    All layers sit in one :class:`torch.nn.Sequential`, ``self.layers``, in order,
    so per-layer hooks find every ``nn.Linear`` and activation module with
    ``model.layers`` (or ``model.modules()``). The last layer, ``self.output_layer``,
    is a plain ``nn.Linear`` with ``out_features`` units and no activation: the
    model returns raw scores (logits), and the loss or a ``predict`` method applies
    the output non-linearity. Inputs with more than two dimensions (images) are
    flattened first.

    Args:
        in_features: input width, an int >= 1.
        hidden: widths of the hidden layers, e.g. ``(64, 32)``; ``()`` gives a
            linear model.
        out_features: output width, an int >= 1.
        activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"``, used after each hidden layer.
        batch_norm: put ``nn.BatchNorm1d`` between each hidden ``Linear`` and its activation.
        dropout: dropout probability after each hidden activation, a float in ``[0, 1)``.

    Shapes:
        input ``(N, in_features)`` (or ``(N, *)`` with ``in_features`` elements per
        example), output ``(N, out_features)``.

    Example:
        >>> model = MLP(4, (8, 8), 3, activation="tanh", dropout=0.1)
        >>> model(torch.randn(5, 4)).shape
        torch.Size([5, 3])
        >>> sum(isinstance(m, nn.Linear) for m in model.layers)
        3
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_features = check_int("in_features", in_features, low=1)
        hidden = _check_widths("hidden", hidden)
        out_features = check_int("out_features", out_features, low=1)
        activation = check_choice("activation", activation, ACTIVATIONS)
        check_instance("batch_norm", batch_norm, bool, "a bool")
        dropout = check_float("dropout", dropout, low=0, high=1, high_open=True)
        self.in_features, self.hidden, self.out_features = in_features, hidden, out_features
        self.activation = activation
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    @property
    def output_layer(self) -> nn.Linear:
        """The last ``nn.Linear``: one unit per output (per class for a classifier)."""
        return self.layers[-1]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the output layer: ``(N, in_features) -> (N, last hidden width)``."""
        return self.layers[:-1](x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))


class SmallCNN(nn.Module):
    """A small convolutional network: conv blocks, global average pooling, one linear head.

    Each block is ``Conv2d(3x3, padding 1) -> [BatchNorm2d] -> activation ->
    MaxPool2d(2)``. After the blocks, global average pooling makes the features
    independent of the image size. ``self.features`` (an ``nn.Sequential``) maps
    images to feature vectors ``(N, channels[-1])`` and ``self.head`` (an
    ``nn.Linear``) maps them to class scores, so transfer learning can freeze
    ``features`` and replace ``head``.

    Args:
        in_channels: image channels, an int >= 1.
        num_classes: number of outputs, an int >= 1.
        channels: output channels of each conv block, e.g. ``(16, 32)``; each
            block halves the height and width, so images need at least
            ``2 ** len(channels)`` pixels a side.
        activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"``.
        batch_norm: add ``nn.BatchNorm2d`` after each convolution.
        dropout: dropout probability before the head, a float in ``[0, 1)``.

    Shapes:
        input ``(N, in_channels, H, W)``, output ``(N, num_classes)`` logits.

    Example:
        >>> model = SmallCNN(3, 5, channels=(8, 16))
        >>> model(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 5])
        >>> model.features(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        channels: Sequence[int] = (16, 32),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1)
        num_classes = check_int("num_classes", num_classes, low=1)
        channels = _check_widths("channels", channels)
        if not channels:
            raise ValueError(message("channels", "a non-empty sequence of ints >= 1", channels))
        activation = check_choice("activation", activation, ACTIVATIONS)
        check_instance("batch_norm", batch_norm, bool, "a bool")
        dropout = check_float("dropout", dropout, low=0, high=1, high_open=True)
        self.in_channels, self.num_classes, self.channels = in_channels, num_classes, channels
        blocks: list[nn.Module] = []
        width = in_channels
        for c in channels:
            blocks.append(nn.Conv2d(width, c, kernel_size=3, padding=1))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(c))
            blocks += [ACTIVATIONS[activation](), nn.MaxPool2d(2)]
            width = c
        blocks += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            blocks.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=4, floating=True)
        side = 2 ** len(self.channels)
        if x.shape[1] != self.in_channels or min(x.shape[-2:]) < side:
            raise ValueError(
                message(
                    "x",
                    f"images of shape (N, {self.in_channels}, H, W) with H, W >= {side}",
                    x,
                )
            )
        return self.head(self.features(x))


# --------------------------------------------------------------------------------------
# Generalized linear models
# --------------------------------------------------------------------------------------


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
        return self.linear(x).squeeze(-1)

    def predict(self, X: Any) -> torch.Tensor:
        """The expected value of ``y`` given each row of ``X``: shape ``(N,)``, no gradient."""
        X = self._check_X(X)
        with torch.no_grad():
            return self._inverse_link(self(X.to(self.linear.weight)))

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of targets ``y`` ``(N,)`` given ``output = self(x)`` ``(N,)``.

        Use it as ``loss_fn=model.loss`` in :func:`companion.training.fit`.
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
        """
        X, y = self._check_Xy(X, y)
        max_iter = check_int("max_iter", max_iter, low=1)
        tol = check_float("tol", tol, low=0, low_open=True)
        dtype = self.linear.weight.dtype
        design = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)
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
        self._set_parameters(theta.detach(), dtype)
        return self

    def _set_parameters(self, theta: torch.Tensor, dtype: torch.dtype) -> None:
        with torch.no_grad():
            self.linear.weight.copy_(theta[:-1].to(dtype).unsqueeze(0))
            self.linear.bias.copy_(theta[-1:].to(dtype))


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
        """
        X, y = self._check_Xy(X, y)
        design = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)
        theta = torch.linalg.lstsq(design, y.unsqueeze(1), driver="gelsd").solution[:, 0]
        self._set_parameters(theta, self.linear.weight.dtype)
        return self


class LogisticRegression(_GLM):
    """Logistic regression: ``y ~ Bernoulli(sigmoid(x @ coef + intercept))``.

    The prediction is a probability, ``P(y = 1 | x)``. Each coefficient is a
    change in log-odds: one unit more of its feature multiplies the odds
    ``p / (1 - p)`` by ``exp(coef)``. ``forward`` returns the logit (log-odds);
    :meth:`loss` is binary cross-entropy on logits.

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
                message("y", "non-negative counts (Poisson targets must be >= 0)", y)
                + f" Its smallest value is {float(y.min()):g}."
            )


# --------------------------------------------------------------------------------------
# Classifiers
# --------------------------------------------------------------------------------------


class SoftmaxClassifier(MLP):
    """Multi-class, single-label classifier: an :class:`MLP` whose output layer feeds one softmax.

    The output layer has one unit per class (``num_classes`` logits); the softmax
    over them gives one probability per class, and these sum to 1, because each
    example belongs to exactly one class. :meth:`loss` is cross-entropy.

    Args:
        in_features: input width, an int >= 1.
        num_classes: number of classes, an int >= 2.
        hidden: hidden-layer widths (``()`` is multinomial logistic regression).
        activation, batch_norm, dropout: as in :class:`MLP`.

    Shapes:
        input ``(N, in_features)``, output ``(N, num_classes)`` logits; targets
        ``(N,)`` class indices.

    Example:
        >>> model = SoftmaxClassifier(4, 3, hidden=(8,))
        >>> p = model.predict_proba(torch.randn(5, 4))
        >>> tuple(p.shape), bool(torch.allclose(p.sum(1), torch.ones(5)))
        ((5, 3), True)
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        num_classes = check_int("num_classes", num_classes, low=2)
        super().__init__(
            in_features,
            hidden,
            num_classes,
            activation=activation,
            batch_norm=batch_norm,
            dropout=dropout,
        )
        self.num_classes = num_classes

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of class indices ``y`` ``(N,)`` given logits ``output`` ``(N, C)``."""
        return F.cross_entropy(output, y)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, num_classes)``; each row sums to 1. No gradient."""
        with torch.no_grad():
            return torch.softmax(self(x), dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class of each example, ``(N,)`` int64."""
        return self.predict_proba(x).argmax(dim=1)


class MultiLabelClassifier(MLP):
    """Multi-class, multi-label classifier: an :class:`MLP` with one sigmoid per label.

    Each output unit is an independent logistic regression on the shared hidden
    features: its sigmoid is the probability that the example carries that label,
    so an example can carry several labels or none and the probabilities need not
    sum to 1. :meth:`loss` is binary cross-entropy on each label.

    Args:
        in_features: input width, an int >= 1.
        num_labels: number of labels, an int >= 1.
        hidden: hidden-layer widths.
        threshold: :meth:`predict` marks a label present when its probability is
            at least this, a float in ``(0, 1)``.
        activation, batch_norm, dropout: as in :class:`MLP`.

    Shapes:
        input ``(N, in_features)``, output ``(N, num_labels)`` logits; targets
        ``(N, num_labels)`` in ``{0, 1}``.

    Example:
        >>> model = MultiLabelClassifier(4, 3, hidden=(8,))
        >>> model.predict(torch.randn(5, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        in_features: int,
        num_labels: int,
        *,
        hidden: Sequence[int] = (),
        threshold: float = 0.5,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            in_features,
            hidden,
            num_labels,
            activation=activation,
            batch_norm=batch_norm,
            dropout=dropout,
        )
        self.num_labels = self.out_features
        self.threshold = check_float(
            "threshold", threshold, low=0, high=1, low_open=True, high_open=True
        )

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy of 0/1 targets ``y`` ``(N, L)`` given logits ``output`` ``(N, L)``."""
        return F.binary_cross_entropy_with_logits(output, y.to(output.dtype))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Per-label probabilities ``(N, num_labels)``, each in ``(0, 1)``. No gradient."""
        with torch.no_grad():
            return torch.sigmoid(self(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """0/1 label indicators ``(N, num_labels)`` (int64): probability >= ``threshold``."""
        return (self.predict_proba(x) >= self.threshold).long()
