"""Checkpoints: a model's weights and optimizer state, saved atomically and loaded safely.

:func:`save_checkpoint` writes through :func:`companion.utils.atomic_write`, so a
crash mid-save leaves the previous checkpoint intact; :func:`load_checkpoint` reads
with ``torch.load(weights_only=True)``, which refuses to run pickled code.
Training (:func:`companion.training.fit`'s callers) and distributed jobs both use them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion._validation import check_instance, message
from companion.utils import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save weights (and optimizer state) atomically: a crash never leaves half a file.

    Args:
        path: destination file; its folder is created if missing.
        model: whose ``state_dict`` to save.
        optimizer: whose ``state_dict`` to save too, if given.
        epoch: the epoch the checkpoint was taken at.
        extra: more plain values (numbers, strings, lists, dicts, tensors) to store.

    Returns:
        The checkpoint's path.

    Example:
        >>> import tempfile
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "m.pt", nn.Linear(2, 1), epoch=3)
        >>> load_checkpoint(path, nn.Linear(2, 1))["epoch"]
        3
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": epoch,
        "extra": dict(extra or {}),
    }
    return atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    map_location: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Returns:
        ``{"epoch": ..., "extra": {...}}`` as saved.
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(message("path", "an existing checkpoint file", str(path)))
    payload = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(payload["model"])
    if optimizer is not None:
        if payload["optimizer"] is None:
            raise ValueError(
                message("optimizer", "None for a checkpoint saved without optimizer state", "an optimizer")
            )
        optimizer.load_state_dict(payload["optimizer"])
    return {"epoch": payload["epoch"], "extra": payload["extra"]}
