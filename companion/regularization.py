"""Regularization: the L2 penalty, early stopping, and sweeps over the L2 rate lambda.

Three ways to keep a model from fitting its training data too closely:

* :func:`l2_penalty` and :class:`L2Regularized`: add ``lam * (sum of squared
  weights)`` to the loss, which pulls weights toward 0 (never exactly to 0).
* :class:`EarlyStopping`: a :func:`companion.training.fit` callback that stops
  when the validation loss stops improving and restores the best weights.
* :func:`lambda_sweep`: train one model per lambda and record training and
  validation losses, from overfitting (lambda too low) to underfitting (too high).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from companion._validation import (
    as_tensor,
    check_callable,
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    message,
)
from companion.data import make_loader
from companion.inference import predict_logits
from companion.training import TrainingState, fit
from companion.utils import get_device, seed_everything

__all__ = [
    "NORM_LAYERS",
    "regularized_parameters",
    "l2_penalty",
    "weight_norm",
    "L2Regularized",
    "EarlyStopping",
    "SweepResult",
    "lambda_sweep",
]

NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, SyncBatchNorm
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
)
"""Layers whose parameters (a scale and a shift) :func:`l2_penalty` leaves alone."""


def regularized_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """The ``(name, parameter)`` pairs that L2 regularization penalizes.

    Those are the weights: every parameter except biases (parameters named
    ``bias``) and the scale and shift of normalization layers (:data:`NORM_LAYERS`).
    A bias or a normalization scale only moves or stretches a unit's output; it
    does not make the function more complex, and pulling it toward 0 would bias
    the model (scikit-learn's ``Ridge`` likewise leaves the intercept alone).

    Args:
        model: any module.

    Yields:
        ``(qualified_name, parameter)`` as in :meth:`~torch.nn.Module.named_parameters`.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        >>> [name for name, _ in regularized_parameters(net)]
        ['0.weight', '2.weight']
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    for module_name, module in model.named_modules():
        if isinstance(module, NORM_LAYERS):
            continue
        for name, parameter in module.named_parameters(recurse=False):
            if name != "bias":
                yield (f"{module_name}.{name}" if module_name else name), parameter


def l2_penalty(model: nn.Module, lam: float) -> torch.Tensor:
    """The L2 (ridge) penalty ``lam * sum(w ** 2)`` over the model's weights.

    Biases and normalization layers' parameters are not penalized (see
    :func:`regularized_parameters`). The gradient of the penalty is ``2 * lam * w``,
    so adding it to the loss is the same as SGD's ``weight_decay = 2 * lam`` on
    the same parameters.

    Args:
        model: the network whose weights to penalize.
        lam: the regularization rate lambda, a float >= 0.

    Returns:
        A scalar tensor (0-dimensional) that is differentiable in the weights.

    Example:
        >>> layer = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
        >>> round(l2_penalty(layer, 0.1).item(), 6)  # 0.1 * (1 + 4); the bias is not counted
        0.5
    """
    lam = check_float("lam", lam, low=0)
    weights = [p for _, p in regularized_parameters(model)]
    if not weights:
        raise ValueError(message("model", "a module with at least one weight to penalize", model))
    total = sum(p.pow(2).sum() for p in weights)
    return lam * total


def weight_norm(model: nn.Module) -> float:
    """Euclidean norm of the weights L2 penalizes (``sqrt(sum(w ** 2))``).

    Example:
        >>> layer = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[3.0, 4.0]]))
        >>> weight_norm(layer)
        5.0
    """
    with torch.no_grad():
        return math.sqrt(float(l2_penalty(model, 1.0)))


class L2Regularized:
    """A loss ``loss_fn(output, y) + l2_penalty(model, lam)`` for :func:`~companion.training.fit`.

    :func:`~companion.training.fit` calls its loss as ``loss_fn(output, y)``, which
    cannot see the model; this wrapper holds the model and adds its penalty. The
    penalty is added only while ``model.training`` is true, so ``fit``'s
    validation loss (computed in eval mode) stays the pure data loss and can be
    compared across values of ``lam``; the training loss ``fit`` reports includes
    the penalty.

    Args:
        loss_fn: the data loss, ``loss_fn(output, y)`` returning a scalar tensor.
        model: the model whose weights to penalize (the one being trained).
        lam: the regularization rate lambda, a float >= 0 (0 turns the penalty off).

    Example:
        >>> model = nn.Linear(3, 1)
        >>> loss = L2Regularized(nn.MSELoss(), model, lam=0.01)
        >>> x, y = torch.zeros(4, 3), torch.zeros(4, 1)
        >>> with torch.no_grad():
        ...     _ = model.bias.zero_()
        >>> bool(torch.isclose(loss(model(x), y), l2_penalty(model, 0.01)))
        True
    """

    def __init__(self, loss_fn: Callable[..., torch.Tensor], model: nn.Module, *, lam: float) -> None:
        self.loss_fn = check_callable("loss_fn", loss_fn)
        self.model = check_instance("model", model, nn.Module, "a torch.nn.Module")
        self.lam = check_float("lam", lam, low=0)

    def __call__(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(output, y)
        if self.model.training and self.lam > 0:
            loss = loss + l2_penalty(self.model, self.lam)
        return loss

    def __repr__(self) -> str:
        return f"L2Regularized({self.loss_fn!r}, lam={self.lam})"


class EarlyStopping:
    """Stop :func:`~companion.training.fit` when a monitored value stops improving.

    After each epoch the callback reads the last value of ``monitor`` from the
    history. An epoch improves on the best so far if it is lower (``mode="min"``)
    or higher (``mode="max"``) by more than ``min_delta``; then the weights are
    snapshotted. After ``patience`` epochs in a row without improvement it sets
    ``state.stop``. At the end of training it loads the best snapshot back into the
    model (``restore_best=True``), so the model you keep is the one from the best
    epoch, not the last.

    State life cycle: everything learned during a run lives in attributes with a
    trailing underscore, and ``on_train_begin`` resets them, so one instance can
    be reused for several runs.

    Args:
        patience: epochs without improvement to wait before stopping, an int >= 1.
        min_delta: smallest change that counts as an improvement, a float >= 0.
        monitor: the history series to watch, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        mode: ``"min"`` if lower is better, ``"max"`` if higher is better.
        restore_best: load the best epoch's weights into the model at the end.

    Attributes:
        best_score_: best value of ``monitor`` seen in the current run.
        best_epoch_: epoch (from 1) it was seen at.
        wait_: epochs since the last improvement.
        stopped_epoch_: epoch at which this callback stopped training, else ``None``.

    Example:
        >>> from companion.data import make_regression, make_loader
        >>> X, y = make_regression(64, 2, noise=0.5)
        >>> model = nn.Linear(2, 1)
        >>> stopper = EarlyStopping(patience=3)
        >>> history = fit(model, make_loader(X, y.unsqueeze(1)), loss_fn=nn.MSELoss(),
        ...               optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=200,
        ...               val_loader=make_loader(X, y.unsqueeze(1)), callbacks=[stopper],
        ...               progress=False, device="cpu")
        >>> stopper.stopped_epoch_ is not None and stopper.stopped_epoch_ < 200
        True
        >>> stopper.best_epoch_ == history.best_epoch()
        True
    """

    def __init__(
        self,
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        monitor: str = "val_loss",
        mode: str = "min",
        restore_best: bool = True,
    ) -> None:
        self.patience = check_int("patience", patience, low=1)
        self.min_delta = check_float("min_delta", min_delta, low=0)
        self.monitor = check_instance("monitor", monitor, str, "a string")
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.restore_best = check_instance("restore_best", restore_best, bool, "a bool")
        self._reset()

    def _reset(self) -> None:
        self.best_score_: float = math.inf if self.mode == "min" else -math.inf
        self.best_epoch_: int | None = None
        self.wait_: int = 0
        self.stopped_epoch_: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best_score_ - self.min_delta
        return value > self.best_score_ + self.min_delta

    def on_train_begin(self, state: TrainingState) -> None:
        """Forget everything from a previous run."""
        self._reset()

    def on_epoch_end(self, state: TrainingState) -> None:
        """Compare this epoch's value with the best; snapshot or count; maybe stop."""
        series = state.history[self.monitor]
        if not series:
            raise ValueError(
                message("monitor", "a series fit records every epoch (pass val_loader to fit "
                        "to monitor validation values)", self.monitor)
            )
        value = float(series[-1])
        if self._improved(value):
            self.best_score_ = value
            self.best_epoch_ = state.epoch
            self.wait_ = 0
            if self.restore_best:
                self._best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.wait_ += 1
            if self.wait_ >= self.patience:
                self.stopped_epoch_ = state.epoch
                state.stop = True

    def on_train_end(self, state: TrainingState) -> None:
        """Load the best epoch's weights back into the model (``restore_best=True``)."""
        if self.restore_best and self._best_state is not None:
            state.model.load_state_dict(self._best_state)
        self._best_state = None  # free the snapshot's memory

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"monitor={self.monitor!r}, mode={self.mode!r}, restore_best={self.restore_best})"
        )


@dataclass
class SweepResult:
    """What :func:`lambda_sweep` measured, one entry per lambda.

    Attributes:
        lambdas: the regularization rates, in the order given.
        train_loss: data loss (without the penalty) on the training set after training.
        val_loss: data loss on the validation set after training.
        weight_norm: Euclidean norm of all penalized weights after training.
        models: the trained models (on the CPU, in eval mode), for histograms of their weights.
    """

    lambdas: list[float]
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    weight_norm: list[float] = field(default_factory=list)
    models: list[nn.Module] = field(default_factory=list, repr=False)

    @property
    def best_lambda(self) -> float:
        """The lambda with the lowest validation loss."""
        return self.lambdas[min(range(len(self.lambdas)), key=self.val_loss.__getitem__)]


def lambda_sweep(
    build_model: Callable[[], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    lambdas: Sequence[float],
    loss_fn: Callable[..., torch.Tensor],
    epochs: int,
    lr: float = 0.01,
    optimizer: str = "adam",
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> SweepResult:
    """Train one model per lambda with an L2 penalty and measure under- and overfitting.

    Every run starts from the same seed, so the models differ only in lambda:
    the same initial weights, the same batches. After training, the data loss
    (without the penalty) is measured on all of ``train`` and ``val``. A lambda
    that is too low shows a low training loss and a higher validation loss
    (overfitting); one that is too high shows both losses high (underfitting).

    Args:
        build_model: called with no arguments, returns a fresh model.
        train: training ``(X, y)``; ``y`` in the form ``loss_fn`` expects.
        val: validation ``(X, y)``.
        lambdas: regularization rates to try, each a float >= 0 (at least one).
        loss_fn: the data loss, ``loss_fn(output, y)`` returning a scalar tensor.
        epochs: epochs per run, an int >= 1.
        lr: learning rate, a float > 0.
        optimizer: ``"adam"`` or ``"sgd"``.
        batch_size: rows per batch; ``None`` trains on the whole set at once.
        seed: seed set before building each model.
        device: where to train; ``None`` picks :func:`companion.utils.get_device`.

    Returns:
        A :class:`SweepResult` with one entry per lambda.

    Example:
        >>> from companion.data import make_regression, split
        >>> X, y = make_regression(60, 5, noise=1.0)
        >>> (Xtr, ytr), (Xva, yva) = split(X, y.unsqueeze(1))
        >>> result = lambda_sweep(lambda: nn.Linear(5, 1), (Xtr, ytr), (Xva, yva),
        ...                       lambdas=[0.0, 100.0], loss_fn=nn.MSELoss(), epochs=50,
        ...                       lr=0.1, device="cpu")
        >>> result.weight_norm[1] < result.weight_norm[0]
        True
    """
    check_callable("build_model", build_model)
    check_callable("loss_fn", loss_fn)
    X_train, y_train = (as_tensor("train[0]", train[0]), as_tensor("train[1]", train[1]))
    X_val, y_val = (as_tensor("val[0]", val[0]), as_tensor("val[1]", val[1]))
    check_same_length("train[0]", X_train, "train[1]", y_train)
    check_same_length("val[0]", X_val, "val[1]", y_val)
    lambdas = [check_float(f"lambdas[{i}]", lam, low=0) for i, lam in enumerate(lambdas)]
    if not lambdas:
        raise ValueError(message("lambdas", "a non-empty sequence of floats >= 0", lambdas))
    epochs = check_int("epochs", epochs, low=1)
    lr = check_float("lr", lr, low=0, low_open=True)
    optimizer = check_choice("optimizer", optimizer, ("adam", "sgd"))
    batch_size = len(X_train) if batch_size is None else check_int("batch_size", batch_size, low=1)
    device = get_device(device)
    make_optimizer = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD

    result = SweepResult(lambdas=lambdas)
    for lam in lambdas:
        seed_everything(seed)
        model = check_instance("build_model()", build_model(), nn.Module, "a torch.nn.Module")
        loader = make_loader(X_train, y_train, batch_size=batch_size, seed=seed)
        fit(model, loader, loss_fn=L2Regularized(loss_fn, model, lam=lam),
            optimizer=make_optimizer(model.parameters(), lr=lr), epochs=epochs,
            progress=False, device=device)
        result.train_loss.append(float(loss_fn(predict_logits(model, X_train), y_train)))
        result.val_loss.append(float(loss_fn(predict_logits(model, X_val), y_val)))
        result.weight_norm.append(weight_norm(model))
        result.models.append(model.cpu().eval())
    return result
