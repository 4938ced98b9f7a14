"""Request batching: the rows of concurrent requests run together, and each request gets its own answer.

First the batcher on its own, then inside the online server over real HTTP: no mixing of
answers, batches within their limits, a model fault fails only its batch (500) and the
server serves on, bad requests get a 4xx, and a bounded concurrent load gets no 5xx.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from torch import nn

from companion.inference import predict_logits
from companion.serving.batching import BatchFailed, RequestBatcher
from companion.serving.load import send_concurrently
from companion.serving.online import create_app, serve

JSON = {"content-type": "application/json"}


class Recording:
    """A model ``x -> 10 * x[:, 0] + x[:, 1]`` that records the rows of each call and takes ``delay`` s."""

    def __init__(self, delay: float = 0.0, poison: float | None = None):
        self.delay, self.poison, self.calls, self.lock = delay, poison, [], threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.calls.append(x[:, 0].tolist())
        time.sleep(self.delay)
        if self.poison is not None and (x[:, 0] == self.poison).any():
            raise RuntimeError("poisoned batch")
        return 10 * x[:, 0] + x[:, 1]


# ---------------------------------------------------------------- the batcher on its own

def test_every_caller_gets_the_output_of_its_own_rows():
    model = Recording(delay=0.002)
    batcher = RequestBatcher(model, max_batch_size=16, max_wait=0.01)
    inputs = [torch.tensor([[float(i), float(j)] for j in range(1 + i % 3)]) for i in range(200)]
    with ThreadPoolExecutor(32) as pool:
        outputs = list(pool.map(batcher, inputs))
    batcher.close()
    for X, out in zip(inputs, outputs, strict=True):
        assert torch.equal(out, 10 * X[:, 0] + X[:, 1])
    assert sum(len(call) for call in model.calls) == sum(len(X) for X in inputs)   # every row ran once
    assert max(batcher.batch_sizes) > 3   # concurrent requests did share calls


def test_a_batch_never_holds_more_rows_than_the_maximum_and_no_request_is_split():
    model = Recording(delay=0.002)
    batcher = RequestBatcher(model, max_batch_size=8, max_wait=0.01)
    sizes = [random.Random(i).randint(1, 5) for i in range(150)]
    inputs = [torch.full((n, 2), float(i)) for i, n in enumerate(sizes)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(batcher, inputs))
    assert max(batcher.batch_sizes) <= 8 and max(batcher.batch_sizes) > 5
    for call in model.calls:  # each request's rows sit together in one call
        ids = [int(v) for v in call]
        for i in set(ids):
            assert ids.count(i) == sizes[i]
    big = torch.full((20, 2), 7.0)
    assert torch.equal(batcher(big), 10 * big[:, 0] + big[:, 1])   # more rows than the maximum: alone
    assert model.calls[-1] == [7.0] * 20
    batcher.close()


def test_a_lone_request_waits_for_max_wait_and_a_full_batch_does_not():
    batcher = RequestBatcher(Recording(), max_batch_size=2, max_wait=0.3)
    start = time.perf_counter()
    batcher(torch.ones(1, 2))
    assert time.perf_counter() - start >= 0.3      # it waited for company that did not come
    slow = RequestBatcher(Recording(), max_batch_size=2, max_wait=60.0)
    with ThreadPoolExecutor(2) as pool:
        start = time.perf_counter()
        list(pool.map(slow, [torch.ones(1, 2), torch.zeros(1, 2)]))
    assert time.perf_counter() - start < 30        # full at 2 rows: it ran without waiting a minute
    assert list(slow.batch_sizes) == [2]
    batcher.close()
    slow.close()


def test_a_model_fault_fails_only_the_requests_of_its_batch_and_the_worker_lives_on():
    model = Recording(delay=0.005, poison=13.0)
    batcher = RequestBatcher(model, max_batch_size=4, max_wait=0.02)
    inputs = [torch.tensor([[float(i), 1.0]]) for i in range(40)]
    futures = [batcher.submit(X) for X in inputs]
    outcomes = {}
    for X, future in zip(inputs, futures, strict=True):
        try:
            outcomes[int(X[0, 0])] = float(future.result(timeout=30)[0])
        except BatchFailed as error:
            assert "poisoned batch" in str(error)
            outcomes[int(X[0, 0])] = None
    poisoned = next(call for call in model.calls if 13.0 in call)
    assert {i for i, out in outcomes.items() if out is None} == {int(v) for v in poisoned}
    assert all(out == 10 * i + 1 for i, out in outcomes.items() if out is not None)
    assert float(batcher(torch.tensor([[2.0, 3.0]]))[0]) == 23.0
    batcher.close()


@pytest.mark.parametrize("bad_model", [lambda x: x[:1, 0], lambda x: "nonsense", lambda x: x.sum()])
def test_an_output_with_the_wrong_rows_fails_the_batch(bad_model):
    batcher = RequestBatcher(bad_model, max_batch_size=4, max_wait=0.0)
    with pytest.raises(BatchFailed, match="for a batch of 2 rows: a fault of the model"):
        batcher(torch.ones(2, 2))
    batcher.close()


def test_close_answers_what_is_queued_and_a_later_call_starts_again():
    model = Recording(delay=0.01)
    batcher = RequestBatcher(model, max_batch_size=2, max_wait=1.0)
    futures = [batcher.submit(torch.tensor([[float(i), 0.0]])) for i in range(7)]
    batcher.close()
    assert [float(f.result(timeout=0)[0]) for f in futures] == [10.0 * i for i in range(7)]
    assert float(batcher(torch.tensor([[1.0, 1.0]]))[0]) == 11.0
    batcher.close()
    batcher.close()  # idempotent


def test_bad_arguments_of_the_batcher():
    with pytest.raises(TypeError, match="Expected `model` to be callable"):
        RequestBatcher(None)
    with pytest.raises(ValueError, match="Expected `max_batch_size` to be an int >= 1"):
        RequestBatcher(lambda x: x, max_batch_size=0)
    with pytest.raises(TypeError, match="Expected `max_batch_size` to be an int >= 1"):
        RequestBatcher(lambda x: x, max_batch_size=2.5)
    with pytest.raises(ValueError, match="Expected `max_wait` to be a float >= 0"):
        RequestBatcher(lambda x: x, max_wait=-1)
    batcher = RequestBatcher(lambda x: x)
    with pytest.raises(TypeError, match="Expected `X` to be a torch.Tensor"):
        batcher([[1.0]])
    with pytest.raises(ValueError, match="Expected `X` to be a tensor with 1 or 2 or"):
        batcher(torch.tensor(1.0))
    with pytest.raises(ValueError, match="Expected `X` to be a non-empty tensor"):
        batcher(torch.ones(0, 2))
    assert repr(batcher) == "RequestBatcher(max_batch_size=32, max_wait=0.005)"


# ---------------------------------------------------------------- in the server, over HTTP

def test_concurrent_requests_get_their_own_predictions_from_shared_batches():
    model = Recording(delay=0.003)
    app = create_app(model, input_schema=["id", "x"], max_batch_size=8, max_batch_wait=0.01)
    bodies = [{"instances": [[float(i), float(j)] for j in range(1 + i % 2)]} for i in range(120)]
    with serve(app) as running:
        result = send_concurrently(running.url, bodies, clients=16)
    assert result.statuses == [200] * len(bodies)
    for body, answer in zip(bodies, result.bodies, strict=True):
        assert answer["predictions"] == [10 * i + x for i, x in body["instances"]]
    assert max(app.state.batcher.batch_sizes) <= 8
    assert max(app.state.batcher.batch_sizes) > 2        # batching happened


def test_the_default_server_runs_each_request_alone():
    app = create_app(lambda x: x[:, 0], input_schema=["a"])
    assert app.state.batcher is None


def test_a_batched_model_fault_is_a_500_for_its_batch_only_and_the_server_serves_on():
    model = Recording(delay=0.01, poison=13.0)
    app = create_app(model, input_schema=["id", "x"], max_batch_size=4, max_batch_wait=0.02)
    bodies = [{"instances": [[float(i), 1.0]]} for i in range(60)]
    with serve(app) as running:
        result = send_concurrently(running.url, bodies, clients=12)
        after = httpx.post(f"{running.url}/predict", json={"instances": [[5.0, 1.0]]})
    failed = {i for i, status in enumerate(result.statuses) if status == 500}
    poisoned = set().union(*({int(v) for v in call} for call in model.calls if 13.0 in call))
    assert 13 in failed and failed == poisoned
    assert all(result.statuses[i] == 200 and result.bodies[i]["predictions"] == [10 * i + 1]
               for i in range(60) if i not in failed)
    assert all("poisoned batch" in result.bodies[i]["detail"] for i in failed)
    assert after.status_code == 200 and after.json()["predictions"] == [51.0]


def test_a_non_finite_prediction_fails_only_its_own_request_in_a_batch():
    def model(x):
        time.sleep(0.01)
        return torch.where(x[:, 0] == 3, torch.nan, x[:, 0])

    app = create_app(model, input_schema=["a"], max_batch_size=16, max_batch_wait=0.05)
    with serve(app) as running:
        result = send_concurrently(running.url, [{"instances": [[float(i)]]} for i in range(8)], clients=8)
    assert result.statuses == [200, 200, 200, 500, 200, 200, 200, 200]
    assert "not finite" in result.bodies[3]["detail"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{not json", "headers": JSON}, 422),
        ({"content": b'{"instances": [[1.0]]}', "headers": JSON}, 422),
        ({"content": b'{"instances": [[1.0, NaN]]}', "headers": JSON}, 422),
        ({"content": json.dumps({"instances": [[1.0, 2.0]] * 9}).encode(), "headers": JSON}, 413),
        ({"content": b'{"instances": [[1.0, 2.0]]}' + b" " * 5000, "headers": JSON}, 413),
        ({"content": b'{"instances": [[1.0, 2.0]]}'}, 415),
    ],
)
def test_bad_requests_get_a_4xx_and_never_reach_the_batcher(kwargs, status):
    model = Recording()
    app = create_app(model, input_schema=["id", "x"], max_instances=8, max_body_bytes=4096, max_batch_size=4)
    with serve(app) as running:
        response = httpx.post(f"{running.url}/predict", **kwargs)
    assert response.status_code == status and response.json()["detail"]
    assert model.calls == []


def test_a_bounded_concurrent_load_of_good_and_bad_requests_gets_no_5xx():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1), nn.Flatten(0))
    X = torch.randn(400, 4, generator=torch.Generator().manual_seed(1))
    expected = predict_logits(model, X).tolist()
    rng = random.Random(0)
    bodies, wanted = [], []
    for i in range(400):
        if rng.random() < 0.75:
            k = rng.randint(1, 4)
            bodies.append({"instances": X[i: i + k].tolist()})
            wanted.append((200, expected[i: i + k]))
        else:
            bad, status = rng.choice([(b"{bad", 422), (b'{"instances": [[1, 2]]}', 422), (b"[]", 422),
                                      (json.dumps({"instances": [[0.0] * 4] * 9}).encode(), 413)])
            bodies.append(bad)
            wanted.append((status, None))
    app = create_app(model, input_schema=["a", "b", "c", "d"], max_instances=8, max_batch_size=16,
                     max_batch_wait=0.002)
    with serve(app) as running:
        result = send_concurrently(running.url, bodies, clients=16)
    assert result.server_errors == 0
    for (status, predictions), got, body in zip(wanted, result.statuses, result.bodies, strict=True):
        assert got == status
        if predictions is not None:
            assert body["predictions"] == pytest.approx(predictions, rel=1e-5, abs=1e-6)
    assert max(app.state.batcher.batch_sizes) <= 16


def test_requests_in_flight_are_answered_when_the_server_stops():
    release, first_batch = threading.Event(), []

    def model(x):
        first_batch.append(len(x))
        release.wait(30)
        return x[:, 0]

    app = create_app(model, input_schema=["id", "x"], max_batch_size=2, max_batch_wait=0.01)
    results = []
    with serve(app) as running:
        def ask(i):
            results.append(httpx.post(f"{running.url}/predict", json={"instances": [[float(i), 0.0]]},
                                      timeout=30).json()["predictions"])

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while sum(first_batch[:1]) + len(app.state.batcher._queue) < 8 and time.monotonic() < deadline:
            time.sleep(0.005)  # until every request is in the model or queued for it
        threading.Timer(0.2, release.set).start()  # the model finishes while the server is stopping
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [[float(i)] for i in range(8)]
    assert sum(app.state.batcher.batch_sizes) == 8 and max(app.state.batcher.batch_sizes) == 2


def test_a_batched_model_that_hangs_does_not_keep_the_server_up():
    entered, release = threading.Event(), threading.Event()

    def stuck(x):
        entered.set()
        release.wait(30)
        return x[:, 0]

    def ask(url):
        try:
            httpx.post(f"{url}/predict", json={"instances": [[1.0]]}, timeout=30)
        except httpx.HTTPError:
            pass

    try:
        with serve(create_app(stuck, input_schema=["a"], max_batch_size=4), shutdown_timeout=0.3) as running:
            threading.Thread(target=ask, args=(running.url,), daemon=True).start()
            assert entered.wait(10)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{running.url}/healthz", timeout=1)
    finally:
        release.set()


def test_bad_batching_arguments():
    with pytest.raises(ValueError, match="Expected `max_batch_size` to be an int >= 1"):
        create_app(lambda x: x, input_schema=["a"], max_batch_size=0)
    with pytest.raises(ValueError, match="Expected `max_batch_wait` to be a float >= 0"):
        create_app(lambda x: x, input_schema=["a"], max_batch_size=2, max_batch_wait=-0.1)
    with pytest.raises(TypeError, match="Expected `max_batch_wait` to be a float >= 0"):
        create_app(lambda x: x, input_schema=["a"], max_batch_size=2, max_batch_wait="1")
