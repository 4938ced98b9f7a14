"""Online serving: a real uvicorn server on a free loopback port; bad requests get a 4xx, a
fault of the model a 5xx, and the server keeps serving."""

from __future__ import annotations

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import httpx
import pytest
import torch
from fastapi import FastAPI
from torch import nn

from companion.inference import predict_logits
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


def raw_request(server, head: bytes, *body: bytes) -> bytes:
    """Send a request by hand (headers, then each body part) and return the response."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head + b"\r\n")
        for part in body:
            sock.sendall(part)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"content-length: (\d+)", reply, re.IGNORECASE)[1]
        ):
            reply += sock.recv(4096)
        return reply


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
        (b"{not json", "Invalid JSON"),
        (b"[1, 2]", "body: Input should be an object"),
        (b'{"instances": []}', "instances: List should have at least 1 item"),
        (b'{"instances": [[1.0]]}', "instances[0]: expected 2 numbers (age, income), got 1"),
        (b'{"instances": [[1.0, 2.0, 3.0]]}', "instances[0]: expected 2 numbers (age, income), got 3"),
        (b'{"instances": [[1.0, NaN]]}', "instances[0][1]: Input should be a finite number"),
        (b'{"instances": [[1.0, Infinity]]}', "finite number"),
        (b'{"instances": [[1.0, 1e400]]}', "finite number"),
        (b'{"instances": [["1", 2]]}', "instances[0][0]: Input should be a valid number"),
        (b'{"instances": [[true, 2]]}', "valid number"),
        (b'{"instances": [3]}', "instances[0]: Input should be a valid array"),
        (b'{"instances": [{"age": 1}]}', "instances[0]: expected the keys ['age', 'income'], missing "
                                         "['income']"),
        (b'{"instances": [{"age": 1, "income": 2, "x": 3}]}', "instances[0]: expected the keys "
                                                              "['age', 'income'], got more than 2 keys"),
        (b'{"instances": [{"age": 1, "x": 3}]}', "unexpected ['x']"),
        (b'{"instances": [{"age": "a", "income": 3}]}', "instances[0]['age']: Input should be a valid"),
        (b'{"instances": [[1, 2]], "extra": 1}', "extra: Extra inputs are not permitted"),
        (b"", "Invalid JSON"),
    ],
)
def test_malformed_requests_get_422_with_a_message(server, body, fragment):
    response = httpx.post(f"{server.url}/predict", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_a_body_that_is_not_json_gets_415(server):
    # FastAPI's strict content type, kept: a browser page may POST text/plain across sites
    # without asking first, but not application/json.
    response = httpx.post(f"{server.url}/predict", content=b'{"instances": [[1, 2]]}',
                          headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["detail"]
    assert httpx.post(f"{server.url}/predict", content=b'{"instances": [[1, 2]]}').status_code == 415


def test_inputs_beyond_the_models_dtype_get_422():
    # 1e39 is finite as a float64 but infinite as a float32.
    torch.manual_seed(0)
    app = create_app(nn.Linear(2, 1), input_schema=["a", "b"])
    double = nn.Linear(2, 1).double()
    app64 = create_app(double, input_schema=["a", "b"])
    with serve(app) as running, serve(app64) as running64:
        response = httpx.post(f"{running.url}/predict", json={"instances": [[0, 0], [1, -1e39]]})
        assert response.status_code == 422
        assert response.json()["detail"] == ("instances[1][1] (b): -1e+39 is beyond the model's "
                                             "torch.float32 range (|x| <= 3.4e+38)")
        # the same value is fine for a float64 model, and computed in float64
        response = httpx.post(f"{running64.url}/predict", json={"instances": [[1e-300, 1e39]]})
        assert response.status_code == 200
        expected = predict_logits(double, torch.tensor([[1e-300, 1e39]], dtype=torch.float64))
        assert response.json()["predictions"] == expected[:, 0].tolist()


def test_a_non_finite_prediction_is_a_500_not_a_client_error():
    app = create_app(lambda x: x[:, 0] * 1e30, input_schema=["a"])  # overflows float32 for a > 3.4e8
    with serve(app) as running:
        response = httpx.post(f"{running.url}/predict", json={"instances": [[1e10]]})
        assert response.status_code == 500
        assert response.json()["detail"] == ("The model's prediction is not finite (NaN or infinity) "
                                             "for these inputs: a fault of the model, not of the request.")
        assert httpx.post(f"{running.url}/predict", json={"instances": [[1.0]]}).status_code == 200


def test_a_model_output_of_the_wrong_shape_is_a_500():
    app = create_app(lambda x: x[:1, 0], input_schema=["a"])
    with serve(app) as running:
        response = httpx.post(f"{running.url}/predict", json={"instances": [[1.0], [2.0]]})
        assert response.status_code == 500
        assert response.json()["detail"].startswith("The model returned shape (1,) for 2 instances")


def test_too_many_instances_get_413_and_the_server_keeps_serving(server):
    response = httpx.post(f"{server.url}/predict", json={"instances": [[0, 0]] * 9})
    assert response.status_code == 413 and "at most 8 instances per request, got 9" in response.json()["detail"]
    assert httpx.post(f"{server.url}/predict", json={"instances": [[0, 0]]}).status_code == 200


def test_the_schema_bounds_every_list():
    schema = create_app(lambda x: x[:, 0], input_schema=["a", "b"], max_instances=5).openapi()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    instances = body["properties"]["instances"]
    assert (instances["minItems"], instances["maxItems"]) == (1, 5)
    as_list, as_dict = instances["items"]["oneOf"]
    assert (as_list["minItems"], as_list["maxItems"], as_dict["maxProperties"]) == (2, 2, 2)


def test_a_body_larger_than_the_limit_gets_413_before_it_is_read(server):
    # The default limit is 1 MiB. A declared length beyond it is refused from the headers alone:
    # the body never comes, and the answer must not wait for it.
    head = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n")
    assert raw_request(server, head, b'{"instances": [').startswith(b"HTTP/1.1 413")
    # A chunked body declares no length: it is cut off as soon as it passes the limit.
    head = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n")
    chunk = b"80000\r\n" + b" " * 0x80000 + b"\r\n"  # 512 KiB, and no final chunk ever
    reply = raw_request(server, head, chunk, chunk, chunk)
    assert reply.startswith(b"HTTP/1.1 413") and b"at most 1048576 bytes" in reply
    # within the limit, the same padding is fine
    padded = b'{"instances": [[1, 2]]}' + b" " * 500_000
    response = httpx.post(f"{server.url}/predict", content=padded, headers={"content-type": "application/json"})
    assert response.status_code == 200


def test_max_body_bytes_sets_the_limit():
    app = create_app(lambda x: x[:, 0], input_schema=["a"], max_body_bytes=100)
    with serve(app) as running:
        small = httpx.post(f"{running.url}/predict", json={"instances": [[1.0]]})
        big = httpx.post(f"{running.url}/predict", json={"instances": [[1.0]] * 30})
    assert small.status_code == 200
    assert big.status_code == 413 and big.json()["detail"] == (
        "The request body must be at most 100 bytes; send fewer instances per request."
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[' + b'"", ' * 3000 + b"1]]}",                     # one error per value
        b'{"instances": [{"' + b"k" * 100_000 + b'": 1, "income": 2}]}',    # a long key
        b'{"instances": [[1, 2]], "' + b"k" * 100_000 + b'": 1}',           # a long extra field
        b'{"instances": [' + b'[1, "a"], ' * 7 + b"[1, 2]]}",              # several bad instances
    ],
)
def test_error_bodies_stay_short_whatever_the_request(server, body):
    response = httpx.post(f"{server.url}/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert len(response.content) < 600, response.text


class _SlowDropout(nn.Module):
    """Dropout that leaves time for another request to change the model's mode mid-forward."""

    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        time.sleep(0.002)
        return self.dropout(x)


def test_a_model_in_train_mode_is_served_as_an_eval_copy_and_left_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), _SlowDropout(), nn.Linear(32, 1)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = [[0.5, -1.0, 2.0, 0.1]]
    expected = predict_logits(model, torch.tensor(x))[0, 0].item()
    with serve(create_app(model, input_schema=list("abcd"))) as running:
        def ask(_):
            with httpx.Client(base_url=running.url, timeout=30) as client:
                return [client.post("/predict", json={"instances": x}).json()["predictions"][0]
                        for _ in range(10)]

        with ThreadPoolExecutor(16) as pool:
            answers = [p for batch in pool.map(ask, range(16)) for p in batch]
        # a snapshot: training the caller's model further does not change what is served
        with torch.no_grad():
            model[0].weight.neg_()
        later = httpx.post(f"{running.url}/predict", json={"instances": x}).json()["predictions"][0]
        with torch.no_grad():
            model[0].weight.neg_()
    assert answers == [expected] * 160
    assert later == expected
    assert all(module.training for module in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


class _Scratchpad(nn.Module):
    """Keeps each call's input on itself: correct alone, wrong when two calls overlap."""

    def forward(self, x):
        self.last = x
        time.sleep(0.002)
        return 2 * self.last[:, 0]


def test_predictions_are_thread_safe_for_any_model():
    with serve(create_app(_Scratchpad(), input_schema=["a"])) as running:
        def ask(i):
            with httpx.Client(base_url=running.url, timeout=30) as client:
                return [(i, client.post("/predict", json={"instances": [[i]]}).json()["predictions"])
                        for _ in range(10)]

        with ThreadPoolExecutor(16) as pool:
            answers = [a for batch in pool.map(ask, range(16)) for a in batch]
    assert all(predictions == [2.0 * i] for i, predictions in answers)


def test_only_the_servers_own_host_names_are_accepted(server):
    # DNS rebinding: a page on evil.example re-points its name at 127.0.0.1 and calls the server.
    for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil.example"]:
        response = httpx.get(f"{server.url}/healthz", headers={"host": host})
        assert response.status_code == 400, host
    for host in ["localhost", f"localhost:{server.port}", "127.0.0.1", f"127.0.0.1:{server.port}",
                 f"[::1]:{server.port}"]:
        assert httpx.get(f"{server.url}/healthz", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_can_name_others():
    app = create_app(lambda x: x[:, 0], input_schema=["a"], allowed_hosts=["model.internal", "::1"])
    with serve(app, host="::1") as running:
        assert running.url.startswith("http://[::1]:")
        assert httpx.get(f"{running.url}/healthz").status_code == 200
        assert httpx.get(f"{running.url}/healthz", headers={"host": "model.internal"}).status_code == 200
        assert httpx.get(f"{running.url}/healthz", headers={"host": "localhost"}).status_code == 400


def test_server_stops_cleanly_and_two_can_run_at_once():
    app = create_app(lambda x: x.sum(1), input_schema=["a"])
    with serve(app) as first, serve(app) as second:
        assert first.port != second.port
        assert httpx.get(f"{second.url}/healthz").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first.url}/healthz", timeout=1)


def test_a_request_that_hangs_does_not_keep_the_server_up():
    entered, release = threading.Event(), threading.Event()

    def stuck(x):
        entered.set()
        release.wait(30)  # a model call that hangs: its thread cannot be cancelled
        return x[:, 0]

    def ask(url):
        try:
            httpx.post(f"{url}/predict", json={"instances": [[1.0]]}, timeout=30)
        except httpx.HTTPError:
            pass  # the server drops the connection as it stops

    before = set(threading.enumerate())
    try:
        with serve(create_app(stuck, input_schema=["a"]), shutdown_timeout=0.3) as running:
            server_threads = set(threading.enumerate()) - before
            threading.Thread(target=ask, args=(running.url,)).start()
            assert entered.wait(10)
        assert server_threads and not any(t.is_alive() for t in server_threads)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{running.url}/healthz", timeout=1)
    finally:
        release.set()
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_a_server_that_cannot_stop_says_so():
    entered, release = threading.Event(), threading.Event()
    app = FastAPI()

    @app.get("/block")
    async def block():
        entered.set()
        release.wait(30)  # blocks the event loop itself: nothing can stop the server meanwhile

    def ask(url):
        try:
            httpx.get(f"{url}/block", timeout=30)
        except httpx.HTTPError:
            pass

    before = set(threading.enumerate())
    try:
        with pytest.raises(RuntimeError, match=r"^The server on 127\.0\.0\.1:\d+ did not stop within "
                           r"0\.4 s: a request is still running .* larger `shutdown_timeout`"):
            with serve(app, shutdown_timeout=0.2) as running:
                threading.Thread(target=ask, args=(running.url,)).start()
                assert entered.wait(10)
    finally:
        release.set()
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)
        assert not thread.is_alive()


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
    class Guarded(nn.Linear):
        def __init__(self):
            super().__init__(1, 1)
            self.guard = threading.Lock()  # cannot be copied

    with pytest.raises(TypeError, match=r"Expected `model` to be a module that copy.deepcopy can copy "
                       r"\(the app serves a copy\), but got .*: found cannot pickle"):
        create_app(Guarded(), input_schema=["a"])
    with pytest.raises(ValueError, match="Expected `max_body_bytes` to be an int >= 1"):
        create_app(lambda x: x, input_schema=["a"], max_body_bytes=0)
    with pytest.raises(ValueError, match="Expected `allowed_hosts` to be a non-empty sequence of host"):
        create_app(lambda x: x, input_schema=["a"], allowed_hosts=[])
    with pytest.raises(ValueError, match="Expected `shutdown_timeout` to be a float > 0"):
        with serve(create_app(lambda x: x, input_schema=["a"]), shutdown_timeout=0):
            pass


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
