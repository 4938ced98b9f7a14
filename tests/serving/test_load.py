"""The load generator: every request sent once, answers kept in order, failures recorded, not raised."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from companion.serving.load import send_concurrently
from companion.serving.online import create_app, serve
from companion.utils import free_port


def test_answers_come_back_in_the_order_of_the_requests_with_their_latencies():
    seen, lock = [], threading.Lock()

    def model(x):
        with lock:
            seen.extend(x[:, 0].tolist())
        return 2 * x[:, 0]

    bodies = [{"instances": [[float(i)]]} for i in range(50)] + [b'{"instances": [[1, 2]]}', b"{bad"]
    with serve(create_app(model, input_schema=["a"])) as server:
        result = send_concurrently(server.url, bodies, clients=6)
    assert result.statuses == [200] * 50 + [422, 422]
    assert [body["predictions"] for body in result.bodies[:50]] == [[2.0 * i] for i in range(50)]
    assert sorted(seen) == [float(i) for i in range(50)]         # each request was sent once
    assert result.latencies.shape == (52,) and (result.latencies > 0).all()
    assert 0 < result.seconds and result.throughput == pytest.approx(52 / result.seconds)
    assert result.percentile(50) == pytest.approx(float(np.percentile(result.latencies, 50)))
    assert result.server_errors == 0 and result.errors == [None] * 52


def test_requests_without_an_answer_are_recorded_as_such():
    result = send_concurrently(f"http://127.0.0.1:{free_port()}", [{"instances": [[1.0]]}] * 3, clients=2,
                               timeout=5)
    assert result.statuses == [None] * 3 and result.bodies == [None] * 3
    assert all("ConnectionRefusedError" in error for error in result.errors) and result.server_errors == 3


def test_a_non_json_answer_is_kept_as_none():
    with serve(create_app(lambda x: x[:, 0], input_schema=["a"])) as server:
        result = send_concurrently(server.url, [{}], path="/nowhere")
    assert result.statuses == [404] and result.bodies[0] == {"detail": "Not Found"}
    with serve(create_app(lambda x: x[:, 0], input_schema=["a"], allowed_hosts=["example.org"])) as server:
        result = send_concurrently(server.url, [{"instances": [[1.0]]}])
    assert result.statuses == [400] and result.bodies == [None]        # plain text "Invalid host header"


def test_bad_arguments():
    with pytest.raises(ValueError, match="Expected `url` to be an http:// or https:// URL"):
        send_concurrently("127.0.0.1:80", [{}])
    with pytest.raises(TypeError, match="Expected `url` to be a URL string"):
        send_concurrently(None, [{}])
    with pytest.raises(ValueError, match="Expected `bodies` to be a non-empty sequence"):
        send_concurrently("http://127.0.0.1:1", [])
    with pytest.raises(TypeError, match="Expected `bodies` to be a sequence of request bodies"):
        send_concurrently("http://127.0.0.1:1", iter([{}]))
    with pytest.raises(ValueError, match="Expected `path` to be a path starting with '/'"):
        send_concurrently("http://127.0.0.1:1", [{}], path="predict")
    with pytest.raises(ValueError, match="Expected `clients` to be an int >= 1"):
        send_concurrently("http://127.0.0.1:1", [{}], clients=0)
    with pytest.raises(ValueError, match="Expected `timeout` to be a float > 0"):
        send_concurrently("http://127.0.0.1:1", [{}], timeout=0)
    with pytest.raises(ValueError, match=r"Expected `q` to be a float in \[0, 100\]"):
        send_concurrently(f"http://127.0.0.1:{free_port()}", [{}], timeout=5).percentile(101)
