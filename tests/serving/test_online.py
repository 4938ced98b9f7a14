"""Online serving: a real uvicorn server on a free loopback port; bad requests get a 4xx."""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager

import httpx
import pytest
import torch
from fastapi import FastAPI

from companion.serving.online import create_app, serve


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return torch.nn.Linear(2, 1)


@pytest.fixture(scope="module")
def server(model):
    app = create_app(model, input_schema=["age", "income"], transform=torch.sigmoid,
                     model_version="v7", max_instances=8)
    with serve(app) as running:
        yield running


def test_predicts_any_new_item_like_the_model(server, model):
    rows = [[0.3, -1.2], [5.0, 2.0]]
    response = httpx.post(f"{server.url}/predict", json={"instances": rows})
    assert response.status_code == 200
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.tensor(rows)))[:, 0].tolist()
    assert response.json()["predictions"] == pytest.approx(expected, rel=1e-6)
    assert response.json()["model_version"] == "v7"
    named = httpx.post(f"{server.url}/predict", json={"instances": [{"income": -1.2, "age": 0.3}]})
    assert named.json()["predictions"] == pytest.approx(expected[:1], rel=1e-6)


def test_healthz(server):
    body = httpx.get(f"{server.url}/healthz").json()
    assert body == {"status": "ok", "model_version": "v7", "input_schema": ["age", "income"]}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "JSON decode error"),
        (b"[1, 2]", "valid dictionary"),
        (b'{"instances": []}', "at least 1 item"),
        (b'{"instances": [[1.0]]}', "expected 2 numbers"),
        (b'{"instances": [[1.0, 2.0, 3.0]]}', "expected 2 numbers"),
        (b'{"instances": [[1.0, NaN]]}', "finite number"),
        (b'{"instances": [[1.0, Infinity]]}', "finite number"),
        (b'{"instances": [[1.0, 1e400]]}', "finite number"),
        (b'{"instances": [["1", 2]]}', "valid number"),
        (b'{"instances": [[true, 2]]}', "valid number"),
        (b'{"instances": [{"age": 1}]}', "missing ['income']"),
        (b'{"instances": [{"age": 1, "income": 2, "x": 3}]}', "unexpected ['x']"),
        (b'{"instances": [[1, 2]], "extra": 1}', "Extra inputs"),
        (b"", "Field required"),
    ],
)
def test_malformed_requests_get_422_with_a_message(server, body, fragment):
    response = httpx.post(f"{server.url}/predict", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_a_non_finite_prediction_is_a_422_not_a_500():
    app = create_app(lambda x: x[:, 0] * 1e30, input_schema=["a"])  # overflows float32 for a > 3.4e8
    with serve(app) as running:
        response = httpx.post(f"{running.url}/predict", json={"instances": [[1e10]]})
        assert response.status_code == 422 and "not finite" in response.json()["detail"]


def test_too_many_instances_get_413_and_the_server_keeps_serving(server):
    response = httpx.post(f"{server.url}/predict", json={"instances": [[0, 0]] * 9})
    assert response.status_code == 413 and "at most 8" in response.json()["detail"]
    assert httpx.post(f"{server.url}/predict", json={"instances": [[0, 0]]}).status_code == 200


def test_server_stops_cleanly_and_two_can_run_at_once():
    app = create_app(lambda x: x.sum(1), input_schema=["a"])
    with serve(app) as first, serve(app) as second:
        assert first.port != second.port
        assert httpx.get(f"{second.url}/healthz").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first.url}/healthz", timeout=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Expected `host` to be a loopback address"):
        with serve(create_app(lambda x: x, input_schema=["a"]), host="0.0.0.0"):
            pass
    with pytest.raises(ValueError, match="Expected `input_schema` to be a non-empty sequence of distinct"):
        create_app(lambda x: x, input_schema=["a", "a"])
    with pytest.raises(TypeError, match=r"Expected `input_schema\[0\]` to be a string"):
        create_app(lambda x: x, input_schema=[1])
    with pytest.raises(TypeError, match="Expected `model` to be callable"):
        create_app(None, input_schema=["a"])


# uvicorn ends its thread with sys.exit(3) when the app's startup fails
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_server_whose_app_fails_to_start_says_so_and_what_to_do():
    @asynccontextmanager
    async def failing_startup(app):
        raise OSError("the model file is missing")
        yield

    with pytest.raises(RuntimeError, match=r"^The server on 127\.0\.0\.1:\d+ stopped while starting: "
                       r"uvicorn logged why above .* serve the app again\.$"):
        with serve(FastAPI(lifespan=failing_startup)):
            pass


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_server_that_starts_too_slowly_names_the_timeout_and_still_stops_cleanly():
    release = threading.Event()

    @asynccontextmanager
    async def slow_startup(app):
        release.wait(10)  # holds uvicorn's startup until the test lets go
        yield

    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match=r"did not start within 0.2 s\. .* larger `startup_timeout`"):
        with serve(FastAPI(lifespan=slow_startup), startup_timeout=0.2):
            pass
    release.set()
    # The server thread outlives the timeout; it used to find its socket closed under it and
    # die with "Bad file descriptor" (an unhandled thread exception, an error here).
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_serve_rejects_an_app_that_is_not_callable():
    with pytest.raises(TypeError, match="Expected `app` to be callable, but got 'main:app'"):
        with serve("main:app"):
            pass
