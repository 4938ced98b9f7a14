"""Offline lookup vs online request latency.

Run: .venv/bin/python benchmarks/serving.py [--catalogue 100000]
Everything runs on this machine: the server listens on a free 127.0.0.1 port only.
The load test (16 client threads, 5,000 good, malformed, oversized and non-finite requests,
health checks and peak memory) is a test that runs in `make test`; it prints its figures with
``-s``: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -s tests/serving/test_online_load.py
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from torch import nn

from companion.serving import PredictionTable, batch_predict, create_app, serve

FEATURES = [f"x{i}" for i in range(8)]


def percentiles(seconds: list[float]) -> str:
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e3
    return f"p50 {p50:8.3f} ms  p99 {p99:8.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
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


if __name__ == "__main__":
    main()
