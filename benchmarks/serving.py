"""Offline lookup vs online request latency, online throughput, and a bounded load test.

Run: .venv/bin/python benchmarks/serving.py [--requests 2000] [--bad-share 0.2] [--threads 4]
Everything runs on this machine: the server listens on a free 127.0.0.1 port only.
The load test sends a mix of good requests and malformed ones (bad JSON, wrong lengths, NaN,
strings, missing keys) and fails (exit status 1) unless there is no 5xx and every good request
got a 200 with one prediction per instance.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
from torch import nn

from companion.serving import PredictionTable, batch_predict, create_app, serve

FEATURES = [f"x{i}" for i in range(8)]
MALFORMED = [
    b"{not json",
    b'{"instances": [[1, 2]]}',
    b'{"instances": [[1, 2, 3, 4, 5, 6, 7, NaN]]}',
    b'{"instances": [["a", 2, 3, 4, 5, 6, 7, 8]]}',
    b'{"instances": [{"x0": 1}]}',
    b'{"instances": []}',
    b"[]",
    b"",
]


def percentiles(seconds: list[float]) -> str:
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e3
    return f"p50 {p50:8.3f} ms  p99 {p99:8.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--bad-share", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--catalogue", type=int, default=100_000)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1), nn.Flatten(0))
    X = torch.randn(args.catalogue, 8)
    ids = [f"item-{i}" for i in range(args.catalogue)]
    db = Path(tempfile.mkdtemp()) / "predictions.db"
    start = time.perf_counter()
    batch_predict(model, (ids, X), db_path=db, model_version="v1", transform=torch.sigmoid)
    batch_seconds = time.perf_counter() - start
    print(f"offline batch: {args.catalogue:,} items scored and written in {batch_seconds:.2f} s "
          f"({batch_seconds / args.catalogue * 1e6:.1f} µs per item)")

    rng = random.Random(0)
    with PredictionTable(db) as table:
        lookups = []
        for _ in range(2000):
            key = ids[rng.randrange(args.catalogue)]
            t = time.perf_counter()
            table.lookup(key)
            lookups.append(time.perf_counter() - t)

    app = create_app(model, input_schema=FEATURES, transform=torch.sigmoid)
    with serve(app) as server, httpx.Client(base_url=server.url) as client:
        online = []
        for i in range(500):
            body = {"instances": [X[i].tolist()]}
            t = time.perf_counter()
            client.post("/predict", json=body).raise_for_status()
            online.append(time.perf_counter() - t)
        print(f"{'offline lookup (SQLite)':28s} {percentiles(lookups)}")
        print(f"{'online request (1 instance)':28s} {percentiles(online)}")
        print(f"ratio online/offline p50: {np.median(online) / np.median(lookups):.0f}x")

        # bounded load test: a fixed number of requests from a few threads
        plan = [rng.random() < args.bad_share for _ in range(args.requests)]

        local = threading.local()  # one keep-alive client per thread
        clients = []

        def send(i: int) -> tuple[bool, int, bool]:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=server.url, timeout=10)
                clients.append(local.client)
            c = local.client
            if plan[i]:
                r = c.post("/predict", content=MALFORMED[i % len(MALFORMED)],
                           headers={"content-type": "application/json"})
                return True, r.status_code, "detail" in r.json()
            r = c.post("/predict", json={"instances": [X[i % len(X)].tolist()] * 4})
            return False, r.status_code, r.status_code == 200 and len(r.json()["predictions"]) == 4

        t = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            results = list(pool.map(send, range(args.requests)))
        elapsed = time.perf_counter() - t
        healthy = client.get("/healthz").status_code == 200
        for c in clients:
            c.close()

    good = [r for r in results if not r[0]]
    bad = [r for r in results if r[0]]
    n5xx = sum(r[1] >= 500 for r in results)
    good_ok = sum(r[2] for r in good)
    bad_4xx = sum(400 <= r[1] < 500 and r[2] for r in bad)
    print(f"load test: {args.requests} requests ({len(bad)} malformed) from {args.threads} threads in "
          f"{elapsed:.1f} s = {args.requests / elapsed:.0f} requests/s")
    print(f"  good requests answered 200: {good_ok}/{len(good)}; malformed answered 4xx with a "
          f"message: {bad_4xx}/{len(bad)}; 5xx: {n5xx}; healthy afterwards: {healthy}")
    passed = n5xx == 0 and good_ok == len(good) and bad_4xx == len(bad) and healthy
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
