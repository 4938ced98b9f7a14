"""What every figure shares: the Axes it draws on and the checks of what it is given.

A plot function checks its arguments with these helpers before it draws anything, so
a wrong argument fails with the package's one message (:mod:`companion._validation`),
``Expected `scores` to be a non-empty mapping ..., but got None.``, instead of deep
inside matplotlib; and no figure is opened for a call that fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes

from companion._validation import as_tensor, check_instance, check_tensor, message

__all__ = [
    "LOG_AXIS",
    "axes_for",
    "as_values",
    "require_values",
    "check_mapping",
    "values_by_key",
    "check_frame",
    "tick_names",
]

LOG_AXIS = "values > 0 (the axis is logarithmic)"
"""The requirement on values drawn on a logarithmic axis, for :func:`require_values`."""


def axes_for(ax: Any, figsize: tuple[float, float] = (6, 3.5)) -> Axes:
    """``ax`` itself, or the Axes of a new ``figsize`` figure when ``ax`` is ``None``.

    Call it after the other arguments are checked, so that a failing call opens no figure.

    Example:
        >>> axes_for(None, (2, 2)).figure.get_size_inches().tolist()
        [2.0, 2.0]
        >>> axes_for("left")
        Traceback (most recent call last):
        ...
        TypeError: Expected `ax` to be a matplotlib Axes or None, but got 'left'.
    """
    if ax is None:
        return plt.subplots(figsize=figsize)[1]
    return check_instance("ax", ax, Axes, "a matplotlib Axes or None")


def as_values(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...] | None = 1,
    finite: bool = False,
    dtype: torch.dtype | None = torch.float64,
) -> np.ndarray:
    """A tensor, array, list or pandas Series of numbers as a non-empty NumPy array.

    Args:
        name: the argument's name, for the message.
        value: the numbers (a tensor may need gradients or live on a GPU).
        ndim: allowed number(s) of dimensions; ``None`` for any.
        finite: refuse NaN and Inf.
        dtype: the dtype to convert to; ``None`` keeps the given one (e.g. integer counts).

    Raises:
        TypeError: ``value`` is not numbers.
        ValueError: ``value`` is empty, has another number of dimensions, or (with
            ``finite``) holds NaN or Inf.

    Example:
        >>> as_values("losses", [0.5, 0.25])
        array([0.5 , 0.25])
        >>> as_values("losses", [[0.5, 0.25]])
        Traceback (most recent call last):
        ...
        ValueError: Expected `losses` to be a tensor with 1 dimensions, but got a tensor of shape (1, 2) and dtype torch.float64.
    """
    if isinstance(value, (pd.Series, pd.Index, pd.DataFrame)):
        value = value.to_numpy(copy=True)  # pandas may share read-only arrays, which torch warns about
    tensor = check_tensor(name, as_tensor(name, value, dtype=dtype), ndim=ndim, finite=finite)
    return tensor.detach().cpu().numpy()


def require_values(name: str, values: np.ndarray, ok: np.ndarray, requirement: str) -> None:
    """Raise a ValueError naming the first element of ``values`` where ``ok`` is False.

    Example:
        >>> sizes = np.array([8.0, 0.0])
        >>> require_values("sizes", sizes, sizes > 0, LOG_AXIS)
        Traceback (most recent call last):
        ...
        ValueError: Expected `sizes` to be values > 0 (the axis is logarithmic), but got an array of shape (2,) and dtype float64: found 0.0 at [1].
    """
    bad = np.argwhere(~np.asarray(ok, dtype=bool))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        found = f"{values[index].item()!r} at {list(index)}"
        raise ValueError(message(name, requirement, values, found=found))


def check_mapping(name: str, value: Any, what: str) -> Mapping[Any, Any]:
    """Check that ``value`` is a non-empty mapping; ``what`` describes it, e.g. ``{name: scores}``.

    Example:
        >>> check_mapping("scores", {}, "{model name: scores}")
        Traceback (most recent call last):
        ...
        ValueError: Expected `scores` to be a non-empty mapping {model name: scores}, but got {}.
    """
    requirement = f"a non-empty mapping {what}"
    check_instance(name, value, Mapping, requirement)
    if not value:
        raise ValueError(message(name, requirement, value))
    return value


def values_by_key(
    name: str,
    mapping: Any,
    what: str,
    *,
    ndim: int | tuple[int, ...] | None = 1,
    finite: bool = False,
) -> dict[Any, np.ndarray]:
    """A non-empty mapping of keys to numbers, each value checked by :func:`as_values`.

    Example:
        >>> values_by_key("curves", {"adam": [0.5, 0.25]}, "{label: losses}")
        {'adam': array([0.5 , 0.25])}
        >>> values_by_key("curves", {"adam": None}, "{label: losses}")
        Traceback (most recent call last):
        ...
        TypeError: Expected `curves['adam']` to be a tensor, array or sequence of numbers, but got None.
    """
    check_mapping(name, mapping, what)
    return {
        key: as_values(f"{name}[{key!r}]", value, ndim=ndim, finite=finite)
        for key, value in mapping.items()
    }


def check_frame(name: str, frame: Any, columns: Iterable[str]) -> pd.DataFrame:
    """Check that ``frame`` is a DataFrame with at least one row and the given columns.

    Example:
        >>> check_frame("table", pd.DataFrame({"value": [0.9]}), ["start", "value"])
        Traceback (most recent call last):
        ...
        ValueError: Expected `table.columns` to be a list including ['start', 'value'], but got ['value'].
    """
    columns = list(columns)
    check_instance(name, frame, pd.DataFrame, "a pandas DataFrame")
    if not set(columns) <= set(frame.columns):
        raise ValueError(message(f"{name}.columns", f"a list including {columns}", list(frame.columns)))
    if len(frame) == 0:
        raise ValueError(message(f"len({name})", "an int >= 1", 0))
    return frame


def tick_names(name: str, names: Any, count: int) -> list[str]:
    """``count`` labels as strings: ``names``, or ``"0"`` to ``"count - 1"`` when it is empty.

    Example:
        >>> tick_names("class_names", (), 3)
        ['0', '1', '2']
        >>> tick_names("class_names", ["cat", "dog"], 3)
        Traceback (most recent call last):
        ...
        ValueError: Expected `class_names` to be 3 names (or none), but got ['cat', 'dog'].
    """
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(message(name, "a sequence of names", names))
    names = [str(n) for n in names]
    if not names:
        return [str(i) for i in range(count)]
    if len(names) != count:
        raise ValueError(message(name, f"{count} names (or none)", names))
    return names
