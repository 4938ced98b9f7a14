"""Seeds, devices and timing: the small utilities every notebook uses."""

from __future__ import annotations

import os
import random
import time
from types import TracebackType

import numpy as np
import torch

from companion._validation import check_int, message

__all__ = ["seed_everything", "get_device", "Timer"]


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
