"""Seeds, devices and timing: the small utilities every notebook uses."""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import numpy as np
import torch

from companion._validation import check_callable, check_instance, check_int, message

__all__ = ["seed_everything", "get_device", "Timer", "interleaved_medians"]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random number generators.

    After this call a CPU run repeats bit for bit: same data order, same initial
    weights, same result. (On CUDA, some kernels are non-deterministic unless
    ``torch.use_deterministic_algorithms(True)`` is also set.)

    Args:
        seed: an int in ``[0, 2**32 - 1]``.

    Example:
        >>> seed_everything(0); a = torch.rand(2)
        >>> seed_everything(0); b = torch.rand(2)
        >>> bool(torch.equal(a, b))
        True
    """
    seed = check_int("seed", seed, low=0, high=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA generators too
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses started from here


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` as a :class:`torch.device`, or the best one available.

    With ``device=None`` this is CUDA when a GPU is present, else Apple's MPS, else
    the CPU. Every companion function that takes ``device=None`` calls this.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(message("device", "a device such as 'cpu' or 'cuda'", device)) from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Timer:
    """Context manager that measures wall-clock seconds, synchronizing CUDA.

    Example:
        >>> with Timer() as t:
        ...     _ = sum(range(1000))
        >>> t.seconds >= 0
        True
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else None
        self.seconds: float = float("nan")
        self._start = 0.0

    def _sync(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> Timer:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start


def interleaved_medians(
    functions: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = 7,
    warmup: int = 1,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Time several functions in turns and return each one's median seconds per call.

    Timing claims compare things, and a machine that other processes load slows
    whatever runs while they run. Calling the functions round-robin (A, B, C, A, B,
    C, ...) puts every contender in the same windows of load, and the median of
    the repeats ignores the few windows a burst of load spoils. Compare the
    medians with a margin; never compare a time with a fixed number of seconds.

    Args:
        functions: name -> a function of no arguments to time; at least one.
        repeats: timed calls per function, an int >= 1 (odd numbers give a true median).
        warmup: untimed calls per function first (caches, lazy initialisation), an int >= 0.
        device: with a CUDA device, synchronize around each call.

    Returns:
        name -> median seconds of one call, in the order of ``functions``.

    Example:
        >>> times = interleaved_medians({"short": lambda: sum(range(10)),
        ...                              "long": lambda: sum(range(100_000))}, repeats=5)
        >>> times["long"] > times["short"]
        True
    """
    check_instance("functions", functions, Mapping, "a mapping of names to functions")
    if not functions:
        raise ValueError(message("functions", "a mapping with at least one function", functions))
    for name, function in functions.items():
        check_callable(f"functions[{name!r}]", function)
    repeats = check_int("repeats", repeats, low=1)
    warmup = check_int("warmup", warmup, low=0)
    device = get_device(device) if device is not None else None
    for _ in range(warmup):
        for function in functions.values():
            function()
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            with Timer(device) as timer:
                function()
            seconds[name].append(timer.seconds)
    return {name: statistics.median(values) for name, values in seconds.items()}
