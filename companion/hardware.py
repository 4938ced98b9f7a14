"""Hardware choice: which device suits a workload, and how fast a model runs on one.

:func:`recommend_hardware` encodes the exam's guidance (when a CPU, a GPU or a TPU
suits a training job) and gives the reason for each answer.
:func:`measure_throughput` times a PyTorch or scikit-learn model on a device,
:func:`matrix_time_fraction` says how much of a PyTorch model's time is matrix
arithmetic (the work accelerators are built for), and :func:`peak_memory` measures
how much memory a function needs, in a fresh process.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import gc
import multiprocessing as mp
import os
import resource
import statistics
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from companion._validation import (
    check_callable,
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_tensor,
    message,
)
from companion.utils import Timer, get_device

__all__ = [
    "Recommendation",
    "Throughput",
    "Workload",
    "matrix_time_fraction",
    "measure_throughput",
    "peak_memory",
    "recommend_hardware",
]

FRAMEWORKS = ("pytorch", "tensorflow", "jax", "sklearn", "xgboost")
MODEL_SIZES = ("small", "medium", "large", "very_large")
CUSTOM_OPS = ("none", "some", "dominant")
SMALL_BATCH = 64
"""Effective batch sizes below this count as small."""
VERY_LARGE_BATCH = 1024
"""Effective batch sizes from this on count as very large."""
WEEK_HOURS = 7 * 24.0
"""Training that takes at least this many hours 'trains for weeks'."""
SHORT_HOURS = 1.0
"""Training shorter than this many hours 'does not take long'."""


@dataclass(frozen=True)
class Workload:
    """What a training job looks like, in the terms the hardware guidance uses.

    Attributes:
        framework: one of ``("pytorch", "tensorflow", "jax", "sklearn", "xgboost")``.
        model_size: ``"small"``, ``"medium"``, ``"large"`` or ``"very_large"``.
        batch_size: the effective (global) batch size, an int >= 1.
        training_hours: expected training time, a float > 0.
        prototyping: quick prototyping that needs maximum flexibility.
        custom_ops: custom operations (e.g. written in C++, running on the CPU) in
            the training loop: ``"none"``, ``"some"`` (a significant number) or
            ``"dominant"``.
        io_bound: limited by the I/O or network bandwidth of the host.
        matrix_dominated: the computation is dominated by matrix multiplications.
        source_available: the model's source exists and can reasonably be changed.
        tpu_ops_available: every op the model uses is available on TPU.
    """

    framework: str = "pytorch"
    model_size: str = "medium"
    batch_size: int = 128
    training_hours: float = 4.0
    prototyping: bool = False
    custom_ops: str = "none"
    io_bound: bool = False
    matrix_dominated: bool = False
    source_available: bool = True
    tpu_ops_available: bool = True

    def __post_init__(self) -> None:
        check_choice("framework", self.framework, FRAMEWORKS)
        check_choice("model_size", self.model_size, MODEL_SIZES)
        check_int("batch_size", self.batch_size, low=1)
        check_float("training_hours", self.training_hours, low=0, low_open=True)
        check_choice("custom_ops", self.custom_ops, CUSTOM_OPS)
        for name in ("prototyping", "io_bound", "matrix_dominated", "source_available", "tpu_ops_available"):
            check_instance(name, getattr(self, name), bool, "a bool")


@dataclass(frozen=True)
class Recommendation:
    """A hardware choice and the guidance lines that led to it.

    Attributes:
        hardware: ``"CPU"``, ``"GPU"`` or ``"TPU"``.
        reasons: one sentence per guideline the workload matched.
    """

    hardware: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.hardware}: " + "; ".join(self.reasons)


def recommend_hardware(workload: Workload | None = None, **fields: Any) -> Recommendation:
    """Choose CPU, GPU or TPU for a training workload, with the reasons.

    The rules, checked in this order:

    1. scikit-learn: CPU, on a memory-optimised machine (its estimators run on the
       CPU, and a whole-set fit holds the training set in memory). XGBoost: CPU, as
       the notes have it; that described the managed training runtimes of the time
       (XGBoost itself can train on a CUDA GPU, ``device="cuda"``).
    2. CPU for quick prototyping, simple models that train quickly, small models with
       small effective batches, models dominated by custom C++ ops, and models
       limited by I/O or network bandwidth.
    3. GPU for models whose source is missing or too onerous to change, models with
       a significant number of custom ops that must run partly on CPUs, and models
       with ops not available on TPU.
    4. TPU for models dominated by matrix computations, with no custom ops in the
       training loop, that train for weeks or are large with very large batches.
    5. Otherwise GPU: medium-to-large models with larger effective batches.

    Args:
        workload: a :class:`Workload`; or give its fields as keywords instead.
        **fields: :class:`Workload` fields, when ``workload`` is ``None``.

    Returns:
        A :class:`Recommendation`.

    Example:
        >>> print(recommend_hardware(framework="sklearn"))
        CPU: scikit-learn's estimators run on the CPU and a whole-set fit holds the data in memory; pick a memory-optimised machine
        >>> recommend_hardware(model_size="very_large", batch_size=4096, matrix_dominated=True).hardware
        'TPU'
    """
    if workload is None:
        workload = Workload(**fields)
    elif fields:
        raise TypeError(message("fields", "empty when a `workload` is given", tuple(fields)))
    check_instance("workload", workload, Workload, "a Workload")
    w = workload
    if w.framework == "sklearn":
        return Recommendation(
            "CPU",
            ("scikit-learn's estimators run on the CPU and a whole-set fit holds the data in memory;"
             " pick a memory-optimised machine",),
        )
    if w.framework == "xgboost":
        return Recommendation(
            "CPU",
            ("the notes' managed runtimes ran XGBoost on CPUs only"
             " (XGBoost itself can train on a CUDA GPU with device='cuda')",),
        )
    small = w.model_size == "small"
    cpu = [
        (w.prototyping, "quick prototyping that needs maximum flexibility"),
        (small and w.training_hours < SHORT_HOURS, "a simple model that does not take long to train"),
        (small and w.batch_size < SMALL_BATCH, "a small model with a small effective batch size"),
        (w.custom_ops == "dominant", "dominated by custom operations written in C++"),
        (w.io_bound, "limited by the host's I/O or network bandwidth"),
    ]
    gpu = [
        (not w.source_available, "the model's source does not exist or is too onerous to change"),
        (w.custom_ops == "some", "a significant number of custom ops must run at least partly on CPUs"),
        (not w.tpu_ops_available, "it uses ops that are not available on TPU"),
    ]
    big_batches = w.model_size in ("large", "very_large") and w.batch_size >= VERY_LARGE_BATCH
    long_run = w.training_hours >= WEEK_HOURS
    tpu = [
        (w.matrix_dominated, "dominated by matrix computations"),
        (w.custom_ops == "none", "no custom ops inside the training loop"),
        (long_run, "trains for weeks or months"),
        (big_batches, "a large model with a very large effective batch size"),
    ]
    for hardware, rules in (("CPU", cpu), ("GPU", gpu)):
        reasons = tuple(text for matched, text in rules if matched)
        if reasons:
            return Recommendation(hardware, reasons)
    if w.matrix_dominated and (long_run or big_batches):
        return Recommendation("TPU", tuple(text for matched, text in tpu if matched))
    return Recommendation("GPU", ("a medium-to-large model with a larger effective batch size",))


@dataclass(frozen=True)
class Throughput:
    """A throughput measurement.

    Attributes:
        examples_per_second: rows of the batch processed per second.
        seconds_per_batch: median seconds per batch.
        batch_size: rows per batch.
        device: where it ran, e.g. ``"cpu"`` or ``"cuda"``.
    """

    examples_per_second: float
    seconds_per_batch: float
    batch_size: int
    device: str


def _is_torch(model: Any) -> bool:
    return isinstance(model, nn.Module)


def measure_throughput(
    model: Any,
    batch: Any,
    device: str | torch.device | None = None,
    *,
    repeats: int = 5,
    warmup: int = 1,
    train: bool = False,
    amp: bool = False,
) -> Throughput:
    """Time a model on one batch: examples per second, from the median of ``repeats`` runs.

    A PyTorch model runs a forward pass (and, with ``train=True``, a backward pass)
    on ``device``; CUDA is synchronized around each run. What runs is a copy of the
    model moved to ``device`` (it needs the model's memory once more while it is
    timed): the caller's model keeps its device, gradients and batch-norm statistics.
    A scikit-learn-style model (anything with ``predict``) runs ``predict`` on the
    CPU: it has no other device.

    Args:
        model: an ``nn.Module`` or an object with ``predict(X)``.
        batch: the inputs ``(N, ...)``: a tensor (PyTorch) or an array (scikit-learn).
        device: where to run; ``None`` picks :func:`get_device` (PyTorch) or the CPU.
        repeats: timed runs, an int >= 1.
        warmup: untimed runs first, an int >= 0.
        train: time forward + backward (PyTorch only).
        amp: run under ``torch.autocast`` (float16 on CUDA, bfloat16 on CPU).

    Returns:
        A :class:`Throughput`.

    Example:
        >>> t = measure_throughput(nn.Linear(8, 2), torch.randn(32, 8), "cpu")
        >>> t.batch_size, t.device, t.examples_per_second > 0
        (32, 'cpu', True)
    """
    repeats = check_int("repeats", repeats, low=1)
    warmup = check_int("warmup", warmup, low=0)
    check_instance("train", train, bool, "a bool")
    check_instance("amp", amp, bool, "a bool")
    if _is_torch(model):
        device = get_device(device)
        x = check_tensor("batch", batch, finite=True).to(device)
        run = _torch_step(copy.deepcopy(model).to(device), x, device, train=train, amp=amp)
    elif callable(getattr(model, "predict", None)):
        device = get_device(device or "cpu")
        if device.type != "cpu":
            raise ValueError(
                message("device", "'cpu' for a scikit-learn-style model (it cannot use accelerators)", str(device))
            )
        if train or amp:
            raise ValueError(message("train and amp", "False for a scikit-learn-style model", (train, amp)))
        x = batch.numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
        run = lambda: model.predict(x)  # noqa: E731
    else:
        raise TypeError(message("model", "a torch.nn.Module or an object with predict()", model))
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(repeats):
        with Timer(device) as timer:
            run()
        seconds.append(timer.seconds)
    median = float(np.median(seconds))
    return Throughput(len(x) / median, median, len(x), device.type)


def _torch_step(model: nn.Module, x: torch.Tensor, device: torch.device, *, train: bool, amp: bool) -> Callable[[], None]:
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def run() -> None:
        autocast = torch.autocast(device.type, dtype=dtype) if amp else nullcontext()
        with torch.set_grad_enabled(train), autocast:
            out = model(x)
        if train:
            model.zero_grad(set_to_none=True)
            out.float().sum().backward()

    return run


MATRIX_OPS = frozenset(
    {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm", "aten::matmul",
     "aten::linear", "aten::_convolution", "aten::convolution", "aten::mkldnn_convolution",
     "aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::_mkldnn_convolution",
     "aten::scaled_dot_product_attention", "aten::_scaled_dot_product_flash_attention_for_cpu"}
)
"""Operators counted as matrix arithmetic (matrix products and convolutions)."""


def matrix_time_fraction(
    model: nn.Module | Callable[[torch.Tensor], Any], batch: torch.Tensor, *, train: bool = True
) -> float:
    """Share of a PyTorch model's (or function's) CPU time spent in matrix products and convolutions.

    Profiles five steps, one at a time, with PyTorch's autograd profiler on one CPU
    thread (so that the number reflects the work, not how well each operator
    parallelizes on a busy machine). For each step it divides the self time of the
    operators in :data:`MATRIX_OPS` (the backward pass of a matrix product is itself
    made of matrix products) by the self time of all operators, and returns the
    median over the steps. A share near 1 marks a "model dominated by matrix
    computations", the kind of model TPUs (and GPUs) are built to speed up.

    A model runs on CPU copies of its parameters and buffers: the caller's model
    keeps its device, gets no gradients and no updated batch-norm statistics.
    Any other work written in PyTorch operators (one round of a tree fit, say) can
    be profiled the same way as a function of the batch.

    Args:
        model: an ``nn.Module``, or a function that takes the batch (then ``train``
            is ignored: the function does whatever work it does).
        batch: inputs ``(N, ...)``, a tensor (of floats for a module).
        train: profile the module's forward + backward (else forward only).

    Returns:
        A float in ``[0, 1]``.

    Example:
        >>> mlp = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
        >>> matrix_time_fraction(mlp, torch.randn(512, 1024)) > 0.5
        True
        >>> matrix_time_fraction(lambda x: x.argsort(dim=0), torch.randn(256, 256))
        0.0
    """
    check_instance("train", train, bool, "a bool")
    if isinstance(model, nn.Module):
        x = check_tensor("batch", batch, floating=True, finite=True).cpu()
        run = _cpu_copy_step(model, x, train=train)
    elif callable(model):
        x = check_tensor("batch", batch).cpu()
        run = lambda: model(x)  # noqa: E731
    else:
        raise TypeError(message("model", "a torch.nn.Module or a function of the batch", model))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # count work, not how well each operator runs in parallel
    try:
        run()  # warm-up outside the profile
        shares = []
        for _ in range(5):  # separate profiles: a busy machine that preempts one step spoils
            # one share, not the median. The autograd profiler without Kineto: CPU operator
            # times, no tracing back-end logs.
            with torch.autograd.profiler.profile(use_kineto=False) as prof:
                run()
            events = prof.key_averages()
            total = sum(event.self_cpu_time_total for event in events)
            matrix = sum(event.self_cpu_time_total for event in events if event.key in MATRIX_OPS)
            shares.append(matrix / total if total > 0 else 0.0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(shares)


def _cpu_copy_step(model: nn.Module, x: torch.Tensor, *, train: bool) -> Callable[[], None]:
    """One step of ``model`` on CPU copies of its parameters and buffers (the model is not changed)."""
    params = {name: p.detach().cpu().requires_grad_(p.requires_grad) for name, p in model.named_parameters()}
    buffers = {name: b.detach().cpu().clone() for name, b in model.named_buffers()}
    state = {**params, **buffers}

    def run() -> None:
        with torch.set_grad_enabled(train):
            out = torch.func.functional_call(model, state, (x,))
        if train:
            for p in params.values():
                p.grad = None
            out.float().sum().backward()

    return run


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _vm_hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _release_free_memory() -> None:
    """Hand free heap pages back to the kernel, so that new allocations show in RSS.

    A forked child inherits its parent's heap, freed blocks included, and those pages stay
    resident: allocations that reuse them add nothing to RSS, and a parent that used and freed
    a lot of memory (a test worker, a long notebook) would make ``peak_memory`` read near 0.
    """
    if "pyarrow" in sys.modules:  # Arrow's own pool (jemalloc or mimalloc) keeps freed memory too
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to release this way
        pass


def _measure_child(fn: Callable[..., Any], args: tuple, kwargs: dict, conn: Any) -> None:
    # A forked child has none of its parent's OpenMP worker threads; GNU OpenMP's next parallel
    # region (torch, scikit-learn's k-means) then waits for them forever. One thread per pool is safe.
    torch.set_num_threads(1)
    threadpool_limits(1)
    try:
        gc.collect()
        _release_free_memory()
        if _reset_peak():
            before, peak = _vm_hwm_bytes(), _vm_hwm_bytes
        else:
            before, peak = _peak_rss_bytes(), _peak_rss_bytes
        value = fn(*args, **kwargs)
        conn.send((True, max(0, peak() - before), value))
    except BaseException as error:
        conn.send((False, 0, f"it raised {type(error).__name__}: {error}"))
    finally:
        conn.close()
        os._exit(0)


def peak_memory(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, Any]:
    """Run ``fn(*args, **kwargs)`` in a fresh process; return (peak extra memory, result).

    The peak resident memory (RSS) the call adds on top of what the process held
    before it: on Linux the kernel's peak counter is reset just before the call,
    elsewhere the rise of ``getrusage``'s lifetime peak is used. Running in a
    separate process keeps earlier allocations of this process out of the number, and
    the child first returns the free memory it inherited (glibc's heap, Arrow's pool) to
    the kernel, so that new allocations cannot hide in pages that are already resident.
    Uses ``fork`` where available (then ``fn`` may be defined anywhere, but must not
    use CUDA), else ``spawn`` (``fn`` must be importable). ``fn`` runs on one thread
    (torch's and every OpenMP/BLAS pool): a forked child cannot use the thread pools of
    its parent, and memory, not speed, is what is measured.

    Args:
        fn: the function to measure; its result must be picklable.
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        ``(bytes, result)``.

    Raises:
        RuntimeError: ``fn`` raised in the child process, or the process died (the
            message says which, and what ``fn`` raised).

    Example:
        >>> extra, total = peak_memory(lambda n: float(np.ones(n).sum()), 4_000_000)
        >>> total, extra > 16e6
        (4000000.0, True)
    """
    check_callable("fn", fn)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(method)
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_measure_child, args=(fn, args, kwargs, child), daemon=True)
    process.start()
    child.close()
    try:
        ok, extra, value = parent.recv()
    except EOFError:
        ok, extra, value = False, 0, f"the process died with exit code {process.exitcode}"
    finally:
        process.join()
        parent.close()
    if not ok:
        raise RuntimeError(message("fn", "a function that runs in the measuring process", fn, found=value))
    return extra, value
