"""companion.metrics vs scikit-learn on one million scores: time per call and ratio.

Run: .venv/bin/python benchmarks/metrics.py [--n 1000000] [--repeats 3]
Scores are rounded to 4 decimals, so ties are common, as with real model outputs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn import metrics as skm

from companion import metrics as M


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    rng = np.random.default_rng(0)
    y = (rng.random(args.n) < 0.1).astype(np.int64)
    s = np.round(np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1), 4)
    pred = (s >= 0.5).astype(np.int64)
    yt, st, pt = torch.from_numpy(y), torch.from_numpy(s), torch.from_numpy(pred)
    cases = [
        ("accuracy", lambda: M.accuracy(yt, pt), lambda: skm.accuracy_score(y, pred)),
        ("confusion_matrix", lambda: M.confusion_matrix(yt, pt), lambda: skm.confusion_matrix(y, pred)),
        ("precision", lambda: M.precision(yt, pt), lambda: skm.precision_score(y, pred)),
        ("recall", lambda: M.recall(yt, pt), lambda: skm.recall_score(y, pred)),
        ("roc_curve", lambda: M.roc_curve(yt, st), lambda: skm.roc_curve(y, s, drop_intermediate=False)),
        ("roc_auc", lambda: M.roc_auc(yt, st), lambda: skm.roc_auc_score(y, s)),
        ("pr_curve", lambda: M.pr_curve(yt, st), lambda: skm.precision_recall_curve(y, s)),
        ("pr_auc", lambda: M.pr_auc(yt, st), lambda: skm.average_precision_score(y, s)),
    ]
    print(f"n = {args.n:,} scores, {len(np.unique(s)):,} distinct; best of {args.repeats}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'metric':18s} {'ours (ms)':>10s} {'sklearn (ms)':>13s} {'ours/sklearn':>13s}  agree")
    for name, ours, ref in cases:
        a, b = ours(), ref()
        if isinstance(a, tuple):
            agree = all(np.allclose(x.numpy(), r) for x, r in zip(a, b, strict=True))
        elif isinstance(a, torch.Tensor):
            agree = np.array_equal(a.numpy(), b)
        else:
            agree = abs(a - b) < 1e-9
        t_ours, t_ref = best_of(ours, args.repeats), best_of(ref, args.repeats)
        print(f"{name:18s} {t_ours * 1e3:10.1f} {t_ref * 1e3:13.1f} {t_ours / t_ref:13.2f}  {agree}")


if __name__ == "__main__":
    main()
