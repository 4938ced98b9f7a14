"""Tables from what callers hand in: a DataFrame, a mapping of columns, or a 2-D array.

Functions that read features or evaluation rows by column name accept any of these;
:func:`as_frame` turns each into a :class:`pandas.DataFrame`, and :func:`as_column`
turns one column into a NumPy array, with the package's one message template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from companion._validation import as_tensor, message

__all__ = ["as_column", "as_frame"]

_TABLE = "a table: a DataFrame, a mapping of column names to 1-D columns, or a 2-D array or tensor"


def as_column(name: str, value: Any, length: int | None = None) -> np.ndarray:
    """One value per example, from a 1-D tensor, array or list, as a NumPy array.

    Args:
        name: the argument's name, for the message.
        value: the column.
        length: the number of values it must have, or ``None``.

    Example:
        >>> as_column("x", torch.tensor([1, 2])).tolist()
        [1, 2]
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(message(name, "one value per example (a 1-D column)", array))
    if length is not None and len(array) != length:
        raise ValueError(message(name, f"a column of {length} values, like the other columns", array))
    return array


def as_frame(name: str, data: Any, *, feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    """A DataFrame from a DataFrame (returned as is), a mapping of columns, or a 2-D array.

    Args:
        name: the argument's name, for the message.
        data: a DataFrame; a mapping of column names to 1-D tensors, arrays or lists
            of equal length; or a 2-D array, tensor or nested list ``(N, F)``.
        feature_names: the ``F`` column names of a 2-D input; ``x0, x1, ...`` by default.

    Example:
        >>> as_frame("data", {"a": torch.tensor([1, 2]), "b": [0.5, 1.5]}).to_dict("list")
        {'a': [1, 2], 'b': [0.5, 1.5]}
        >>> list(as_frame("data", torch.zeros(3, 2)).columns)
        ['x0', 'x1']
    """
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        columns: dict[str, np.ndarray] = {}
        length = None
        for key, value in data.items():
            columns[str(key)] = as_column(f"{name}[{key!r}]", value, length)
            length = len(columns[str(key)])
        return pd.DataFrame(columns)
    if isinstance(data, str) or not isinstance(data, (np.ndarray, torch.Tensor, Sequence)):
        raise TypeError(message(name, _TABLE, data))
    array = data if isinstance(data, np.ndarray) else as_tensor(name, data).detach().cpu().numpy()
    if array.ndim != 2:
        raise ValueError(message(name, _TABLE, data))
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ValueError(message("feature_names", f"{array.shape[1]} names, one per column", names))
    return pd.DataFrame(array, columns=names)
