"""Numerical health of a model: finite weights, gradients and layer outputs; units alive.

:func:`check_finite` names the first parameter, buffer, gradient or layer output that
holds NaN or Inf; :func:`check_units_alive` names the layers whose units have died
(measured by :func:`companion.diagnostics.unit_activity`). Both watch layer outputs
through :func:`companion.diagnostics.record_layer_outputs`, whose hooks are removed
afterwards.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn

from companion._validation import check_choice, check_float, check_instance, check_tensor
from companion.checks._report import failure
from companion.diagnostics import LayerTypes, record_layer_outputs, unit_activity
from companion.utils import eval_mode, model_device

__all__ = ["check_finite", "check_units_alive"]


def _non_finite(tensor: torch.Tensor) -> str | None:
    """None if finite, else 'k NaN and m Inf among n values; the first at index (..)'."""
    if not tensor.is_floating_point() and not tensor.is_complex():
        return None
    bad = ~torch.isfinite(tensor)
    if not bool(bad.any()):
        return None
    first = tuple(int(i) for i in bad.nonzero()[0].tolist())
    nan, inf = int(tensor.isnan().sum()), int(tensor.isinf().sum())
    return f"{nan} NaN and {inf} Inf among {tensor.numel()} values; the first at index {first}"


_FINITE_FIX = ("lower the learning rate or clip gradients (clip_grad_norm_), check the inputs "
               "for NaN/Inf, guard log/sqrt/division against 0, and restore the last good checkpoint")


def check_finite(
    model_or_tensor: nn.Module | torch.Tensor,
    x: torch.Tensor | None = None,
    *,
    name: str = "model",
) -> None:
    """Fail if a tensor, or a model's weights, gradients or layer outputs hold NaN/Inf.

    For a model, every parameter, buffer and existing gradient is checked, and the
    first one holding NaN or Inf is named. With an input batch ``x``, the model
    also runs forward (in eval mode, without gradients, on its own device) with a
    forward hook on every submodule; the first layer whose output is not finite is
    named. The hooks are removed and each submodule's mode restored afterwards.

    Args:
        model_or_tensor: an ``nn.Module`` or a tensor.
        x: an input batch for the layer-output check (models only).
        name: what to call the object in the message.

    Raises:
        ModelCheckError: naming the parameter, buffer, gradient or layer, with the
            NaN and Inf counts and the index of the first bad value.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> check_finite(model, torch.randn(4, 2))  # passes silently
        >>> with torch.no_grad(): model[0].bias[1] = float("nan")
        >>> check_finite(model)
        Traceback (most recent call last):
        ...
        companion.checks.ModelCheckError: check_finite failed: parameter `0.bias` holds 1 NaN ...
    """
    check_instance("name", name, str, "a string")
    if isinstance(model_or_tensor, torch.Tensor):
        found = _non_finite(model_or_tensor)
        if found:
            raise failure("check_finite", f"`{name}` holds {found}",
                          f"tensor `{name}` of shape {tuple(model_or_tensor.shape)}", _FINITE_FIX)
        return
    model = check_instance("model_or_tensor", model_or_tensor, nn.Module, "an nn.Module or a tensor")
    tensors = [("parameter", n, p) for n, p in model.named_parameters()]
    tensors += [("buffer", n, b) for n, b in model.named_buffers()]
    tensors += [("gradient of", n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    for kind, pname, tensor in tensors:
        found = _non_finite(tensor.detach())
        if found:
            raise failure("check_finite", f"{kind} `{pname}` holds {found}", f"{name}.{pname}", _FINITE_FIX)
    if x is None:
        return
    check_tensor("x", x)
    found = _non_finite(x)
    if found:
        raise failure("check_finite", f"the input holds {found}", "the input batch `x`",
                      "clean the data: impute or drop missing values before the model")
    with torch.no_grad(), eval_mode(model), record_layer_outputs(model, transform=_non_finite) as records:
        model(x.to(model_device(model)))
    for layer, module, findings in records:
        found = next((f for f in findings if f), None)
        if found:
            layer = layer or "<model>"
            raise failure("check_finite",
                          f"the output of layer `{layer}` ({type(module).__name__}) holds "
                          f"{found}; it is the first layer to output non-finite values and "
                          "its weights are finite, so its operation overflowed or divided by 0",
                          f"{name}, layer `{layer}`", _FINITE_FIX)


def check_units_alive(
    model: nn.Module,
    data: Any,
    *,
    min_fraction: float = 0.5,
    layer_types: LayerTypes = nn.ReLU,
    per: str = "unit",
) -> pd.DataFrame:
    """Fail unless more than ``min_fraction`` of every watched layer's outputs are alive.

    A layer whose outputs are mostly exactly zero (typically ReLUs whose inputs
    went negative for good) passes no signal forward and no gradient back. Two
    readings of the rule, chosen by ``per`` (both measured by
    :func:`companion.diagnostics.unit_activity`):

    - ``"unit"`` (default): the share of units that are non-zero for at least one
      example, ``1 - dead_fraction``. A healthy ReLU layer scores near 1, and the
      share falls by exactly the units that died.
    - ``"value"``: the share of non-zero values of the ``(N, units)`` output,
      ``nonzero_fraction``. A healthy ReLU unit is off for about half its inputs,
      so a healthy ReLU layer sits near 0.5 here: lower ``min_fraction`` well
      below 0.5 with this reading.

    Args:
        model: the network.
        data: an input batch ``(N, ...)`` representative of real data, or a loader
            of ``x`` or ``(x, y)`` batches.
        min_fraction: the share a layer must exceed, in [0, 1).
        layer_types: the layers to check; ``nn.ReLU`` by default.
        per: ``"unit"`` or ``"value"``, as above.

    Returns:
        The table of :func:`companion.diagnostics.unit_activity`.

    Raises:
        ModelCheckError: naming every layer at or below ``min_fraction``.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 8), nn.ReLU())
        >>> with torch.no_grad(): _ = model[0].bias.fill_(5.0)
        >>> check_units_alive(model, torch.randn(16, 3))["dead"].tolist()
        [0]
    """
    min_fraction = check_float("min_fraction", min_fraction, low=0, high=1, high_open=True)
    per = check_choice("per", per, ("unit", "value"))
    table = unit_activity(model, data, layer_types=layer_types)
    alive = 1 - table["dead_fraction"] if per == "unit" else table["nonzero_fraction"]
    dead = alive[~(alive > min_fraction)]
    if len(dead):
        listed = ", ".join(f"`{layer}` {share:.0%}" for layer, share in dead.items())
        what = "alive units (non-zero for some example)" if per == "unit" else "non-zero output values"
        raise failure("check_units_alive",
                      f"{len(dead)} layer(s) have at most {min_fraction:.0%} {what}: {listed}",
                      f"{type(model).__name__}, layers {list(dead.index)}",
                      "lower the learning rate (dead ReLUs), use He (kaiming) initialisation, "
                      "LeakyReLU or batch norm before the activation, and check the input scaling")
    return table
