"""Argument checks: the one place where companion's error messages are made.

Every public function validates its inputs with these helpers, so that every
message follows one template::

    Expected `lr` to be a float > 0, but got -0.1.

Values and shapes raise :class:`ValueError`; wrong types raise :class:`TypeError`.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sized
from numbers import Integral, Real
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")


def message(
    name: str | tuple[str, ...],
    requirement: str,
    got: Any,
    *,
    found: str | None = None,
    verb: str = "be",
) -> str:
    """Return the error message ``Expected `name` to be requirement, but got got.``

    ``found`` adds what was wrong inside ``got`` when its description alone does not
    show it: ``Expected `x` to be finite, but got a tensor of shape (3,) ...: found nan at [1].``
    A tuple of names compares arguments, with one value each in ``got``, and ``verb``
    replaces "be" where the requirement is something they have:
    ``Expected `X` and `y` to have the same length, but got 3 and 4.``
    Long values are shortened to their two ends and their length, so a message stays short.

    Example:
        >>> message("lr", "a float > 0", -0.1)
        'Expected `lr` to be a float > 0, but got -0.1.'
        >>> message(("X", "y"), "the same length", (3, 4), verb="have")
        'Expected `X` and `y` to have the same length, but got 3 and 4.'
    """
    if isinstance(name, tuple):
        subject = " and ".join(f"`{part}`" for part in name)
        described = " and ".join(_describe(part) for part in got)
    else:
        subject, described = f"`{name}`", _describe(got)
    text = f"Expected {subject} to {verb} {requirement}, but got {described}"
    return f"{text}: found {found}." if found else f"{text}."


def missing_extra(extra: str, error: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error for an optional dependency that is not installed: which extra brings it.

    Raise it ``from`` the original error, where the optional imports are made::

        try:
            import duckdb
        except ModuleNotFoundError as error:
            raise missing_extra("warehouse", error) from error
    """
    return ModuleNotFoundError(
        f"Expected the optional dependency `{error.name}` to be installed, but got none: "
        f"run pip install 'companion[{extra}]' (or install {error.name} yourself).",
        name=error.name,
    )


_LONGEST = 80  # characters of a value's repr that a message quotes; longer ones keep their two ends
# (strings, bytes, ints) or give way to the value's type (other objects, and reprs of several lines)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, os.PathLike):  # a path is what the user must find: never shortened
        return repr(os.fspath(value))
    is_int = isinstance(value, Integral) and not isinstance(value, bool)
    try:
        text = repr(value)
    except ValueError:
        if not is_int:
            raise
        return f"an int of more than {sys.get_int_max_str_digits()} digits"  # too long for repr()
    if len(text) <= _LONGEST and "\n" not in text:
        return text
    if isinstance(value, str):
        size = f"{len(value)} characters"
    elif isinstance(value, (bytes, bytearray)):
        size = f"{len(value)} bytes"
    elif is_int:
        size = f"{len(str(abs(int(value))))} digits"
    else:
        return f"an object of type {type(value).__name__}"
    return f"{text[:50]}...{text[-25:]} ({size})"


def _bounds_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        return f" in {left}{low}, {high}{right}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None
) -> int:
    """Check that ``value`` is an int (not a bool) within ``[low, high]``; return it."""
    requirement = "an int" + _bounds_text(low, high, False, False)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(message(name, requirement, value))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(message(name, requirement, value))
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that ``value`` is a finite real number within the given bounds; return it.

    ``low_open``/``high_open`` exclude the bound itself: ``check_float("lr", lr,
    low=0, low_open=True)`` asks for a float > 0.
    """
    requirement = "a float" + _bounds_text(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(message(name, requirement, value))
    try:
        value = float(value)
    except OverflowError:  # an int beyond float's range
        raise ValueError(message(name, requirement, value)) from None
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or math.isinf(value) or too_low or too_high:
        raise ValueError(message(name, requirement, value))
    return value


def check_choice(name: str, value: Any, choices: Iterable[T]) -> T:
    """Check that ``value`` is one of ``choices``; return it."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(message(name, f"one of {options}", value))
    return value


def check_instance(name: str, value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """Check ``isinstance(value, types)``; ``what`` names the type in the message."""
    if not isinstance(value, types):
        raise TypeError(message(name, what, value))
    return value


def check_callable(name: str, value: Any) -> Any:
    """Check that ``value`` can be called."""
    if not callable(value):
        raise TypeError(message(name, "callable", value))
    return value


def as_tensor(name: str, value: Any, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Turn a tensor, array or sequence into a tensor, with a clear error if that fails."""
    if isinstance(value, torch.Tensor):
        return value if dtype is None else value.to(dtype)
    try:
        array = np.asarray(value)
        if array.dtype == object:
            raise ValueError
        if not array.flags.writeable:  # e.g. pandas' views: torch would share them and warn
            array = array.copy()
        return torch.as_tensor(array, dtype=dtype)
    except (TypeError, ValueError):
        raise TypeError(message(name, "a tensor, array or sequence of numbers", value)) from None


def check_tensor(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    floating: bool = False,
    finite: bool = False,
    non_empty: bool = True,
) -> torch.Tensor:
    """Check a tensor's type, number of dimensions, dtype and values; return it.

    Args:
        name: the argument's name, for the message.
        value: the tensor to check (arrays are not accepted here: see :func:`as_tensor`).
        ndim: allowed number(s) of dimensions.
        floating: require a floating-point dtype.
        finite: require every element of a floating-point or complex tensor to be finite
            (no NaN or Inf in either part).
        non_empty: require at least one element.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(message(name, "a torch.Tensor", value))
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            dims = " or ".join(str(d) for d in allowed)
            raise ValueError(message(name, f"a tensor with {dims} dimensions", value))
    if floating and not value.is_floating_point():
        raise TypeError(message(name, "a floating-point tensor", value))
    if non_empty and value.numel() == 0:
        raise ValueError(message(name, "a non-empty tensor", value))
    if finite and (value.is_floating_point() or value.is_complex()) and not torch.isfinite(value).all():
        raise ValueError(message(name, "a tensor of finite values (no NaN or Inf)", value))
    return value


def check_same_length(name_a: str, a: Sized, name_b: str, b: Sized) -> int:
    """Check that two sequences (or tensors, arrays: their first dimension) have the same length; return it."""
    length_a, length_b = _length(name_a, a), _length(name_b, b)
    if length_a != length_b:
        raise ValueError(message((name_a, name_b), "the same length", (length_a, length_b), verb="have"))
    return length_a


def _length(name: str, value: Any) -> int:
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        kind = "a tensor" if isinstance(value, torch.Tensor) else "an array"
        raise ValueError(message(name, f"{kind} with at least 1 dimension", value))
    try:
        return len(value)
    except TypeError:
        raise TypeError(message(name, "a sequence with a length", value)) from None
