"""How a model check reports: the error it raises, the staleness warning, and their message.

A failed check raises :class:`ModelCheckError` with a message in three parts: what
failed, where (which parameter, layer, feature or file), and what to try. Bad
*arguments* raise ``ValueError``/``TypeError`` with the package's one message
template instead (see :mod:`companion._validation`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["ModelCheckError", "StaleModelWarning", "failure", "name_of", "shape_of"]


class ModelCheckError(AssertionError):
    """A model check failed. The message says what failed, where, and what to try.

    It subclasses :class:`AssertionError`, so the checks read naturally inside pytest.
    """

    __module__ = "companion.checks"  # where users import it from (and how tracebacks name it)


class StaleModelWarning(UserWarning):
    """The model's training data is older than the allowed age: retrain it."""

    __module__ = "companion.checks"


def failure(check: str, what: str, where: str, fix: str) -> ModelCheckError:
    """The error of a failed check, with its three-part message.

    Example:
        >>> print(failure("check_x", "the loss is nan", "the first batch", "lower the rate"))
        check_x failed: the loss is nan
          Where: the first batch
          Try: lower the rate
    """
    return ModelCheckError(f"{check} failed: {what}\n  Where: {where}\n  Try: {fix}")


def name_of(model: Any) -> str:
    """A model's name for a message: its class for a module, else its qualified name.

    Example:
        >>> name_of(nn.Linear(1, 1)), name_of(len)
        ('Linear', 'len')
    """
    return type(model).__name__ if isinstance(model, nn.Module) else getattr(
        model, "__qualname__", type(model).__name__)


def shape_of(value: Any) -> str:
    """A tensor's shape as a tuple string, or the type name of anything else.

    Example:
        >>> shape_of(torch.zeros(2, 3)), shape_of(1.0)
        ('(2, 3)', 'float')
    """
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__
