"""Server-side batching: concurrent requests share one call of the model.

A model call has a fixed cost (reading every weight from memory, starting the kernels)
that one row of input barely uses: 32 rows in one call cost far less than 32 calls
of one row. :class:`RequestBatcher` sits between a server's request handlers and the
model. Each handler submits its rows and waits; one worker thread collects the rows
of requests that arrive together into a batch of at most ``max_batch_size`` rows,
waiting at most ``max_wait`` seconds after the first of them arrived, calls the model
once, and hands each request its own slice of the output. Under load, batches fill
and throughput rises; a request that arrives alone pays at most ``max_wait`` of extra
latency. This is what TensorFlow Serving's ``max_batch_size`` and
``batch_timeout_micros`` do, and what a GPU server needs to keep its accelerator busy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from companion._validation import check_callable, check_float, check_int, check_tensor

__all__ = ["BatchFailed", "RequestBatcher"]

_HISTORY = 100_000  # batch sizes kept for inspection


class BatchFailed(RuntimeError):
    """The model failed on a batch: every request of that batch gets this error (and no other request)."""


@dataclass
class _Pending:
    rows: torch.Tensor
    arrived: float
    future: Future = field(default_factory=Future)


class RequestBatcher:
    """Run ``model`` on batches made of the rows of concurrent calls.

    Args:
        model: callable ``X -> output`` on ``(N, F)`` inputs, whose output has one
            row per input row, ``(N, ...)``. It is called from one worker thread, one
            batch at a time.
        max_batch_size: the most rows in one model call, an int >= 1. A request is
            never split: one with more rows than this runs alone, and a request that
            would overflow the batch waits for the next one. ``max_batch_size=1`` with
            one-row requests means no batching at all.
        max_wait: the longest a batch waits for more rows after its first request
            arrived, in seconds, a float >= 0. A lone request pays this much extra
            latency; a full batch runs at once.

    Calls block until the batch holding their rows has run. If the model raises, or
    returns a non-tensor or the wrong number of rows, every request of that batch
    raises :class:`BatchFailed`; the worker lives on and serves the next batch.
    ``batch_sizes`` records the rows of each batch run (the last 100,000).

    The worker thread starts with the first call and stops in :meth:`close`, after
    running every request already submitted; a later call starts it again.

    Example:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> batcher = RequestBatcher(lambda x: 2 * x, max_batch_size=8, max_wait=0.05)
        >>> with ThreadPoolExecutor(4) as pool:
        ...     outputs = list(pool.map(batcher, [torch.full((2, 1), float(i)) for i in range(4)]))
        >>> batcher.close()
        >>> [out[:, 0].tolist() for out in outputs]
        [[0.0, 0.0], [2.0, 2.0], [4.0, 4.0], [6.0, 6.0]]
        >>> sum(batcher.batch_sizes), max(batcher.batch_sizes) <= 8
        (8, True)
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        *,
        max_batch_size: int = 32,
        max_wait: float = 0.005,
    ) -> None:
        self.model = check_callable("model", model)
        self.max_batch_size = check_int("max_batch_size", max_batch_size, low=1)
        self.max_wait = check_float("max_wait", max_wait, low=0)
        self.batch_sizes: deque[int] = deque(maxlen=_HISTORY)
        self._queue: deque[_Pending] = deque()
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False

    def submit(self, X: torch.Tensor) -> Future:
        """Queue the rows ``X`` ``(n, ...)``, n >= 1; the future's result is their output ``(n, ...)``."""
        check_tensor("X", X, ndim=tuple(range(1, 9)))
        pending = _Pending(X, time.monotonic())
        with self._changed:
            self._queue.append(pending)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="request-batcher", daemon=True)
                self._worker.start()
            self._changed.notify()
        return pending.future

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Submit ``X`` and wait for its output (raises :class:`BatchFailed` if the model failed)."""
        return self.submit(X).result()

    def close(self, timeout: float | None = None) -> None:
        """Run what is queued, then stop the worker thread (waiting at most ``timeout`` seconds)."""
        with self._changed:
            worker = self._worker
            if worker is None:
                return
            self._stopping = True
            self._changed.notify_all()
        worker.join(timeout)

    def _next_batch(self) -> list[_Pending] | None:
        """The next batch to run, or None when stopping with nothing left to run."""
        with self._changed:
            while not self._queue:
                if self._stopping:
                    self._worker, self._stopping = None, False  # a later call starts a new worker
                    return None
                self._changed.wait()
            batch = [self._queue.popleft()]
            rows = len(batch[0].rows)
            deadline = batch[0].arrived + self.max_wait
            while rows < self.max_batch_size:
                if self._queue:
                    if rows + len(self._queue[0].rows) > self.max_batch_size:
                        break  # it waits for the next batch: requests are never split
                    batch.append(self._queue.popleft())
                    rows += len(batch[-1].rows)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    break
                self._changed.wait(remaining)
            return batch

    def _run(self) -> None:
        # OpenMP keeps its thread count per thread: a new thread starts from the machine's default,
        # not from torch.set_num_threads() called elsewhere, and its extra threads fight the others.
        torch.set_num_threads(torch.get_num_threads())
        while (batch := self._next_batch()) is not None:
            sizes = [len(p.rows) for p in batch]
            self.batch_sizes.append(sum(sizes))
            try:
                X = batch[0].rows if len(batch) == 1 else torch.cat([p.rows for p in batch])
                output = self.model(X)
                if not isinstance(output, torch.Tensor) or output.ndim == 0 or len(output) != len(X):
                    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                    raise BatchFailed(f"The model returned {shape} for a batch of {len(X)} rows: a fault of "
                                      "the model, not of the requests.")
            except Exception as error:  # noqa: BLE001 -- the batch's requests get it; the worker lives on
                failure = error if isinstance(error, BatchFailed) else BatchFailed(
                    f"The model failed on a batch of {sum(sizes)} rows: {type(error).__name__}: {error}"[:300])
                for pending in batch:
                    pending.future.set_exception(failure)
                continue
            for pending, part in zip(batch, output.split(sizes), strict=True):
                pending.future.set_result(part)

    def __repr__(self) -> str:
        return f"RequestBatcher(max_batch_size={self.max_batch_size}, max_wait={self.max_wait})"
