"""Backpropagation diagnostics: per-layer gradient norms and dead units.

Three ways backpropagation fails (claims E18–E20 of the course), and how to see each:

* **Vanishing gradients**: the gradient shrinks on its way down a deep network
  (each sigmoid multiplies it by at most 0.25), so the lower layers barely learn.
  :class:`GradientMonitor` shows it as lower layers whose gradient norm is a tiny
  fraction of the largest layer's.
* **Exploding gradients**: large weights (or a learning rate that makes them
  large) multiply the gradient up on its way down, so updates overshoot and the
  loss diverges. :class:`GradientMonitor` flags very large or non-finite norms.
* **Dead ReLU units**: a ReLU whose input is negative for every example outputs 0
  and passes no gradient back, so it never recovers. :func:`unit_activity` counts
  them per layer (and :func:`companion.checks.check_units_alive` fails on them).

The tools work through hooks that they remove when done, so the model is left
exactly as it was (the pattern of skorch's ``_doctor.py``); layer outputs are
recorded by the one context manager :func:`record_layer_outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from companion._validation import check_callable, check_float, check_instance, message
from companion.utils import eval_mode, model_device

__all__ = ["GradientMonitor", "WEIGHTED_LAYERS", "LayerTypes", "record_layer_outputs", "unit_activity"]

WEIGHTED_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""The layer types :class:`GradientMonitor` watches by default."""

LayerTypes = type[nn.Module] | tuple[type[nn.Module], ...]
"""One ``nn.Module`` subclass or a tuple of them, to select layers by type."""


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
            raise ValueError(message(
                "monitor", "a GradientMonitor that has recorded a backward pass", self,
                found="no gradients yet; attach it (as a fit callback, in a `with` block or with "
                "attach()) and run at least one backward pass",
            ))

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


def _check_layer_types(layer_types: Any) -> Any:
    if isinstance(layer_types, type) or (
        isinstance(layer_types, tuple) and layer_types and all(isinstance(t, type) for t in layer_types)
    ):
        return layer_types
    raise TypeError(message("layer_types", "a type or a tuple of types", layer_types))


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors in a layer's output: itself, or those nested in tuples, lists and dicts."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    if isinstance(output, Mapping):
        return [t for item in output.values() for t in _tensors(item)]
    return []


@contextmanager
def record_layer_outputs(
    model: nn.Module,
    *,
    layer_types: LayerTypes | None = None,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> Iterator[list[tuple[str, nn.Module, list[Any]]]]:
    """Record each submodule's output during the forward passes of a ``with`` block.

    A forward hook on each submodule (the model itself included, named ``""``)
    appends ``(name, module, tensors)`` to the yielded list when the submodule
    finishes, so the list is in the order the forward pass completes layers (a
    layer finishes after the layers inside it). ``tensors`` are the output's
    tensors (nested tuples, lists and dicts are flattened), each passed through
    ``transform`` inside the hook: summarize there, before a later in-place
    operation can change the output. The hooks are removed on exit, even after an
    error. Gradients and modes are the caller's business (e.g. ``torch.no_grad()``
    and :func:`companion.utils.eval_mode`).

    Args:
        model: the network.
        layer_types: record only submodules of these types; every submodule by default.
        transform: applied to each output tensor in the hook; the tensor itself by default.

    Yields:
        The list of records, filled as forward passes run.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with record_layer_outputs(model, transform=lambda t: tuple(t.shape)) as records:
        ...     _ = model(torch.randn(4, 2))
        >>> [(name, shapes) for name, _, shapes in records]
        [('0', [(4, 3)]), ('1', [(4, 3)]), ('', [(4, 3)])]
        >>> sum(len(m._forward_hooks) for m in model.modules())  # hooks are gone
        0
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    if layer_types is not None:
        _check_layer_types(layer_types)
    if transform is not None:
        check_callable("transform", transform)
    records: list[tuple[str, nn.Module, list[Any]]] = []

    def recorder(name: str) -> Any:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            tensors = _tensors(output)
            records.append((name, module, [transform(t) for t in tensors] if transform else tensors))

        return record

    handles = [
        module.register_forward_hook(recorder(name))
        for name, module in model.named_modules()
        if layer_types is None or isinstance(module, layer_types)
    ]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def _batches(data: Any) -> Iterable[torch.Tensor]:
    """Inputs from a tensor (one batch) or a loader of ``x`` or ``(x, y, ...)`` batches."""
    if isinstance(data, torch.Tensor):
        yield data
        return
    if not isinstance(data, Iterable):
        raise TypeError(message("data", "a tensor or a loader of (x, y) batches", data))
    for batch in data:
        yield batch[0] if isinstance(batch, (list, tuple)) else batch


def _activity(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(units non-zero for some example, number of non-zero values, number of values)."""
    values = output.reshape(len(output), -1) if output.ndim else output.reshape(1, 1)
    nonzero = values != 0
    return nonzero.any(dim=0), nonzero.sum(), nonzero.numel()


def unit_activity(model: nn.Module, data: Any, *, layer_types: LayerTypes = nn.ReLU) -> pd.DataFrame:
    """How many units of each layer are dead, and how often the layer's outputs are non-zero.

    A unit is one element of a layer's output for one example: a neuron of a fully
    connected layer, or one channel at one position of a convolution. A unit is
    **dead** on ``data`` when it outputs 0 for every example; after a ReLU, no
    gradient then flows through it, so its incoming weights stop changing. The
    second reading, ``nonzero_fraction``, counts every output value of every
    example: a healthy ReLU unit is off for about half its inputs, so a healthy
    ReLU layer sits near 0.5 there, and dead units pull it lower.

    The model runs where it lives (its parameters' device; the inputs are moved
    there), in eval mode and without gradients; each submodule's mode is restored
    and the forward hooks are removed afterwards. Each watched layer must run
    exactly once per forward pass (give each use its own module);
    ``torch.relu`` called as a function is part of the module that calls it.

    Args:
        model: the network.
        data: a tensor of inputs ``(N, ...)``, or a loader yielding ``x`` or
            ``(x, y)`` batches.
        layer_types: the layers to measure; ``nn.ReLU`` by default.

    Returns:
        A DataFrame indexed by layer name (in the model's order) with columns
        ``units`` (units per example), ``dead`` (units that are 0 for every
        example), ``dead_fraction`` (``dead / units``, in [0, 1]) and
        ``nonzero_fraction`` (share of the ``(N, units)`` output values that are
        non-zero, in [0, 1]).

    Raises:
        ValueError: if no layer has one of ``layer_types``, a watched layer runs
            more than once per forward pass or not at all, or ``data`` is empty.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.zero_()
        ...     _ = model[0].bias.copy_(torch.tensor([-1.0, 1.0, 1.0]))  # unit 0 is always off
        >>> unit_activity(model, torch.randn(16, 2)).loc["1"].tolist()
        [3.0, 1.0, 0.3333333333333333, 0.6666666666666666]
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    layer_types = _check_layer_types(layer_types)
    watched = [name for name, module in model.named_modules() if isinstance(module, layer_types)]
    if not watched:
        kinds = ", ".join(t.__name__ for t in (layer_types if isinstance(layer_types, tuple) else (layer_types,)))
        raise ValueError(message("model", f"a model with at least one layer of type {kinds}", model))
    device = model_device(model)
    alive: dict[str, torch.Tensor] = {}
    nonzero: dict[str, torch.Tensor] = {}
    values: dict[str, int] = {}
    seen = 0
    with torch.no_grad(), eval_mode(model), record_layer_outputs(
        model, layer_types=layer_types, transform=_activity
    ) as records:
        for x in _batches(data):
            records.clear()
            model(x.to(device))
            seen += len(x)
            names = [name for name, _, _ in records]
            for name, _, parts in records:
                if names.count(name) > 1:
                    raise ValueError(message(
                        "model", "a model that runs each watched layer once per forward pass", model,
                        found=f"`{name}` ran {names.count(name)} times; give each use its own module",
                    ))
                units = torch.cat([part[0] for part in parts])
                count = sum(part[1] for part in parts)
                if name in alive and alive[name].shape != units.shape:
                    raise ValueError(message(
                        "data", f"batches on which layer `{name}` outputs the same number of units", data,
                        found=f"{alive[name].numel()} units, then {units.numel()}",
                    ))
                alive[name] = alive[name] | units if name in alive else units
                nonzero[name] = nonzero[name] + count if name in nonzero else count
                values[name] = values.get(name, 0) + sum(part[2] for part in parts)
    if seen == 0:
        raise ValueError(message("data", "a tensor or loader with at least one example", data))
    rows = {}
    for name in watched:
        if name not in alive:
            raise ValueError(message("model", "a model whose watched layers all run in the forward pass",
                                     model, found=f"`{name}` did not run"))
        units = alive[name].numel()
        dead = int((~alive[name]).sum())
        rows[name] = {"units": units, "dead": dead, "dead_fraction": dead / units,
                      "nonzero_fraction": float(nonzero[name]) / values[name]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "layer"
    return table
