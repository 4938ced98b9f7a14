"""Checkpoints: a model's weights and optimizer state, saved atomically and loaded safely.

:func:`save_checkpoint` writes through :func:`companion.utils.atomic_write`, so a
crash mid-save leaves the previous checkpoint intact, and it refuses values that the
safe load could not read back. :func:`load_checkpoint` reads with
``torch.load(weights_only=True)``, which refuses to run pickled code, and checks the
whole checkpoint against the model (and optimizer) before it changes either.
Training (:func:`companion.training.fit`'s callers) and distributed jobs both use them.
"""

from __future__ import annotations

import datetime
import os
from collections import Counter, OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from companion._validation import check_instance, check_int, message
from companion.utils import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]

_KEYS = ("model", "optimizer", "epoch", "extra")
_OURS = "a checkpoint written by save_checkpoint"

# What torch.load(weights_only=True) reads back without extra allowlisting (the allowlist in
# torch/_weights_only_unpickler.py), by exact type: subclasses such as NumPy's float64 or an
# IntEnum pickle under their own names, which the safe load refuses.
_LEAVES = (
    type(None), bool, int, float, complex, str, bytes, bytearray,
    torch.Tensor, nn.Parameter, torch.dtype, torch.device, torch.Size,
)
_SEQUENCES = (list, tuple, set)
_MAPPINGS = (dict, OrderedDict, Counter)
_LOADABLE = (
    "a value torch.load(weights_only=True) reads back (None, bool, int, float, complex, str, bytes, "
    "a tensor, torch.dtype/device/Size, or a list, tuple, set or dict of these)"
)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save weights (and optimizer state) atomically: a crash never leaves half a file.

    Everything saved must be something :func:`load_checkpoint`'s safe load reads back:
    a value that is not (a NumPy number or array, a ``Path``, a ``datetime``, any other
    object) raises a :class:`TypeError` naming where it sits, before anything is written.

    Args:
        path: destination file; its folder is created if missing.
        model: whose ``state_dict`` to save.
        optimizer: whose ``state_dict`` to save too, if given.
        epoch: the epoch the checkpoint was taken at (an int >= 0).
        extra: more plain values to store: None, bool, int, float, complex, str, bytes,
            tensors, ``torch.dtype``/``device``/``Size``, and lists, tuples, sets and dicts of
            these. Convert the rest first: ``x.item()`` for a NumPy number,
            ``torch.from_numpy(a)`` for an array, ``str(p)`` for a path, ``d.isoformat()`` for a date.

    Returns:
        The checkpoint's path.

    Example:
        >>> import tempfile
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "m.pt", nn.Linear(2, 1), epoch=3)
        >>> load_checkpoint(path, nn.Linear(2, 1))["epoch"]
        3
        >>> save_checkpoint(path, nn.Linear(2, 1), extra={"loss": np.float64(0.5)})
        Traceback (most recent call last):
        ...
        TypeError: Expected `extra['loss']` to be a value torch.load(weights_only=True) reads back
        ... but got np.float64(0.5): found a numpy.float64, ...; convert it first with x.item().
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    if optimizer is not None:
        check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    if epoch is not None:
        epoch = check_int("epoch", epoch, low=0)
    if extra is not None:
        check_instance("extra", extra, Mapping, "a mapping of names to values")
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": epoch,
        "extra": dict(extra or {}),
    }
    _check_loadable("model.state_dict()", payload["model"])
    _check_loadable("optimizer.state_dict()", payload["optimizer"])
    _check_loadable("extra", payload["extra"])
    return atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    map_location: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Everything is checked before anything is changed: on any error ``model`` and
    ``optimizer`` are left exactly as they were.

    Args:
        path: the checkpoint file.
        model: the module to load the weights into; it must have the saved architecture
            (the same parameter and buffer names and shapes).
        optimizer: an optimizer over the same parameter groups to load its state into; the
            checkpoint must have been saved with one.
        map_location: where to put the loaded tensors (``torch.load``'s argument).

    Returns:
        ``{"epoch": ..., "extra": {...}}`` as saved.

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ValueError: if the file is not a checkpoint written by :func:`save_checkpoint`
            (corrupt, truncated, another program's, or holding pickled code), or it does not
            fit ``model`` or ``optimizer``.

    Example:
        >>> import tempfile
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "m.pt", nn.Linear(2, 1), extra={"note": "x"})
        >>> load_checkpoint(path, nn.Linear(2, 1))
        {'epoch': None, 'extra': {'note': 'x'}}
        >>> load_checkpoint(path, nn.Linear(3, 1))
        Traceback (most recent call last):
        ...
        ValueError: Expected `model` to be the architecture the checkpoint was saved from, ...
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    if optimizer is not None:
        check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(message("path", "an existing checkpoint file", path))
    payload = _read(path, map_location)
    _check_fits_model(payload["model"], model)
    if optimizer is not None:
        _check_fits_optimizer(payload["optimizer"], optimizer)
    model.load_state_dict(payload["model"])
    if optimizer is not None:
        optimizer.load_state_dict(payload["optimizer"])
    return {"epoch": payload["epoch"], "extra": payload["extra"]}


def _check_loadable(name: str, value: Any) -> None:
    """Raise a TypeError naming the first value under ``name`` that the safe load would refuse."""
    kind = type(value)
    if kind in _LEAVES:
        return
    if kind in _SEQUENCES:
        for index, item in enumerate(value):
            _check_loadable(f"{name} (an element)" if kind is set else f"{name}[{index}]", item)
        return
    if kind in _MAPPINGS:
        for key, item in value.items():
            _check_loadable(f"{name} (a key)", key)
            _check_loadable(f"{name}[{key!r}]", item)
        return
    if isinstance(value, np.generic):
        advice = "with x.item()"
    elif isinstance(value, np.ndarray):
        advice = "with torch.from_numpy(x) or x.tolist()"
    elif isinstance(value, os.PathLike):
        advice = "with str(x)"
    elif isinstance(value, (datetime.date, datetime.time)):
        advice = "with x.isoformat()"
    else:
        advice = "to one of these types"
    found = f"a {kind.__module__}.{kind.__qualname__}, which it refuses; convert it first {advice}"
    raise TypeError(message(name, _LOADABLE, value, found=found))


def _read(path: Path, map_location: str | torch.device | None) -> dict[str, Any]:
    """The checkpoint's payload, or a ValueError saying why ``path`` is not one of ours."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, MemoryError):
        raise
    except Exception as error:  # foreign bytes make torch.load raise many kinds: all mean "not ours"
        found = f"torch.load(weights_only=True) failed with {_summary(error)}"
        raise ValueError(message("path", _OURS, path, found=found)) from error
    problem = _payload_problem(payload)
    if problem is not None:
        raise ValueError(message("path", _OURS, path, found=problem))
    return payload


def _summary(error: Exception) -> str:
    """The error's type and its telling line, without torch's advice to load unsafely."""
    text = str(error).split("WeightsUnpickler error:")[-1]
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = line.split(". ")[0].rstrip(".")
    if len(line) > 160:
        line = line[:160] + "..."
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def _payload_problem(payload: Any) -> str | None:
    """What makes ``payload`` not the dict :func:`save_checkpoint` writes, or None."""
    if not isinstance(payload, dict):
        return f"a {type(payload).__name__} instead of the dict save_checkpoint writes"
    if set(payload) != set(_KEYS):
        keys = ", ".join(sorted(map(repr, payload))[:6])
        return f"a dict with keys {keys or 'none'} instead of {', '.join(_KEYS)}"
    optimizer = payload["optimizer"]
    optimizer_ok = optimizer is None or (
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("state"), dict)
        and isinstance(optimizer.get("param_groups"), list)
        and all(isinstance(group, dict) and isinstance(group.get("params"), list)
                for group in optimizer["param_groups"])
    )
    if (
        not isinstance(payload["model"], dict)
        or not optimizer_ok
        or not (payload["epoch"] is None or type(payload["epoch"]) is int)
        or not isinstance(payload["extra"], dict)
    ):
        kinds = ", ".join(f"{key}: {type(payload[key]).__name__}" for key in _KEYS)
        return f"the keys save_checkpoint writes holding other values ({kinds})"
    return None


def _check_fits_model(saved: dict[str, Any], model: nn.Module) -> None:
    """Raise a ValueError unless ``saved`` has exactly ``model``'s names and shapes."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    reshaped = [
        f"{key} of shape {_shape(saved[key])} in the checkpoint but {_shape(value)} in the model"
        for key, value in expected.items()
        if key in saved and isinstance(value, torch.Tensor) and _shape(saved[key]) != _shape(value)
    ]
    problems = [f"{what} {_names(keys)}" for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
    problems += reshaped[:5]
    if problems:
        raise ValueError(
            message("model", "the architecture the checkpoint was saved from", model, found="; ".join(problems))
        )


def _check_fits_optimizer(saved: dict[str, Any] | None, optimizer: torch.optim.Optimizer) -> None:
    """Raise a ValueError unless ``saved`` is optimizer state with ``optimizer``'s parameter groups."""
    if saved is None:
        raise ValueError(
            message("optimizer", "None for a checkpoint saved without optimizer state", optimizer)
        )
    saved_sizes = [len(group["params"]) for group in saved["param_groups"]]
    sizes = [len(group["params"]) for group in optimizer.param_groups]
    if saved_sizes != sizes:
        raise ValueError(
            message(
                "optimizer",
                "an optimizer over the parameter groups the checkpoint was saved with",
                optimizer,
                found=f"parameter groups of sizes {saved_sizes} in the checkpoint but {sizes} in the optimizer",
            )
        )


def _shape(value: Any) -> tuple[int, ...] | str:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else f"none (a {type(value).__name__})"


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return f"{shown} and {len(keys) - 5} more" if len(keys) > 5 else shown
