"""A bounded concurrent load on a server: many requests from a few client threads, each answer kept.

:func:`send_concurrently` is how the course measures a server: ``clients`` threads,
each with its own keep-alive connection, send the requests in turn (request ``i`` by
thread ``i % clients``), so at most ``clients`` requests are in flight at once. Every
answer is kept, in the order of the requests: its status, its JSON body and its
latency, and the wall time of the whole load gives the throughput.

The clients use the standard library's ``http.client``: the load generator shares the
process (and its interpreter lock) with a server started by
:func:`~companion.serving.online.serve`, so the less work each request costs the
client, the more the measurement says about the server.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from companion._validation import check_float, check_instance, check_int, message

__all__ = ["LoadResult", "send_concurrently"]


@dataclass(frozen=True)
class LoadResult:
    """The answers to a load, in the order of its requests.

    Attributes:
        statuses: each request's HTTP status, or None if no answer came (see ``errors``).
        bodies: each answer's JSON body (None if it was not JSON, or no answer came).
        latencies: seconds from sending each request to its whole answer, ``(N,)``.
        errors: for each request without an answer, why (the exception's repr); else None.
        seconds: wall time of the whole load.
    """

    statuses: list[int | None]
    bodies: list[Any]
    latencies: np.ndarray
    errors: list[str | None]
    seconds: float

    @property
    def throughput(self) -> float:
        """Requests answered per second over the whole load."""
        return len(self.statuses) / self.seconds

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the latencies, in seconds (``q`` in [0, 100])."""
        return float(np.percentile(self.latencies, check_float("q", q, low=0, high=100)))

    @property
    def server_errors(self) -> int:
        """Requests that got a 5xx or no answer at all."""
        return sum(status is None or status >= 500 for status in self.statuses)


def send_concurrently(
    url: str,
    bodies: Sequence[Any],
    *,
    path: str = "/predict",
    clients: int = 8,
    timeout: float = 30.0,
) -> LoadResult:
    """POST each of ``bodies`` to ``url + path`` from ``clients`` threads at once; keep every answer.

    Args:
        url: the server's base URL, e.g. ``RunningServer.url``.
        bodies: one request body each: an object sent as JSON, or ``bytes`` sent as they
            are with ``Content-Type: application/json``.
        path: the endpoint, e.g. ``"/predict"``.
        clients: client threads, each with its own connection, an int >= 1: the most
            requests in flight at once.
        timeout: seconds to wait for one answer, a float > 0.

    Returns:
        A :class:`LoadResult`.

    Example:
        >>> from companion.serving.online import create_app, serve
        >>> with serve(create_app(lambda x: x.sum(1), input_schema=["a", "b"])) as server:
        ...     result = send_concurrently(server.url, [{"instances": [[i, 1]]} for i in range(20)], clients=4)
        >>> [body["predictions"][0] for body in result.bodies][:5], result.server_errors
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0)
    """
    check_instance("url", url, str, "a URL string")
    if not url.startswith(("http://", "https://")):
        raise ValueError(message("url", "an http:// or https:// URL", url))
    check_instance("bodies", bodies, Sequence, "a sequence of request bodies")
    if isinstance(bodies, (str, bytes)) or not bodies:
        raise ValueError(message("bodies", "a non-empty sequence of request bodies", bodies))
    check_instance("path", path, str, "a string")
    if not path.startswith("/"):
        raise ValueError(message("path", "a path starting with '/'", path))
    clients = check_int("clients", clients, low=1)
    timeout = check_float("timeout", timeout, low=0, low_open=True)
    n = len(bodies)
    statuses: list[int | None] = [None] * n
    answers: list[Any] = [None] * n
    errors: list[str | None] = [None] * n
    latencies = np.zeros(n)
    parts = urlsplit(url)
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path.rstrip("/") + path

    def client_thread(first: int) -> None:
        connection = connection_type(parts.hostname, parts.port, timeout=timeout)
        try:
            for i in range(first, n, clients):
                body = bodies[i]
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                start = time.perf_counter()
                try:
                    connection.request("POST", target, payload, {"content-type": "application/json"})
                    response = connection.getresponse()
                    content = response.read()
                except (OSError, http.client.HTTPException) as error:
                    errors[i] = repr(error)
                    connection.close()  # the next request opens a new connection
                else:
                    statuses[i] = response.status
                    try:
                        answers[i] = json.loads(content)
                    except ValueError:
                        answers[i] = None
                latencies[i] = time.perf_counter() - start
        finally:
            connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client_thread, args=(w,), daemon=True) for w in range(min(clients, n))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(statuses, answers, latencies, errors, time.perf_counter() - start)
