"""Canary rollout: a share of live traffic to a candidate model, judged on live data, rolled back if worse.

A new model version that passed every offline test can still fail on live traffic (a
preprocessing step left out of its export, a shift in the data since its evaluation).
A canary rollout limits the damage: a router in front of the two versions sends a
small share of the requests to the candidate and the rest to the current model, keeps
each version's live error (from labels that arrive later, e.g. whether the user
clicked), and decides as the labels come in:

- **roll back** as soon as the candidate's error is higher than the current model's by
  more than ``margin`` and significantly so (its z-statistic above ``z``), or when the
  candidate fails more than ``max_server_errors`` requests: from then on every request
  goes to the current model;
- **promote** once the candidate has ``promote_after`` labelled predictions and its
  error is within ``margin`` of the current model's: from then on every request goes to
  the candidate;
- otherwise keep the split.

:func:`create_canary_app` is that router, over HTTP: ``POST /predict`` is forwarded to
one of two model servers (e.g. two :func:`~companion.serving.online.create_app`
servers) and the answer carries a ``request_id``; ``POST /feedback`` takes the labels
of an earlier request; ``GET /canary`` reports the split, the live metrics and the
decision. No request is lost to the rollout: if the candidate fails a request (an
error, no answer, or a 4xx that the current model does not give), the router asks the
current model, and counts the failure against the candidate. Vertex AI endpoints do
the split with ``traffic_split``; the comparison and the decision are yours to run.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware

from companion._validation import check_callable, check_float, check_instance, check_int, message
from companion.serving.online import _is_json, _read_body

__all__ = ["CanaryPolicy", "CanaryRouter", "LiveMetric", "canary_decision", "create_canary_app", "misclassified"]

Arm = Literal["current", "candidate"]
Decision = Literal["rollback", "promote", "continue"]
Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]


@dataclass(frozen=True)
class CanaryPolicy:
    """How a canary rollout splits traffic and when it decides.

    Args:
        share: the candidate's share of requests during the canary, a float in (0, 1).
        min_labels: labelled predictions each version needs before any decision on
            the metric, an int >= 1.
        promote_after: the candidate's labelled predictions needed to promote it, an
            int >= ``min_labels``.
        margin: how much higher the candidate's error may be and still count as good
            enough, a float >= 0 (0.02: two points of error rate).
        z: the z-statistic of the difference needed to roll back, a float > 0: 3 keeps
            the chance of rolling back an equally good candidate small although the
            rule is checked after every label.
        max_server_errors: requests the candidate may fail (an error, no answer)
            before it is rolled back whatever its metric, an int >= 0.

    Example:
        >>> CanaryPolicy(share=0.2).share
        0.2
    """

    share: float = 0.1
    min_labels: int = 50
    promote_after: int = 200
    margin: float = 0.02
    z: float = 3.0
    max_server_errors: int = 0

    def __post_init__(self) -> None:
        check_float("share", self.share, low=0, high=1, low_open=True, high_open=True)
        check_int("min_labels", self.min_labels, low=1)
        check_int("promote_after", self.promote_after, low=self.min_labels)
        check_float("margin", self.margin, low=0)
        check_float("z", self.z, low=0, low_open=True)
        check_int("max_server_errors", self.max_server_errors, low=0)


@dataclass
class LiveMetric:
    """One version's live record: requests served, failures, and its error on labelled predictions.

    ``n``, ``total`` and ``total_sq`` are the count, sum and sum of squares of the
    per-instance errors, so the mean and variance need no list of them.

    Example:
        >>> metric = LiveMetric()
        >>> metric.add([0.0, 1.0, 0.0, 0.0])
        >>> metric.n, metric.mean
        (4, 0.25)
    """

    requests: int = 0
    server_errors: int = 0
    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, errors: Sequence[float]) -> None:
        """Count the errors of newly labelled predictions."""
        for value in errors:
            self.n += 1
            self.total += value
            self.total_sq += value * value

    @property
    def mean(self) -> float:
        """The mean error (the error rate for 0/1 errors); NaN before any label."""
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The sample variance of the errors (n - 1 in the denominator); 0 with fewer than 2."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


def canary_decision(current: LiveMetric, candidate: LiveMetric, policy: CanaryPolicy) -> Decision:
    """Roll back, promote or continue, from the two versions' live metrics (see the module's rules).

    The difference of the mean errors, ``candidate - current``, is compared with its
    standard error (Welch's, from the two variances), so 0/1 errors and continuous
    losses are judged alike.

    Example:
        >>> policy = CanaryPolicy(min_labels=50, promote_after=100, margin=0.02)
        >>> current, worse, same = LiveMetric(), LiveMetric(), LiveMetric()
        >>> current.add([1.0] * 10 + [0.0] * 190)            # 5% error
        >>> worse.add([1.0] * 25 + [0.0] * 75)               # 25% error
        >>> same.add([1.0] * 5 + [0.0] * 95)                 # 5% error
        >>> canary_decision(current, worse, policy), canary_decision(current, same, policy)
        ('rollback', 'promote')
    """
    check_instance("policy", policy, CanaryPolicy, "a CanaryPolicy")
    if candidate.server_errors > policy.max_server_errors:
        return "rollback"
    if min(current.n, candidate.n) < policy.min_labels:
        return "continue"
    difference = candidate.mean - current.mean
    standard_error = math.sqrt(candidate.variance / candidate.n + current.variance / current.n)
    if difference > policy.margin and difference > policy.z * standard_error:
        return "rollback"
    if candidate.n >= policy.promote_after and difference <= policy.margin:
        return "promote"
    return "continue"


def misclassified(prediction: Any, label: float) -> float:
    """1.0 if a prediction gets its label wrong, else 0.0: the default live error.

    A list of class scores is wrong when its argmax is not ``label``; one number is a
    probability, wrong when ``prediction >= 0.5`` disagrees with ``label`` (0 or 1).

    Example:
        >>> misclassified([0.1, 2.0, -1.0], 1), misclassified(0.8, 0)
        (0.0, 1.0)
    """
    if isinstance(prediction, list):
        return float(int(np.argmax(prediction)) != label)
    return float((prediction >= 0.5) != bool(label))


@dataclass
class _Served:
    arm: Arm
    predictions: list[Any]


@dataclass
class CanaryRouter:
    """The state of one canary rollout: the split, each version's live metric, the decision.

    :func:`create_canary_app` keeps one as ``app.state.canary``; its methods are safe
    to call from any thread.

    Args:
        policy: the split and the decision rule.
        error: ``error(prediction, label) -> float`` for one instance, e.g.
            :func:`misclassified` (the default) or a squared error.
        seed: seeds the random split.
        max_pending: answered requests kept waiting for their labels; the oldest are
            forgotten beyond this (their labels then get a 404).

    Example:
        >>> router = CanaryRouter(CanaryPolicy(share=0.5, min_labels=2, promote_after=2))
        >>> ids = {arm: [router.served(arm, [[0.2, 0.8]]) for _ in range(2)] for arm in ("current", "candidate")}
        >>> [router.label(request_id, [1]) for request_id in ids["current"] + ids["candidate"]]
        ['continue', 'continue', 'continue', 'promote']
        >>> router.status()["state"], router.route()
        ('promoted', 'candidate')
    """

    policy: CanaryPolicy = field(default_factory=CanaryPolicy)
    error: Callable[[Any, float], float] = misclassified
    seed: int = 0
    max_pending: int = 100_000
    state: Literal["canary", "rolled_back", "promoted"] = field(default="canary", init=False)

    def __post_init__(self) -> None:
        check_instance("policy", self.policy, CanaryPolicy, "a CanaryPolicy")
        check_callable("error", self.error)
        check_int("seed", self.seed, low=0)
        check_int("max_pending", self.max_pending, low=1)
        self.metrics: dict[Arm, LiveMetric] = {"current": LiveMetric(), "candidate": LiveMetric()}
        self.decided_after: int | None = None  # requests served when the rollout was decided
        self._rng = np.random.default_rng(self.seed)
        self._pending: OrderedDict[str, _Served] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def share(self) -> float:
        """The candidate's share of requests now: the policy's during the canary, then 0 or 1."""
        return {"canary": self.policy.share, "rolled_back": 0.0, "promoted": 1.0}[self.state]

    def route(self) -> Arm:
        """The version that answers the next request (a random draw during the canary)."""
        with self._lock:
            if self.state == "canary":
                return "candidate" if self._rng.random() < self.policy.share else "current"
            return "candidate" if self.state == "promoted" else "current"

    def served(self, arm: Arm, predictions: list[Any]) -> str:
        """Record a request answered by ``arm``; returns the ``request_id`` its labels will name."""
        request_id = uuid.uuid4().hex
        with self._lock:
            self.metrics[arm].requests += 1
            self._pending[request_id] = _Served(arm, predictions)
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
        return request_id

    def failed(self, arm: Arm) -> Decision:
        """Record a request ``arm`` failed (the other version answered it); returns the decision."""
        with self._lock:
            self.metrics[arm].server_errors += 1
            return self._decide()

    def label(self, request_id: str, labels: Sequence[float]) -> Decision:
        """Score an earlier request's predictions against its ``labels``; returns the decision.

        Raises:
            KeyError: an unknown request, one already labelled, or one forgotten.
            ValueError: not one label per prediction.
        """
        with self._lock:
            served = self._pending.get(request_id)
            if served is None:
                raise KeyError(request_id)
            if len(labels) != len(served.predictions):
                raise ValueError(message("labels", f"{len(served.predictions)} labels, one per prediction",
                                         list(labels)))
            del self._pending[request_id]
            self.metrics[served.arm].add([float(self.error(p, y)) for p, y in
                                          zip(served.predictions, labels, strict=True)])
            return self._decide()

    def _decide(self) -> Decision:
        if self.state != "canary":
            return "continue"
        decision = canary_decision(self.metrics["current"], self.metrics["candidate"], self.policy)
        if decision != "continue":
            self.state = "rolled_back" if decision == "rollback" else "promoted"
            self.decided_after = sum(m.requests for m in self.metrics.values())
        return decision

    def status(self) -> dict[str, Any]:
        """The rollout's state, the candidate's share now, and each version's live figures."""
        with self._lock:
            return {
                "state": self.state,
                "share": self.share,
                "decided_after": self.decided_after,
                **{arm: {"requests": m.requests, "server_errors": m.server_errors, "labelled": m.n,
                         "error": None if m.n == 0 else m.mean}
                   for arm, m in self.metrics.items()},
            }


class _Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=64)
    labels: list[Number] = Field(min_length=1, max_length=100_000)


def _check_url(name: str, url: Any) -> str:
    check_instance(name, url, str, "a URL string")
    if not url.startswith(("http://", "https://")):
        raise ValueError(message(name, "an http:// or https:// URL", url))
    return url.rstrip("/")


def create_canary_app(
    current_url: str,
    candidate_url: str,
    *,
    policy: CanaryPolicy | None = None,
    error: Callable[[Any, float], float] = misclassified,
    seed: int = 0,
    timeout: float = 30.0,
    max_body_bytes: int = 1_048_576,
    allowed_hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
) -> FastAPI:
    """A router that runs a canary rollout between two model servers.

    Args:
        current_url: the base URL of the server of the current model (its
            ``POST /predict`` answers like :func:`~companion.serving.online.create_app`'s).
        candidate_url: the base URL of the candidate's server.
        policy: the split and the decision rule (:class:`CanaryPolicy`'s defaults if None).
        error: ``error(prediction, label) -> float`` for one instance (default
            :func:`misclassified`).
        seed: seeds the random split, an int >= 0.
        timeout: seconds to wait for a model server's answer, a float > 0; a
            candidate that does not answer in time has failed the request.
        max_body_bytes: the largest request body, in bytes (an int >= 1).
        allowed_hosts: the host names the router answers to (the ``Host`` header).

    Returns:
        The app. ``POST /predict`` returns the serving version's answer with a
        ``request_id`` and ``served_by`` (``"current"`` or ``"candidate"``) added; a
        bad request gets the model server's 4xx (or 413/415 from the router), and
        only a current model that fails or does not answer gives a 5xx (502 when
        unreachable). ``POST /feedback`` takes ``{"request_id": ..., "labels": [...]}``,
        one label per instance of that request, and returns the rollout's state (404
        for an unknown or already labelled request, 422 for malformed labels).
        ``GET /canary`` returns :meth:`CanaryRouter.status`; the router itself is
        ``app.state.canary``.

    Example:
        >>> from companion.serving.online import create_app, serve
        >>> with (serve(create_app(lambda x: x[:, 0], input_schema=["x"], model_version="v1")) as v1,
        ...       serve(create_app(lambda x: -x[:, 0], input_schema=["x"], model_version="v2")) as v2,
        ...       serve(create_canary_app(v1.url, v2.url, policy=CanaryPolicy(share=0.5))) as router):
        ...     answers = [httpx.post(f"{router.url}/predict", json={"instances": [[0.5]]}).json()
        ...                for _ in range(20)]
        >>> sorted({(a["served_by"], a["model_version"], a["predictions"][0]) for a in answers})
        [('candidate', 'v2', -0.5), ('current', 'v1', 0.5)]
    """
    urls: dict[Arm, str] = {"current": _check_url("current_url", current_url),
                            "candidate": _check_url("candidate_url", candidate_url)}
    policy = CanaryPolicy() if policy is None else check_instance("policy", policy, CanaryPolicy,
                                                                    "a CanaryPolicy")
    timeout = check_float("timeout", timeout, low=0, low_open=True)
    max_body_bytes = check_int("max_body_bytes", max_body_bytes, low=1)
    if isinstance(allowed_hosts, str) or not allowed_hosts:
        raise ValueError(message("allowed_hosts", "a non-empty sequence of host names", allowed_hosts))
    hosts = [check_instance(f"allowed_hosts[{i}]", h, str, "a string") for i, h in enumerate(allowed_hosts)]
    router = CanaryRouter(policy, error, seed)
    clients: list[httpx.AsyncClient] = []

    def client() -> httpx.AsyncClient:  # made on the server's event loop, at the first request
        if not clients:
            clients.append(httpx.AsyncClient(timeout=timeout, trust_env=False,
                                             limits=httpx.Limits(max_connections=64)))
        return clients[0]

    async def forward(arm: Arm, body: bytes) -> httpx.Response | None:
        try:
            return await client().post(f"{urls[arm]}/predict", content=body,
                                       headers={"content-type": "application/json"})
        except httpx.HTTPError:
            return None  # no answer: refused, reset, timed out

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        for open_client in clients:
            await open_client.aclose()

    app = FastAPI(title="companion canary router", lifespan=lifespan)
    app.state.canary = router
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=[f"[{h}]" if ":" in h and not h.startswith("[") else h for h in hosts])

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "rollout": router.state}

    @app.get("/canary")
    async def canary() -> dict[str, Any]:
        return router.status()

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        if not _is_json(request.headers.get("content-type")):
            raise HTTPException(415, "Send the instances as JSON, with Content-Type: application/json.")
        body = await _read_body(request, max_body_bytes)
        arm: Arm = router.route()
        answer = await forward(arm, body)
        if arm == "candidate" and (answer is None or answer.status_code != 200):
            fallback = await forward("current", body)
            # The candidate failed if it gave no answer, a 5xx, or a 4xx the current model does not give.
            if answer is None or answer.status_code >= 500 or (fallback is not None and fallback.status_code == 200):
                router.failed("candidate")
            arm, answer = "current", fallback
        if answer is None:
            raise HTTPException(502, f"The {arm} model's server did not answer: try again later.")
        if answer.status_code != 200:
            return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))
        reply = answer.json()
        reply["request_id"] = router.served(arm, reply["predictions"])
        reply["served_by"] = arm
        return JSONResponse(reply)

    @app.post("/feedback")
    async def feedback(request: Request) -> dict[str, Any]:
        if not _is_json(request.headers.get("content-type")):
            raise HTTPException(415, "Send the labels as JSON, with Content-Type: application/json.")
        body = await _read_body(request, max_body_bytes)
        try:
            sent = _Feedback.model_validate_json(body)
        except ValidationError as invalid:
            first = invalid.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise HTTPException(422, f"{where}: {first['msg']}"[:300]) from None
        try:
            decision = router.label(sent.request_id, sent.labels)
        except KeyError:
            raise HTTPException(404, "Unknown request_id: never served, already labelled, or "
                                     "forgotten (too old).") from None
        except ValueError as mismatch:
            raise HTTPException(422, str(mismatch)[:300]) from None
        return {"decision": decision, "state": router.state}

    return app
