"""Backpropagation diagnostics: per-layer gradient norms and dead ReLU units.

Three ways backpropagation fails (claims E18–E20 of the course), and how to see each:

* **Vanishing gradients**: the gradient shrinks on its way down a deep network
  (each sigmoid multiplies it by at most 0.25), so the lower layers barely learn.
  :class:`GradientMonitor` shows it as lower layers whose gradient norm is a tiny
  fraction of the largest layer's.
* **Exploding gradients**: large weights (or a learning rate that makes them
  large) multiply the gradient up on its way down, so updates overshoot and the
  loss diverges. :class:`GradientMonitor` flags very large or non-finite norms.
* **Dead ReLU units**: a ReLU whose input is negative for every example outputs 0
  and passes no gradient back, so it never recovers. :func:`dead_relu_fraction`
  counts them per layer.

Both tools work through hooks that they remove when done, so the model is left
exactly as it was (the pattern of skorch's ``_doctor.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from companion._validation import check_float, check_instance, message
from companion.utils import get_device

__all__ = ["GradientMonitor", "dead_relu_fraction", "WEIGHTED_LAYERS"]

WEIGHTED_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""The layer types :class:`GradientMonitor` watches by default."""


class GradientMonitor:
    """Record the norm of each layer's weight gradient at every backward pass.

    Use it as a callback of :func:`companion.training.fit` (it attaches its hooks
    when training begins and removes them when training ends), as a context
    manager around any training loop, or with :meth:`attach` and :meth:`detach`.
    A hook on each watched layer's ``weight`` stores the gradient's L2 norm (as a
    tensor, so that recording never waits for the GPU). The norms are of the raw
    gradient, before any clipping or optimizer step; bias gradients are left out.

    Findings (see :meth:`summary`), heuristics whose thresholds you can change:

    * a layer is **vanishing** when its mean gradient norm is below
      ``vanishing_ratio`` times that of the layer with the largest mean norm (or
      when every norm is 0). It learns far more slowly than the rest. Try ReLU
      (or another non-saturating activation), He initialization, batch
      normalization or residual connections.
    * a layer is **exploding** when any of its gradient norms is above
      ``exploding_norm`` or is not finite (NaN or Inf). Try a lower learning
      rate, batch normalization, gradient clipping
      (``torch.nn.utils.clip_grad_norm_``) or smaller initial weights.

    Args:
        model: the network to watch now (as a context manager); ``None`` to let
            :meth:`attach` or ``fit`` give it later.
        layer_types: module types to watch; the default :data:`WEIGHTED_LAYERS` is
            every ``nn.Linear`` and ``nn.Conv1d/2d/3d``.
        vanishing_ratio: relative threshold for "vanishing", a float in (0, 1).
            The default, 1e-3, marks a layer learning a thousand times more slowly
            than the fastest one.
        exploding_norm: absolute threshold for "exploding", a float > 0. The
            default, 1e3, is far above the norms (about 1e-3 to 10) of a healthy
            network with a mean loss of order 1.

    Attributes:
        layers_: names of the watched layers, in the model's order.
        epoch_ends_: number of recorded steps at the end of each epoch (filled
            when used as a ``fit`` callback).

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 1))
        >>> with GradientMonitor(model) as monitor:
        ...     model(torch.randn(8, 3)).pow(2).mean().backward()
        >>> monitor.layers_
        ['0', '2']
        >>> len(monitor.step_norms()["0"])
        1
        >>> len(model[0].weight._backward_hooks or {})  # hooks are gone
        0
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        layer_types: tuple[type[nn.Module], ...] = WEIGHTED_LAYERS,
        vanishing_ratio: float = 1e-3,
        exploding_norm: float = 1e3,
    ) -> None:
        if model is not None:
            check_instance("model", model, nn.Module, "a torch.nn.Module")
        check_instance("layer_types", layer_types, tuple, "a tuple of nn.Module types")
        self.model = model
        self.layer_types = layer_types
        self.vanishing_ratio = check_float(
            "vanishing_ratio", vanishing_ratio, low=0, high=1, low_open=True, high_open=True
        )
        self.exploding_norm = check_float("exploding_norm", exploding_norm, low=0, low_open=True)
        self.layers_: list[str] = []
        self.epoch_ends_: list[int] = []
        self._norms: dict[str, list[torch.Tensor]] = {}
        self._handles: list[RemovableHandle] = []
        self._attached_by_fit = False

    # -- life cycle --------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """Whether hooks are currently registered."""
        return bool(self._handles)

    def attach(self, model: nn.Module | None = None) -> GradientMonitor:
        """Register a gradient hook on each watched layer's weight and clear old records.

        Args:
            model: the network; defaults to the one given to the constructor.

        Returns:
            ``self``.
        """
        model = self.model if model is None else model
        check_instance("model", model, nn.Module, "a torch.nn.Module")
        self.detach()
        self.model = model
        self.layers_, self.epoch_ends_, self._norms = [], [], {}
        seen: set[int] = set()
        for name, module in model.named_modules():
            weight = getattr(module, "weight", None)
            if not isinstance(module, self.layer_types) or not isinstance(weight, nn.Parameter):
                continue
            if not weight.requires_grad or id(weight) in seen:
                continue
            seen.add(id(weight))
            self.layers_.append(name)
            self._norms[name] = []
            self._handles.append(weight.register_hook(self._recorder(name)))
        if not self.layers_:
            types = ", ".join(t.__name__ for t in self.layer_types)
            raise ValueError(message("model", f"a model with trainable layers of type {types}", model))
        return self

    def _recorder(self, name: str) -> Any:
        def record(grad: torch.Tensor) -> None:
            self._norms[name].append(grad.detach().norm())

        return record

    def detach(self) -> None:
        """Remove every hook (records are kept). Safe to call more than once."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> GradientMonitor:
        return self.attach()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()

    # -- fit() callback ------------------------------------------------------------------------

    def on_train_begin(self, state: Any) -> None:
        """Attach to ``state.model`` unless already attached to it (then just clear records)."""
        if self.attached and self.model is state.model:
            self.epoch_ends_ = []
            self._norms = {name: [] for name in self.layers_}
            self._attached_by_fit = False
        else:
            self.attach(state.model)
            self._attached_by_fit = True

    def on_epoch_end(self, state: Any) -> None:
        """Mark the end of an epoch in the records."""
        self.epoch_ends_.append(self.num_steps)

    def on_train_end(self, state: Any) -> None:
        """Remove the hooks if ``fit`` attached them (a ``with`` block removes its own)."""
        if self._attached_by_fit:
            self.detach()
            self._attached_by_fit = False

    # -- records and findings --------------------------------------------------------------------

    @property
    def num_steps(self) -> int:
        """Number of backward passes recorded (for the first watched layer)."""
        return len(self._norms[self.layers_[0]]) if self.layers_ else 0

    def _require_records(self) -> None:
        if self.num_steps == 0:
            raise RuntimeError(
                "GradientMonitor has recorded no gradients yet: attach it (as a fit callback, "
                "a `with` block or with attach()) and run at least one backward pass."
            )

    def step_norms(self) -> dict[str, list[float]]:
        """Gradient norm of each layer at every recorded backward pass: ``{layer: [norm, ...]}``."""
        return {
            name: torch.stack(norms).double().cpu().tolist() if norms else []
            for name, norms in self._norms.items()
        }

    def epoch_norms(self) -> dict[str, list[float]]:
        """Mean gradient norm of each layer per epoch (needs the ``fit`` callback): ``{layer: [...]}``."""
        self._require_records()
        bounds = [0, *self.epoch_ends_]
        out = {}
        for name, norms in self.step_norms().items():
            values = torch.tensor(norms, dtype=torch.float64)
            out[name] = [float(values[a:b].mean()) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        return out

    def layer_norms(self) -> dict[str, float]:
        """Mean gradient norm of each layer over all recorded steps: ``{layer: norm}``, in order."""
        self._require_records()
        return {name: float(torch.tensor(v, dtype=torch.float64).mean()) for name, v in self.step_norms().items()}

    def summary(self) -> pd.DataFrame:
        """One row per watched layer (input side first) with its statistics and findings.

        Returns:
            A DataFrame indexed by layer name with columns ``mean_norm`` and
            ``max_norm`` (over recorded steps), ``ratio_to_largest`` (``mean_norm``
            over the largest layer's), and the boolean flags ``vanishing`` and
            ``exploding`` (see the class docstring for the thresholds).
        """
        self._require_records()
        rows = {}
        norms = {name: torch.tensor(v, dtype=torch.float64) for name, v in self.step_norms().items()}
        means = {name: float(v.mean()) for name, v in norms.items()}
        largest = max((m for m in means.values() if m == m), default=float("nan"))
        for name, values in norms.items():
            ratio = means[name] / largest if largest > 0 else 0.0
            rows[name] = {
                "mean_norm": means[name],
                "max_norm": float(values.max()),
                "ratio_to_largest": ratio,
                "vanishing": bool(ratio < self.vanishing_ratio),
                "exploding": bool(
                    (~torch.isfinite(values)).any() or (values > self.exploding_norm).any()
                ),
            }
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "layer"
        return table

    @property
    def vanishing_layers(self) -> list[str]:
        """Names of the layers flagged as vanishing."""
        table = self.summary()
        return list(table.index[table["vanishing"]])

    @property
    def exploding_layers(self) -> list[str]:
        """Names of the layers flagged as exploding."""
        table = self.summary()
        return list(table.index[table["exploding"]])


def _batches(data: Any) -> Iterable[torch.Tensor]:
    """Inputs from a tensor (one batch) or a loader of ``x`` or ``(x, y, ...)`` batches."""
    if isinstance(data, torch.Tensor):
        yield data
        return
    if not isinstance(data, Iterable):
        raise TypeError(message("data", "a tensor or a loader of (x, y) batches", data))
    for batch in data:
        yield batch[0] if isinstance(batch, (list, tuple)) else batch


def dead_relu_fraction(
    model: nn.Module, data: Any, *, device: str | torch.device | None = None
) -> pd.DataFrame:
    """Count, for each ``nn.ReLU`` module, the units that output 0 for every input.

    A unit is one element of the ReLU's output for one example: a neuron of a
    fully connected layer, or one channel at one position of a convolution. A unit
    is dead on ``data`` when its output is 0 for every example, so no gradient
    flows through it and its incoming weights no longer change. The model runs in
    evaluation mode without gradients; its mode is restored afterwards and the
    forward hooks are removed. Each ``nn.ReLU`` module must be used once per
    forward pass (``torch.relu`` called as a function is not seen).

    Args:
        model: the network.
        data: a tensor of inputs ``(N, ...)``, or a loader yielding ``x`` or
            ``(x, y)`` batches.
        device: where to run; ``None`` picks :func:`companion.utils.get_device`.

    Returns:
        A DataFrame indexed by ReLU module name (in the model's order) with columns
        ``units`` (units per example), ``dead`` (units never positive) and
        ``fraction`` (``dead / units``).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.zero_()
        ...     _ = model[0].bias.copy_(torch.tensor([-1.0, 1.0, 1.0]))  # unit 0 is always off
        >>> dead_relu_fraction(model, torch.randn(16, 2), device="cpu").loc["1"].tolist()
        [3.0, 1.0, 0.3333333333333333]
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    device = get_device(device)
    relus = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(message("model", "a model with at least one nn.ReLU module", model))
    alive: dict[str, torch.Tensor] = {}

    def recorder(name: str) -> Any:
        def record(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            positive = (output > 0).any(dim=0)  # (units...): positive for some example
            if name not in alive:
                alive[name] = positive
            elif alive[name].shape != positive.shape:
                raise ValueError(
                    f"Expected each nn.ReLU to be used once per forward pass, but `{name}` gave "
                    f"outputs of shapes {tuple(alive[name].shape)} and {tuple(positive.shape)}; "
                    "give each use its own nn.ReLU module."
                )
            else:
                alive[name] |= positive

        return record

    handles = [module.register_forward_hook(recorder(name)) for name, module in relus]
    was_training = model.training
    model.to(device).eval()
    seen = 0
    try:
        with torch.no_grad():
            for x in _batches(data):
                model(x.to(device))
                seen += len(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if seen == 0:
        raise ValueError(message("data", "a tensor or loader with at least one example", data))
    rows = {}
    for name, _ in relus:
        if name not in alive:
            raise ValueError(f"Expected every nn.ReLU to run in the forward pass, but `{name}` did not.")
        units = alive[name].numel()
        dead = int((~alive[name]).sum())
        rows[name] = {"units": units, "dead": dead, "fraction": dead / units}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "relu"
    return table
