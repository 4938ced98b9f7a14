"""Seeds, devices, timing, model modes and safe files: the small utilities every module uses."""

from __future__ import annotations

import os
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from companion._validation import check_callable, check_instance, check_int, message

__all__ = [
    "seed_everything",
    "get_device",
    "Timer",
    "interleaved_times",
    "interleaved_medians",
    "model_device",
    "eval_mode",
    "atomic_write",
    "free_port",
]


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


def interleaved_times(
    functions: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = 7,
    warmup: int = 1,
    shuffle: bool = True,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, list[float]]:
    """Time several functions in turns and return every call's seconds, per function.

    Timing claims compare things, and a machine that other processes load slows
    whatever runs while they run. Calling the functions in turns puts every
    contender in the same windows of load; shuffling the order of each round (with
    ``shuffle=True``) also keeps one function from always running right after
    another that warms or trashes the caches for it. Summarise the samples with a
    median (or a high percentile for latency tails) and compare with a margin;
    never compare a time with a fixed number of seconds.

    Args:
        functions: name -> a function of no arguments to time; at least one.
        repeats: timed calls per function, an int >= 1.
        warmup: untimed rounds first (caches, connections, lazy initialisation), an int >= 0.
        shuffle: a new random order in each round (else the order of ``functions``).
        seed: seeds the order's shuffling, an int >= 0, so a run repeats.
        device: with a CUDA device, synchronize around each call.

    Returns:
        name -> the ``repeats`` timed seconds, in the order they were measured.

    Example:
        >>> times = interleaved_times({"a": lambda: None, "b": lambda: None}, repeats=3)
        >>> [len(seconds) for seconds in times.values()]
        [3, 3]
    """
    check_instance("functions", functions, Mapping, "a mapping of names to functions")
    if not functions:
        raise ValueError(message("functions", "a mapping with at least one function", functions))
    for name, function in functions.items():
        check_callable(f"functions[{name!r}]", function)
    repeats = check_int("repeats", repeats, low=1)
    warmup = check_int("warmup", warmup, low=0)
    check_instance("shuffle", shuffle, bool, "a bool")
    order = random.Random(check_int("seed", seed, low=0))
    device = get_device(device) if device is not None else None
    names = list(functions)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + repeats):
        if shuffle:
            order.shuffle(names)
        for name in names:
            with Timer(device) as timer:
                functions[name]()
            if round_ >= warmup:
                seconds[name].append(timer.seconds)
    return {name: seconds[name] for name in functions}


def interleaved_medians(
    functions: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = 7,
    warmup: int = 1,
    shuffle: bool = True,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """The median seconds per call of each function, timed in turns by :func:`interleaved_times`.

    The median of the repeats ignores the few windows a burst of load spoils.

    Returns:
        name -> median seconds of one call, in the order of ``functions``.

    Example:
        >>> times = interleaved_medians({"short": lambda: sum(range(10)),
        ...                              "long": lambda: sum(range(100_000))}, repeats=5)
        >>> times["long"] > times["short"]
        True
    """
    samples = interleaved_times(functions, repeats=repeats, warmup=warmup, shuffle=shuffle,
                                seed=seed, device=device)
    return {name: statistics.median(values) for name, values in samples.items()}


def model_device(model: nn.Module, *, default: torch.device | str | None = None) -> torch.device:
    """The device a model's parameters (or, without any, its buffers) live on.

    A model with neither (``nn.ReLU()``, ``nn.Identity()``) has no device of its own:
    the answer is ``default``, or the CPU.

    Example:
        >>> model_device(nn.Linear(2, 1))
        device(type='cpu')
        >>> model_device(nn.ReLU(), default="cpu")
        device(type='cpu')
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return get_device(default) if default is not None else torch.device("cpu")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for a ``with`` block, then restore each submodule's own mode.

    Restoring per submodule matters: a model whose backbone was frozen in eval mode
    while its head trains comes back exactly as it was, not all in train mode.

    Example:
        >>> model = nn.Sequential(nn.Dropout(0.5)).train()
        >>> with eval_mode(model):
        ...     model.training
        False
        >>> model.training
        True
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file so that readers and crashes see the old file or the new one, never half.

    ``write(file)`` fills a temporary file in the same folder; it is flushed to
    disk, renamed over ``path`` in one step (``os.replace``), and the folder is
    synced so that the rename itself survives a power cut. The folder is created
    if missing; on any error the temporary file is removed and ``path`` is untouched.

    Args:
        path: the destination file.
        write: a function that writes the content to the binary file it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "note.txt"
        >>> _ = atomic_write(target, lambda f: f.write(b"hello"))
        >>> target.read_bytes()
        b'hello'
    """
    check_callable("write", write)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename durable
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that no one listens on right now (the OS picks it).

    Another process may take the port before you bind it; callers that can should
    bind port 0 themselves and read the port back.

    Example:
        >>> 0 < free_port() < 65536
        True
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
