"""Online inference: a model behind an HTTP endpoint, predicting on demand.

:func:`create_app` wraps a model in a FastAPI app with ``POST /predict`` and
``GET /healthz``. Requests follow Vertex AI's shape, ``{"instances": [...]}`` in and
``{"predictions": [...]}`` out; each instance is a list of numbers in the order of
``input_schema`` or an object with exactly those keys.

The app holds up against bad clients, as a server must:

- **Size.** A body over ``max_body_bytes`` gets a 413 before it is read (from its
  declared ``Content-Length``, or as soon as a chunked body passes the limit); the
  schema bounds every list (``max_instances`` instances, one number per feature).
- **Load.** Parsing, validation and the model run in worker threads, so that
  ``/healthz`` answers at once however busy ``/predict`` is.
- **Bad values.** Anything malformed (bad JSON, wrong length, missing or extra keys,
  non-numbers, NaN or infinities, values beyond the model's dtype) gets a 422 with a
  short message that names the problem, never a copy of the request.
- **Faults of the model** (a non-finite prediction, an output of the wrong shape)
  get a 500: the client did nothing wrong.
- **Concurrency.** The app serves its own copy of an ``nn.Module``, put in eval mode
  once, and runs one forward pass at a time: requests never see each other's state.
  With ``max_batch_size`` set, a :class:`~companion.serving.batching.RequestBatcher`
  runs the rows of concurrent requests together in one forward pass, and gives each
  request its own rows' predictions.
- **DNS rebinding.** Only requests whose ``Host`` header names the server
  (``allowed_hosts``) are answered: a web page cannot re-point its own domain at
  127.0.0.1 and call the model from a reader's browser.

:func:`serve` runs an app with uvicorn in a background thread on a free loopback
port and stops it when the ``with`` block ends, or says why it could not.
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, create_model
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from torch import nn

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    message,
)
from companion.inference import predict_logits
from companion.serving.batching import BatchFailed, RequestBatcher

__all__ = ["create_app", "serve", "RunningServer"]

Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]  # no NaN, bools or strings
_MAX_DETAIL = 300  # characters of an error message: enough to say what is wrong, never the request
_MAX_PROBLEMS = 3  # validation problems named in one message


def _instance_kind(instance: Any) -> str:
    return "dict" if isinstance(instance, dict) else "list"


def _request_model(n_features: int, max_instances: int) -> type[BaseModel]:
    """The request schema, with every list bounded: so many instances, one number per feature."""
    # fail_fast: stop at the first bad value, rather than build one error for each of a million
    instance = Annotated[
        Annotated[list[Number], Field(min_length=n_features, max_length=n_features, fail_fast=True),
                  Tag("list")]
        | Annotated[dict[str, Number], Field(max_length=n_features), Tag("dict")],
        Discriminator(_instance_kind),  # validate as what it is: no errors from the other kind
    ]
    instances = Annotated[list[instance], Field(min_length=1, max_length=max_instances, fail_fast=True)]
    return create_model("PredictRequest", __config__=ConfigDict(extra="forbid"), instances=(instances, ...))


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _where(loc: Sequence[Any]) -> str:
    """``instances[0]['age']`` for pydantic's ``('instances', 0, 'age')``; ``body`` for ``()``."""
    if not loc:
        return "body"
    head, *rest = loc
    return _short(str(head)) + "".join(
        f"[{part}]" if isinstance(part, int) else f"[{_short(repr(part))}]" for part in rest
    )


def _rejection(error: ValidationError, names: list[str], max_instances: int) -> HTTPException:
    """A 422 naming the first few problems (a 413 for too many instances), without the input."""
    problems = []
    for e in error.errors(include_url=False, include_input=False):
        loc = list(e["loc"])
        if loc[:1] == ["instances"] and len(loc) > 2:
            del loc[2]  # the tag, "list" or "dict", that says which kind of instance was validated
        if loc == ["instances"] and e["type"] == "too_long":
            return HTTPException(413, f"at most {max_instances} instances per request, got "
                                      f"{e['ctx']['actual_length']}")
        text = e["msg"]
        if len(loc) == 2 and e["type"] in ("too_short", "too_long"):
            if e["ctx"]["field_type"] == "List":
                text = f"expected {len(names)} numbers ({', '.join(names)}), got {e['ctx']['actual_length']}"
            else:
                text = f"expected the keys {names}, got more than {len(names)} keys"
        problems.append(f"{_where(loc)}: {text}")
    more = len(problems) - _MAX_PROBLEMS
    detail = "; ".join(problems[:_MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
    return HTTPException(422, _short(detail, _MAX_DETAIL))


def _row(instance: list[float] | dict[str, float], index: int, names: list[str]) -> list[float]:
    """One instance as a feature list in schema order, or a 422 that says what is wrong."""
    if isinstance(instance, list):
        return instance  # the schema fixed its length
    missing = [n for n in names if n not in instance]
    if missing:
        extra = [_short(k) for k in instance if k not in names]
        detail = f"instances[{index}]: expected the keys {names}, missing {missing}"
        raise HTTPException(422, _short(detail + (f", unexpected {extra}" if extra else ""), _MAX_DETAIL))
    return [instance[n] for n in names]


def _input_dtype(model: Callable[[torch.Tensor], torch.Tensor]) -> torch.dtype:
    """The dtype of a module's first floating-point parameter or buffer; float32 otherwise."""
    if isinstance(model, nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
    return torch.float32


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, or a 413 as soon as it is known to be longer than ``limit`` bytes."""
    too_large = HTTPException(413, f"The request body must be at most {limit} bytes; send fewer "
                                   "instances per request.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large  # before reading a byte of it
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def create_app(
    model: Callable[[torch.Tensor], torch.Tensor],
    *,
    input_schema: Sequence[str],
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    model_version: str = "v1",
    max_instances: int = 1024,
    max_body_bytes: int = 1_048_576,
    allowed_hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
    max_batch_size: int | None = None,
    max_batch_wait: float = 0.005,
) -> FastAPI:
    """A FastAPI app that serves ``model`` at ``POST /predict`` and reports health at ``GET /healthz``.

    Args:
        model: callable ``X -> output`` on features ``(N, F)``, e.g. an ``nn.Module``.
            A module is served as a copy (``copy.deepcopy``) put in eval mode once: the
            app never changes ``model``, and later changes to ``model`` (more training)
            do not reach the app; create a new app to serve new weights. Inputs are
            made in the dtype of its first floating-point parameter (float32 for other
            callables), and the model runs without gradients, one request at a time.
        input_schema: the ``F`` feature names, in the order the model expects.
        transform: applied to the outputs, e.g. ``torch.sigmoid`` to serve probabilities.
        model_version: returned with every response.
        max_instances: the largest batch one request may carry, an int >= 1.
        max_body_bytes: the largest request body, in bytes (an int >= 1); the default,
            1 MiB, holds 1,024 instances of about 50 numbers.
        allowed_hosts: the host names the server answers to (the ``Host`` header,
            without the port): by default the loopback names :func:`serve` listens on.
        max_batch_size: ``None`` (the default) runs each request on its own; an int
            >= 1 batches concurrent requests: their rows run together, at most this
            many per forward pass (a request is never split, so one with more rows runs
            alone). The batcher is ``app.state.batcher``; it stops when the server does,
            after answering the requests in flight.
        max_batch_wait: with batching, the longest a batch waits for more requests
            after its first one arrived, in seconds, a float >= 0.

    Returns:
        The app. ``POST /predict`` takes ``{"instances": [[x0, x1, ...], ...]}`` or
        ``{"instances": [{"x0": ..., "x1": ...}, ...]}`` and returns
        ``{"predictions": [...], "model_version": ...}`` (one value, or one list for
        multi-output models, per instance). Errors are ``{"detail": "..."}`` with 413
        (body or batch too large), 415 (not JSON), 422 (malformed) or 500 (the model's
        output is not finite or has the wrong shape, or, with batching, the model failed
        on the batch that held the request: only that batch's requests get it); a
        ``Host`` not in ``allowed_hosts`` gets a plain-text 400.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> app = create_app(lambda x: x.sum(1), input_schema=["a", "b"])
        >>> client = TestClient(app, base_url="http://localhost")
        >>> client.post("/predict", json={"instances": [[1, 2]]}).json()["predictions"]
        [3.0]
        >>> client.post("/predict", json={"instances": [[1, 1e39]]}).json()["detail"]
        "instances[0][1] (b): 1e+39 is beyond the model's torch.float32 range (|x| <= 3.4e+38)"
    """
    check_callable("model", model)
    names = [check_instance(f"input_schema[{i}]", n, str, "a string") for i, n in enumerate(input_schema)]
    if not names or len(set(names)) != len(names):
        raise ValueError(message("input_schema", "a non-empty sequence of distinct names", input_schema))
    if transform is not None:
        check_callable("transform", transform)
    check_instance("model_version", model_version, str, "a string")
    max_instances = check_int("max_instances", max_instances, low=1)
    max_body_bytes = check_int("max_body_bytes", max_body_bytes, low=1)
    if isinstance(allowed_hosts, str) or not allowed_hosts:
        raise ValueError(message("allowed_hosts", "a non-empty sequence of host names", allowed_hosts))
    hosts = [check_instance(f"allowed_hosts[{i}]", h, str, "a string") for i, h in enumerate(allowed_hosts)]
    if isinstance(model, nn.Module):
        try:
            model = copy.deepcopy(model).eval()
        except Exception as error:
            raise TypeError(message("model", "a module that copy.deepcopy can copy (the app serves a copy)",
                                    model, found=str(error))) from error
    if max_batch_size is not None:
        max_batch_size = check_int("max_batch_size", max_batch_size, low=1)
    max_batch_wait = check_float("max_batch_wait", max_batch_wait, low=0)
    dtype = _input_dtype(model)
    lock = threading.Lock()  # any callable, stateful or not, sees one request at a time
    request_model = _request_model(len(names), max_instances)

    threads_set = threading.local()

    def run_model(X: torch.Tensor) -> torch.Tensor:
        if not getattr(threads_set, "done", False):  # a worker thread: OpenMP's count is per thread
            torch.set_num_threads(torch.get_num_threads())
            threads_set.done = True
        with lock:
            out = predict_logits(model, X)
            return out if transform is None else transform(out)

    batcher = (None if max_batch_size is None else
               RequestBatcher(run_model, max_batch_size=max_batch_size, max_wait=max_batch_wait))

    def answer(body: bytes) -> dict[str, Any]:  # runs in a worker thread, off the event loop
        try:
            instances = request_model.model_validate_json(body).instances
        except ValidationError as error:
            raise _rejection(error, names, max_instances) from None
        rows = [_row(instance, i, names) for i, instance in enumerate(instances)]
        X = torch.tensor(rows, dtype=dtype)
        beyond = (~torch.isfinite(X)).nonzero()
        if len(beyond):
            i, j = beyond[0].tolist()
            raise HTTPException(422, f"instances[{i}][{j}] ({_short(names[j])}): {rows[i][j]:.3g} is beyond "
                                     f"the model's {dtype} range (|x| <= {torch.finfo(dtype).max:.2g})")
        if batcher is None:
            out = run_model(X)
        else:
            try:
                out = batcher(X)
            except BatchFailed as error:
                raise HTTPException(500, str(error)) from None
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim == 0 or len(out) != len(rows):
            raise HTTPException(500, f"The model returned shape {tuple(out.shape)} for {len(rows)} "
                                     "instances: a fault of the model, not of the request.")
        if out.is_floating_point() and not torch.isfinite(out).all():
            raise HTTPException(500, "The model's prediction is not finite (NaN or infinity) for these "
                                     "inputs: a fault of the model, not of the request.")
        return {"predictions": out.tolist(), "model_version": model_version}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        if batcher is not None:  # the requests in flight are answered: then the worker stops
            await run_in_threadpool(batcher.close)

    app = FastAPI(title="companion model server", version=model_version, lifespan=lifespan)
    app.state.batcher = batcher
    # Starlette keeps IPv6 literals in brackets, as in a URL: "[::1]".
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=[f"[{h}]" if ":" in h and not h.startswith("[") else h for h in hosts])

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:  # on the event loop: never queues behind predictions
        return {"status": "ok", "model_version": model_version, "input_schema": names}

    schema = {"application/json": {"schema": request_model.model_json_schema()}}

    @app.post("/predict", openapi_extra={"requestBody": {"required": True, "content": schema}})
    async def predict_endpoint(request: Request) -> dict[str, Any]:
        if not _is_json(request.headers.get("content-type")):
            raise HTTPException(415, "Send the instances as JSON, with Content-Type: application/json.")
        return await run_in_threadpool(answer, await _read_body(request, max_body_bytes))

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
def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
) -> Iterator[RunningServer]:
    """Run ``app`` with uvicorn on a free loopback port in a background thread.

    The port is chosen by the operating system: the socket is bound to port 0 and
    handed to uvicorn still open, so no other process can take the port in
    between, and several servers can run at once. On leaving the ``with`` block
    the server stops accepting connections and gives the requests in flight
    ``shutdown_timeout`` seconds to finish; then it cancels them and waits as long
    again for its thread to end.

    Args:
        app: an ASGI app, e.g. from :func:`create_app`.
        host: a loopback address (``"127.0.0.1"``, ``"::1"`` or ``"localhost"``);
            this helper never listens on an external interface.
        startup_timeout: seconds to wait for the server to start, a float > 0.
        shutdown_timeout: seconds for requests in flight to finish, a float > 0.

    Yields:
        A :class:`RunningServer` with the ``url`` to send requests to.

    Raises:
        RuntimeError: the server stopped while starting (uvicorn logs why), did not
            start within ``startup_timeout``, or did not stop within twice
            ``shutdown_timeout`` (a request still runs, e.g. a model call that does
            not return: a thread cannot be cancelled, so the server's daemon thread
            is left to end with it).

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
    shutdown_timeout = check_float("shutdown_timeout", shutdown_timeout, low=0, low_open=True)
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
        thread.join(timeout=shutdown_timeout if server.started else startup_timeout)
        if thread.is_alive() and server.started:
            server.force_exit = True  # stop waiting for requests in flight: they are cancelled
            thread.join(timeout=shutdown_timeout)
        if not thread.is_alive():
            sock.close()  # else the thread still starts on it, or still serves, and closes it
        elif server.started:
            raise RuntimeError(
                f"The server on {address}:{port} did not stop within {2 * shutdown_timeout:g} s: a "
                "request is still running (a model call that does not return?). Its thread is left "
                "running; pass a larger `shutdown_timeout` if requests need longer to finish."
            )
