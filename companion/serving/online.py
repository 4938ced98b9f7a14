"""Online inference: a model behind an HTTP endpoint, predicting on demand.

:func:`create_app` wraps a model in a FastAPI app with ``POST /predict`` and
``GET /healthz``. Requests follow Vertex AI's shape, ``{"instances": [...]}`` in and
``{"predictions": [...]}`` out; each instance is a list of numbers in the order of
``input_schema`` or an object with exactly those keys. Anything malformed (bad
JSON, wrong length, missing or extra keys, non-numbers, NaN or infinities, too
many instances) gets a 422 with a message, and the server keeps serving.

:func:`serve` runs an app with uvicorn in a background thread on a free loopback
port and stops it cleanly when the ``with`` block ends.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    message,
)
from companion.inference import predict_logits

__all__ = ["create_app", "serve", "RunningServer"]

Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]  # no NaN, bools or strings


class _PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: list[list[Number] | dict[str, Number]] = Field(min_length=1)


def _row(instance: list[float] | dict[str, float], index: int, names: list[str]) -> list[float]:
    """One instance as a feature list in schema order, or a 422 that says what is wrong."""
    where = f"instances[{index}]"
    if isinstance(instance, dict):
        missing = [n for n in names if n not in instance]
        extra = [k for k in instance if k not in names]
        if missing or extra:
            raise HTTPException(
                422, f"{where}: expected the keys {names}, missing {missing}, unexpected {extra}"
            )
        return [instance[n] for n in names]
    if len(instance) != len(names):
        raise HTTPException(
            422, f"{where}: expected {len(names)} numbers ({', '.join(names)}), got {len(instance)}"
        )
    return instance


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with a readable message. FastAPI's default echoes the input back, which fails
    (a 500) when the input holds NaN or infinity, since those are not valid JSON."""
    problems = sorted({
        f"{'.'.join(str(part) for part in e['loc'] if not str(part).startswith(('list[', 'dict[')))}: {e['msg']}"
        for e in error.errors()
    })
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


def create_app(
    model: Callable[[torch.Tensor], torch.Tensor],
    *,
    input_schema: Sequence[str],
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    model_version: str = "v1",
    max_instances: int = 1024,
) -> FastAPI:
    """A FastAPI app that serves ``model`` at ``POST /predict`` and reports health at ``GET /healthz``.

    Args:
        model: callable ``X -> output`` on float32 features ``(N, F)``, e.g. an
            ``nn.Module`` (run in eval mode without gradients).
        input_schema: the ``F`` feature names, in the order the model expects.
        transform: applied to the outputs, e.g. ``torch.sigmoid`` to serve probabilities.
        model_version: returned with every response.
        max_instances: the largest batch one request may carry, an int >= 1.

    Returns:
        The app. ``POST /predict`` takes ``{"instances": [[x0, x1, ...], ...]}`` or
        ``{"instances": [{"x0": ..., "x1": ...}, ...]}`` and returns
        ``{"predictions": [...], "model_version": ...}`` (one value, or one list for
        multi-output models, per instance).

    Example:
        >>> from fastapi.testclient import TestClient
        >>> app = create_app(lambda x: x.sum(1), input_schema=["a", "b"])
        >>> TestClient(app).post("/predict", json={"instances": [[1, 2]]}).json()["predictions"]
        [3.0]
    """
    check_callable("model", model)
    names = [check_instance(f"input_schema[{i}]", n, str, "a string") for i, n in enumerate(input_schema)]
    if not names or len(set(names)) != len(names):
        raise ValueError(message("input_schema", "a non-empty sequence of distinct names", input_schema))
    if transform is not None:
        check_callable("transform", transform)
    check_instance("model_version", model_version, str, "a string")
    max_instances = check_int("max_instances", max_instances, low=1)

    app = FastAPI(title="companion model server", version=model_version)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model_version": model_version, "input_schema": names}

    @app.post("/predict")
    def predict_endpoint(request: _PredictRequest) -> dict[str, Any]:
        if len(request.instances) > max_instances:
            raise HTTPException(
                413, f"at most {max_instances} instances per request, got {len(request.instances)}"
            )
        rows = [_row(inst, i, names) for i, inst in enumerate(request.instances)]
        X = torch.tensor(rows, dtype=torch.float32)
        out = predict_logits(model, X)
        if transform is not None:
            out = transform(out)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim == 0 or len(out) != len(rows):
            raise HTTPException(422, f"the model returned {tuple(out.shape)} for {len(rows)} instances")
        if out.is_floating_point() and not torch.isfinite(out).all():
            raise HTTPException(422, "the model's prediction is not finite for these inputs")
        return {"predictions": out.tolist(), "model_version": model_version}

    return app


@dataclass(frozen=True)
class RunningServer:
    """Where :func:`serve` is listening: ``url`` is ``http://host:port``."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextmanager
def serve(app: Any, *, host: str = "127.0.0.1", startup_timeout: float = 10.0) -> Iterator[RunningServer]:
    """Run ``app`` with uvicorn on a free loopback port in a background thread.

    The port is chosen by the operating system: the socket is bound to port 0 and
    handed to uvicorn still open, so no other process can take the port in
    between, and several servers can run at once. On leaving the ``with`` block
    the server finishes the requests in flight, stops, and its thread is joined.

    Args:
        app: an ASGI app, e.g. from :func:`create_app`.
        host: a loopback address (``"127.0.0.1"``, ``"::1"`` or ``"localhost"``);
            this helper never listens on an external interface.
        startup_timeout: seconds to wait for the server to start, a float > 0.

    Yields:
        A :class:`RunningServer` with the ``url`` to send requests to.

    Raises:
        RuntimeError: the server stopped while starting (uvicorn logs why) or did not
            start within ``startup_timeout``.

    Example:
        >>> import httpx
        >>> app = create_app(lambda x: 2 * x[:, 0], input_schema=["x"])
        >>> with serve(app) as server:
        ...     httpx.post(f"{server.url}/predict", json={"instances": [[1.5]]}).json()["predictions"]
        [3.0]
    """
    check_callable("app", app)
    check_instance("host", host, str, "a string")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(message("host", "a loopback address such as '127.0.0.1'", host))
    startup_timeout = check_float("startup_timeout", startup_timeout, low=0, low_open=True)
    address = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, Nagle's algorithm holds the response
    # body back until the client's delayed ACK (~40 ms) arrives.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((address, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(
                    f"The server on {address}:{port} stopped while starting: uvicorn logged why "
                    "above (often the app's startup raised). Fix that and serve the app again."
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"The server on {address}:{port} did not start within {startup_timeout} s. "
                    "On a busy or slow machine, pass a larger `startup_timeout`."
                )
            time.sleep(0.01)
        yield RunningServer(address, port)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        if not thread.is_alive():  # else the thread still starts on it, then stops and closes it
            sock.close()
