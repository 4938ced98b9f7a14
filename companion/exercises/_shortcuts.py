"""Switching shortcuts off while an answer runs, for exercises that forbid them.

A grader that forbids, say, ``torch.softmax`` does not read the reader's source:
it runs the answer with the shortcut replaced by a stub that raises, and then puts
the original back (also when the answer fails). Stubs are installed on the objects
that every spelling goes through (``torch.nn.functional.softmax`` calls
``Tensor.softmax``; ``Tensor.backward``, ``torch.autograd.grad`` and ``torch.func``
all run the autograd engine), so ``F.softmax``, ``z.softmax`` and ``.backward()``
are caught whichever way the reader imported them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from companion._validation import check_callable, check_instance, message

SOFTMAX: tuple[str, ...] = (
    "torch.softmax",
    "torch.log_softmax",
    "torch.special.softmax",
    "torch.special.log_softmax",
    "torch.nn.functional.softmax",
    "torch.nn.functional.log_softmax",
    "torch.Tensor.softmax",
    "torch.Tensor.log_softmax",
)
"""Every public softmax of PyTorch (``nn.Softmax`` goes through ``F.softmax``)."""

AUTOGRAD: tuple[str, ...] = (
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.Tensor.backward",
    "torch.autograd.variable.Variable._execution_engine",
    "torch.autograd.forward_ad.make_dual",
    "torch.func.grad",
    "torch.func.grad_and_value",
    "torch.func.vjp",
    "torch.func.jvp",
    "torch.func.jacrev",
    "torch.func.jacfwd",
)
"""Reverse- and forward-mode automatic differentiation, however it is spelled."""


class ShortcutUsed(RuntimeError):
    """Raised inside an answer that called a shortcut the exercise forbids."""


class _Blocked:
    """Stands in for a forbidden function (or the autograd engine): any use raises."""

    def __init__(self, name: str, used: list[str]) -> None:
        self._name = name
        self._used = used

    def _raise(self, *args: Any, **kwargs: Any) -> Any:
        self._used.append(self._name)
        raise ShortcutUsed(f"{self._name} is switched off for this exercise.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._raise()

    def __get__(self, instance: Any, owner: Any = None) -> Any:  # a class attribute: z.softmax(...)
        return self

    def __getattr__(self, attribute: str) -> Any:  # the engine: Variable._execution_engine.run_backward
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return self._raise


def _owner(path: str) -> tuple[Any, str]:
    """The object holding the last name of a dotted path, and that name."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:-1]:
            owner = getattr(owner, part)
        return owner, parts[-1]
    raise ValueError(message("path", "a dotted path that starts with a module", path))


@contextmanager
def forbidden(paths: Sequence[str]) -> Iterator[list[str]]:
    """Replace each dotted path by a stub that raises :class:`ShortcutUsed` while inside.

    Yields the list of the paths the code inside called (in call order); every
    original is restored on exit, also when the code inside raised. A path whose
    module is not installed is skipped.

    Args:
        paths: dotted names such as ``"torch.softmax"`` or ``"torch.Tensor.backward"``.

    Example:
        >>> import torch
        >>> with forbidden(["torch.softmax"]) as used:
        ...     try:
        ...         torch.softmax(torch.zeros(2), dim=0)
        ...     except ShortcutUsed:
        ...         pass
        >>> used, torch.softmax(torch.zeros(2), dim=0).tolist()
        (['torch.softmax'], [0.5, 0.5])
    """
    check_instance("paths", paths, (list, tuple), "a list of dotted names")
    used: list[str] = []
    saved: list[tuple[Any, str, bool, Any]] = []
    try:
        for path in paths:
            try:
                owner, name = _owner(path)
            except (ValueError, AttributeError):
                continue
            own = vars(owner)
            had = name in own
            saved.append((owner, name, had, own.get(name)))
            setattr(owner, name, _Blocked(path, used))
        yield used
    finally:
        for owner, name, had, original in reversed(saved):
            if had:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


def call_without(paths: Sequence[str], answer: Callable[..., Any], *args: Any) -> tuple[Any, list[str]]:
    """Run ``answer(*args)`` with ``paths`` switched off; return its result and the shortcuts it called.

    When the answer called a forbidden shortcut, the result is ``None`` and the list
    names it; any other error of the answer propagates (:func:`check` reports it).

    Example:
        >>> import torch
        >>> call_without(["torch.softmax"], lambda z: torch.softmax(z, dim=0), torch.zeros(2))
        (None, ['torch.softmax'])
    """
    check_callable("answer", answer)
    with forbidden(paths) as used:
        try:
            result = answer(*args)
        except ShortcutUsed:
            result = None
    return (None if used else result), list(used)
