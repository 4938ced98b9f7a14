"""Canary rollouts over real HTTP: the split, the live comparison, rollback and promotion, and no
request lost on the way; then the decision rule and the router's state on their own."""

from __future__ import annotations

import math
import random
import re
import threading
from contextlib import ExitStack

import httpx
import numpy as np
import pytest
import torch

from companion.serving.canary import (
    CanaryPolicy,
    CanaryRouter,
    LiveMetric,
    canary_decision,
    create_canary_app,
    misclassified,
)
from companion.serving.load import send_concurrently
from companion.serving.online import create_app, serve
from companion.utils import free_port

JSON = {"content-type": "application/json"}
# One feature x in [0, 1]; the label is x > 0.5, flipped for one row in ten: every model errs a little.
_rng = random.Random(0)
XS = [_rng.random() for _ in range(4000)]
LABELS = [int((x > 0.5) != (_rng.random() < 0.1)) for x in XS]


def good(x):        # P(label = 1) = x: about 10% error
    return x[:, 0]


def worse(x):       # backwards: about 90% error
    return 1 - x[:, 0]


def failing(x):     # a fault of the model: a 500 for every request
    return x[:, 0] * torch.nan


def rollout(router_url, *, waves, per_wave, rows=2, clients=8, seed=0):
    """Requests in waves; the labels of a wave arrive after its answers (delayed labels)."""
    rng = random.Random(seed)
    answers, feedback = [], []
    for _ in range(waves):
        picks = [rng.sample(range(len(XS)), rows) for _ in range(per_wave)]
        result = send_concurrently(router_url, [{"instances": [[XS[i]] for i in p]} for p in picks],
                                   clients=clients)
        answers += list(zip(picks, result.statuses, result.bodies, strict=True))
        labels = [{"request_id": body["request_id"], "labels": [LABELS[i] for i in p]}
                  for p, status, body in zip(picks, result.statuses, result.bodies, strict=True) if status == 200]
        feedback += send_concurrently(router_url, labels, path="/feedback", clients=clients).statuses
    return answers, feedback


@pytest.fixture()
def servers():
    """Starts model servers and routers; all stop at the end of the test."""
    with ExitStack() as stack:
        def start(app):
            return stack.enter_context(serve(app))
        yield start


def backends(servers, current, candidate, **kwargs):
    v1 = servers(create_app(current, input_schema=["x"], model_version="v1", **kwargs))
    v2 = servers(create_app(candidate, input_schema=["x"], model_version="v2", **kwargs))
    return v1, v2


def check_answers(answers, models):
    """Every request got a 200 from one version, with that version's predictions."""
    for picks, status, body in answers:
        assert status == 200, body
        version = {"current": "v1", "candidate": "v2"}[body["served_by"]]
        assert body["model_version"] == version
        expected = models[body["served_by"]](torch.tensor([[XS[i]] for i in picks])).tolist()
        assert body["predictions"] == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- over HTTP

def test_the_candidates_share_of_traffic_is_within_binomial_bounds(servers):
    v1, v2 = backends(servers, good, good)
    policy = CanaryPolicy(share=0.25, min_labels=10_000, promote_after=10_000)
    router = servers(create_canary_app(v1.url, v2.url, policy=policy, seed=3))
    answers, _ = rollout(router.url, waves=1, per_wave=400, clients=16)
    check_answers(answers, {"current": good, "candidate": good})
    to_candidate = sum(body["served_by"] == "candidate" for _, _, body in answers)
    mean, sd = 400 * 0.25, math.sqrt(400 * 0.25 * 0.75)
    assert mean - 4 * sd < to_candidate < mean + 4 * sd
    status = httpx.get(f"{router.url}/canary").json()
    assert status["candidate"]["requests"] == to_candidate and status["current"]["requests"] == 400 - to_candidate
    assert status["state"] == "canary" and status["share"] == 0.25


def test_a_worse_candidate_is_rolled_back_before_it_reaches_everyone(servers):
    v1, v2 = backends(servers, good, worse)
    policy = CanaryPolicy(share=0.2, min_labels=20, promote_after=100, margin=0.08)
    router = servers(app := create_canary_app(v1.url, v2.url, policy=policy))
    answers, feedback = rollout(router.url, waves=6, per_wave=40, rows=4)
    check_answers(answers, {"current": good, "candidate": worse})
    assert set(feedback) == {200}
    status = app.state.canary.status()
    assert status["state"] == "rolled_back" and status["share"] == 0.0
    assert status["candidate"]["error"] > 0.7 and status["current"]["error"] < 0.2
    served_by = [body["served_by"] for _, _, body in answers]
    decided = status["decided_after"]
    assert decided <= 80                                     # within the first two waves
    assert served_by.count("candidate") < 0.35 * decided     # only its share of the traffic, then none
    assert "candidate" not in served_by[80:]                 # every later request went to the current model


def test_a_candidate_as_good_as_the_current_model_is_promoted_not_rolled_back(servers):
    v1, v2 = backends(servers, good, good)
    policy = CanaryPolicy(share=0.2, min_labels=20, promote_after=100, margin=0.08)
    router = servers(app := create_canary_app(v1.url, v2.url, policy=policy))
    answers, feedback = rollout(router.url, waves=6, per_wave=40, rows=4)
    check_answers(answers, {"current": good, "candidate": good})
    assert set(feedback) == {200}
    status = app.state.canary.status()
    assert status["state"] == "promoted" and status["share"] == 1.0
    decided = status["decided_after"]
    served_by = [body["served_by"] for _, _, body in answers]
    assert decided < 240 and set(served_by[-40:]) == {"candidate"}  # the last wave went to the candidate


def test_no_request_is_lost_while_the_rollout_rolls_back(servers):
    v1, v2 = backends(servers, good, worse)
    policy = CanaryPolicy(share=0.3, min_labels=15, promote_after=1000, margin=0.05)
    router = servers(app := create_canary_app(v1.url, v2.url, policy=policy))
    statuses, served, lock = [], [], threading.Lock()

    def client(worker):  # each client asks, then sends the label at once: the switch happens mid-load
        rng = random.Random(worker)
        with httpx.Client(base_url=router.url, timeout=30) as http:
            for _ in range(25):
                i = rng.randrange(len(XS))
                answer = http.post("/predict", json={"instances": [[XS[i]]]})
                with lock:
                    statuses.append(answer.status_code)
                    served.append(answer.json().get("served_by"))
                if answer.status_code == 200:
                    http.post("/feedback", json={"request_id": answer.json()["request_id"], "labels": [LABELS[i]]})

    threads = [threading.Thread(target=client, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * 400
    status = app.state.canary.status()
    assert status["state"] == "rolled_back"
    assert 15 <= served.count("candidate") < 200 and served.count("current") > 200
    assert status["current"]["requests"] + status["candidate"]["requests"] == 400


@pytest.mark.parametrize("fault", ["unreachable", "5xx", "other schema"])
def test_a_failing_candidate_is_rolled_back_and_the_current_model_answers_for_it(servers, fault):
    v1 = servers(create_app(good, input_schema=["x"], model_version="v1"))
    if fault == "unreachable":
        candidate_url = f"http://127.0.0.1:{free_port()}"
    elif fault == "5xx":
        candidate_url = servers(create_app(failing, input_schema=["x"], model_version="v2")).url
    else:  # a candidate that expects another feature: its 422s are its own fault
        candidate_url = servers(create_app(lambda x: x[:, 0], input_schema=["x", "y"], model_version="v2")).url
    policy = CanaryPolicy(share=0.5, max_server_errors=2)
    router = servers(app := create_canary_app(v1.url, candidate_url, policy=policy, timeout=5))
    result = send_concurrently(router.url, [{"instances": [[0.25]]}] * 60, clients=4)
    assert result.statuses == [200] * 60
    assert {body["model_version"] for body in result.bodies} == {"v1"}
    status = app.state.canary.status()
    assert status["state"] == "rolled_back" and 3 <= status["candidate"]["server_errors"] <= 6
    assert status["current"]["requests"] == 60 and status["candidate"]["requests"] == 0


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{not json", "headers": JSON}, 422),
        ({"content": b'{"instances": [[1.0, 2.0]]}', "headers": JSON}, 422),
        ({"content": b'{"instances": [[NaN]]}', "headers": JSON}, 422),
        ({"content": b'{"instances": [[1.0]]}'}, 415),
        ({"content": b'{"instances": [[1.0]]}' + b" " * 5000, "headers": JSON}, 413),
    ],
)
def test_bad_requests_get_a_4xx_and_do_not_count_against_the_candidate(servers, kwargs, status):
    v1, v2 = backends(servers, good, good)
    router = servers(app := create_canary_app(v1.url, v2.url, policy=CanaryPolicy(share=0.5),
                                              max_body_bytes=4096))
    for _ in range(10):
        response = httpx.post(f"{router.url}/predict", **kwargs)
        assert response.status_code == status and response.json()["detail"]
    after = app.state.canary.status()
    assert after["state"] == "canary" and after["candidate"]["server_errors"] == 0
    assert after["candidate"]["requests"] == after["current"]["requests"] == 0


def test_feedback_that_names_no_pending_request_or_does_not_fit_it_gets_a_4xx(servers):
    v1, v2 = backends(servers, good, good)
    router = servers(create_canary_app(v1.url, v2.url, max_body_bytes=4096))
    request_id = httpx.post(f"{router.url}/predict", json={"instances": [[0.2], [0.9]]}).json()["request_id"]
    url = f"{router.url}/feedback"
    assert httpx.post(url, json={"request_id": "nope", "labels": [1]}).status_code == 404
    assert httpx.post(url, json={"request_id": request_id, "labels": [1]}).status_code == 422   # 2 needed
    for bad in [{"request_id": request_id}, {"request_id": request_id, "labels": []},
                {"request_id": request_id, "labels": ["1", 0]}, {"request_id": request_id, "labels": [0, 1], "x": 1}]:
        response = httpx.post(url, json=bad)
        assert response.status_code == 422 and len(response.json()["detail"]) <= 300
    assert httpx.post(url, content=b'{"request_id": "a", "labels": [NaN]}', headers=JSON).status_code == 422
    assert httpx.post(url, content=b"{}").status_code == 415
    assert httpx.post(url, content=b" " * 5000, headers=JSON).status_code == 413
    ok = httpx.post(url, json={"request_id": request_id, "labels": [0, 1]})
    assert ok.status_code == 200 and ok.json() == {"decision": "continue", "state": "canary"}
    assert httpx.post(url, json={"request_id": request_id, "labels": [0, 1]}).status_code == 404  # only once


def test_the_router_answers_only_its_own_host_names_and_reports_health(servers):
    v1, v2 = backends(servers, good, good)
    router = servers(create_canary_app(v1.url, v2.url))
    assert httpx.get(f"{router.url}/healthz").json() == {"status": "ok", "rollout": "canary"}
    response = httpx.post(f"{router.url}/predict", json={"instances": [[0.5]]}, headers={"host": "evil.example"})
    assert response.status_code == 400


def test_an_unreachable_current_model_is_a_502(servers):
    v2 = servers(create_app(good, input_schema=["x"]))
    router = servers(create_canary_app(f"http://127.0.0.1:{free_port()}", v2.url,
                                       policy=CanaryPolicy(share=0.01), timeout=5))
    answers = [httpx.post(f"{router.url}/predict", json={"instances": [[0.5]]}) for _ in range(5)]
    assert {a.status_code for a in answers} == {502}
    assert "did not answer" in answers[0].json()["detail"]


def test_bad_arguments_of_the_router():
    with pytest.raises(ValueError, match="Expected `current_url` to be an http:// or https:// URL"):
        create_canary_app("127.0.0.1:80", "http://127.0.0.1:81")
    with pytest.raises(TypeError, match="Expected `candidate_url` to be a URL string"):
        create_canary_app("http://127.0.0.1:80", None)
    with pytest.raises(TypeError, match="Expected `policy` to be a CanaryPolicy"):
        create_canary_app("http://a", "http://b", policy={"share": 0.1})
    with pytest.raises(ValueError, match="Expected `timeout` to be a float > 0"):
        create_canary_app("http://a", "http://b", timeout=0)
    with pytest.raises(ValueError, match="Expected `max_body_bytes` to be an int >= 1"):
        create_canary_app("http://a", "http://b", max_body_bytes=0)
    with pytest.raises(ValueError, match="Expected `allowed_hosts` to be a non-empty sequence"):
        create_canary_app("http://a", "http://b", allowed_hosts="localhost")
    with pytest.raises(TypeError, match="Expected `error` to be callable"):
        create_canary_app("http://a", "http://b", error=3)
    with pytest.raises(ValueError, match="Expected `seed` to be an int >= 0"):
        create_canary_app("http://a", "http://b", seed=-1)


# ---------------------------------------------------------------- the rule and the state

def metric(errors):
    m = LiveMetric()
    m.add([float(e) for e in errors])
    return m


def test_live_metric_matches_numpy():
    values = np.random.default_rng(0).random(50)
    m = metric(values)
    assert m.n == 50 and m.mean == pytest.approx(values.mean())
    assert m.variance == pytest.approx(values.var(ddof=1))
    assert math.isnan(LiveMetric().mean) and metric([1.0]).variance == 0.0


def test_the_decision_rule():
    policy = CanaryPolicy(min_labels=50, promote_after=200, margin=0.02, z=3.0)
    current = metric([1] * 50 + [0] * 950)                      # 5%
    assert canary_decision(current, metric([1] * 20 + [0] * 29), policy) == "continue"   # 49 labels: wait
    assert canary_decision(current, metric([1] * 20 + [0] * 30), policy) == "rollback"   # 40%, clearly worse
    assert canary_decision(current, metric([1] * 5 + [0] * 95), policy) == "continue"    # as good, too few
    assert canary_decision(current, metric([1] * 10 + [0] * 190), policy) == "promote"   # as good, enough
    assert canary_decision(current, metric([1] * 13 + [0] * 187), policy) == "promote"   # 6.5%: within margin
    # 12% on 50 labels is 7 points worse, but not significantly (z = 1.5): keep watching
    assert canary_decision(current, metric([1] * 6 + [0] * 44), policy) == "continue"
    assert canary_decision(current, metric([1] * 24 + [0] * 176), policy) == "continue"  # 12% on 200: z = 2.9
    assert canary_decision(current, metric([1] * 26 + [0] * 174), policy) == "rollback"  # 13% on 200: z = 3.2
    # a continuous loss is judged alike
    assert canary_decision(metric([0.1, 0.2] * 50), metric([0.5, 0.6] * 50), policy) == "rollback"
    failing = metric([0] * 10)
    failing.server_errors = 1
    assert canary_decision(current, failing, policy) == "rollback"    # max_server_errors=0
    assert canary_decision(current, failing, CanaryPolicy(max_server_errors=1)) == "continue"
    with pytest.raises(TypeError, match="Expected `policy` to be a CanaryPolicy"):
        canary_decision(current, current, None)


def test_an_equal_candidate_is_rarely_rolled_back_although_the_rule_runs_after_every_label():
    rng = np.random.default_rng(0)
    policy = CanaryPolicy(share=0.2, min_labels=30, promote_after=200, margin=0.02)
    rollbacks = 0
    for _ in range(200):
        current, candidate = LiveMetric(), LiveMetric()
        for _ in range(1000):
            target = candidate if rng.random() < 0.2 else current
            target.add([float(rng.random() < 0.1)])
            if (decision := canary_decision(current, candidate, policy)) != "continue":
                rollbacks += decision == "rollback"
                break
    assert rollbacks <= 4   # 2% of 200 rollouts; with z = 0 (no significance asked) it is far more
    assert sum(_simulated_rollbacks(np.random.default_rng(0), CanaryPolicy(
        share=0.2, min_labels=30, promote_after=200, margin=0.0, z=1e-9)) for _ in range(50)) > 10


def _simulated_rollbacks(rng, policy):
    current, candidate = LiveMetric(), LiveMetric()
    for _ in range(1000):
        (candidate if rng.random() < 0.2 else current).add([float(rng.random() < 0.1)])
        if (decision := canary_decision(current, candidate, policy)) != "continue":
            return decision == "rollback"
    return False


def test_the_router_splits_by_share_and_then_sends_everything_one_way():
    router = CanaryRouter(CanaryPolicy(share=0.1, min_labels=1, promote_after=1), seed=0)
    draws = [router.route() for _ in range(20_000)]
    mean, sd = 2000, math.sqrt(20_000 * 0.1 * 0.9)
    assert abs(draws.count("candidate") - mean) < 4 * sd
    current = router.served("current", [0.9])
    candidate = router.served("candidate", [0.1])
    assert router.label(current, [1]) == "continue"
    assert router.label(candidate, [1]) == "rollback"    # wrong where the current model was right
    assert {router.route() for _ in range(1000)} == {"current"} and router.share == 0.0
    assert router.failed("candidate") == "continue"     # decided: nothing changes it any more
    assert router.status()["decided_after"] == 2


def test_the_router_forgets_the_oldest_pending_requests_and_checks_labels():
    router = CanaryRouter(max_pending=3)
    ids = [router.served("current", [0.5]) for _ in range(5)]
    with pytest.raises(KeyError):
        router.label(ids[0], [1])
    with pytest.raises(ValueError, match="Expected `labels` to be 1 labels, one per prediction"):
        router.label(ids[4], [1, 0])
    assert router.label(ids[4], [1]) == "continue"
    assert router.status()["current"] == {"requests": 5, "server_errors": 0, "labelled": 1, "error": 0.0}


def test_misclassified():
    assert misclassified([0.1, 0.7, 0.2], 1) == 0.0 and misclassified([0.1, 0.7, 0.2], 2) == 1.0
    assert misclassified(0.5, 1) == 0.0 and misclassified(0.49, 1) == 1.0 and misclassified(0.2, 0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"share": 0.0}, ValueError, "`share` to be a float in (0, 1)"),
        ({"share": 1.0}, ValueError, "`share` to be a float in (0, 1)"),
        ({"min_labels": 0}, ValueError, "`min_labels` to be an int >= 1"),
        ({"min_labels": 50, "promote_after": 10}, ValueError, "`promote_after` to be an int >= 50"),
        ({"margin": -0.1}, ValueError, "`margin` to be a float >= 0"),
        ({"z": 0}, ValueError, "`z` to be a float > 0"),
        ({"max_server_errors": -1}, ValueError, "`max_server_errors` to be an int >= 0"),
        ({"share": "0.1"}, TypeError, "`share` to be a float"),
    ],
)
def test_bad_policies(kwargs, error, fragment):
    with pytest.raises(error, match=f"Expected {re.escape(fragment)}"):
        CanaryPolicy(**kwargs)


def test_bad_router_arguments():
    with pytest.raises(TypeError, match="Expected `policy` to be a CanaryPolicy"):
        CanaryRouter(policy=None)
    with pytest.raises(ValueError, match="Expected `max_pending` to be an int >= 1"):
        CanaryRouter(max_pending=0)
