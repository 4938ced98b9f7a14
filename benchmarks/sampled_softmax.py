"""Full softmax vs candidate sampling: seconds per training step, and the accuracy each reaches.

Run:  .venv/bin/python benchmarks/sampled_softmax.py  [--quick]

Part 1 times one training step (forward, loss, backward, SGD update) of a
``Linear(64, 64) -> ReLU -> Linear(64, C)`` model at C = 1k, 10k and 100k classes
with each loss (companion.sampled_softmax.step_times: medians of steps timed interleaved).
Part 2 trains the same model on the same synthetic task with C = 10k classes,
once with each loss, for the same number of steps, and scores both with the full
softmax on held-out data. The task: class labels follow a Zipf-like (log-uniform)
law, as word vocabularies do; each class has a random prototype in R^32 and an
example is its prototype plus Gaussian noise.

Targets (issue 3): >= 10x faster per step at 100k classes; accuracy within 2 points.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch
from torch import nn

from companion.sampled_softmax import SampledSoftmaxLoss, full_softmax_loss, step_times
from companion.utils import seed_everything

DIM_IN, HIDDEN = 32, 64


def make_task(
    num_classes: int, n: int, *, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prototypes ``(C, DIM_IN)``, features ``(n, DIM_IN)`` and log-uniform labels ``(n,)``."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(num_classes, DIM_IN, generator=torch.Generator().manual_seed(0))
    u = torch.rand(n, dtype=torch.float64, generator=g)
    y = ((torch.exp(u * math.log(num_classes + 1)) - 1).long()).clamp(0, num_classes - 1)
    x = prototypes[y] + 0.5 * torch.randn(n, DIM_IN, generator=g)
    return prototypes, x, y


def train_and_score(
    num_classes: int, loss_name: str, *, steps: int, batch: int, num_sampled: int
) -> tuple[float, float]:
    """Train with one loss; return (full-softmax test accuracy, seconds of training)."""
    seed_everything(0)
    _, x, y = make_task(num_classes, steps * batch, seed=1)
    _, x_test, y_test = make_task(num_classes, 20_000, seed=2)
    body = nn.Sequential(nn.Linear(DIM_IN, HIDDEN), nn.ReLU())
    head = nn.Linear(HIDDEN, num_classes)
    if loss_name == "full":
        loss_fn = full_softmax_loss
    else:
        loss_fn = SampledSoftmaxLoss(
            num_classes, num_sampled, sampler="log_uniform", sparse_grad=True
        )
    optimizer = torch.optim.SGD([*body.parameters(), *head.parameters()], lr=0.5)
    start = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(body(xb), yb, head).backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = float((head(body(x_test)).argmax(1) == y_test).float().mean())
    return accuracy, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and steps (a smoke run)"
    )
    args = parser.parse_args()
    repeats, steps = (2, 100) if args.quick else (10, 400)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CPU"
    )

    step_times([1000], repeats=1, device="cpu")  # warm up the thread pool and allocator
    times = step_times(
        [1_000, 10_000, 100_000],
        num_sampled=512,
        batch_size=256,
        hidden_dim=HIDDEN,
        repeats=repeats,
        device="cpu",
    )
    print(
        "\nseconds per training step (batch 256, 512 log-uniform draws, median of",
        repeats,
        "interleaved steps)",
    )
    print(f"{'classes':>9} {'full (ms)':>10} {'sampled (ms)':>13} {'speed-up':>9}")
    for c, full, sampled in zip(times["classes"], times["full"], times["sampled"]):
        print(f"{c:>9,} {full * 1e3:>10.2f} {sampled * 1e3:>13.2f} {full / sampled:>8.1f}x")

    print(
        f"\naccuracy at 10,000 classes after {steps} SGD steps of 256 examples (full-softmax test accuracy)"
    )
    print(f"{'loss':>8} {'accuracy':>9} {'train s':>8}")
    scores = {}
    for name in ("full", "sampled"):
        scores[name] = train_and_score(10_000, name, steps=steps, batch=256, num_sampled=512)
        print(f"{name:>8} {scores[name][0]:>9.3f} {scores[name][1]:>8.1f}")
    gap = 100 * (scores["full"][0] - scores["sampled"][0])
    speedup = times["full"][-1] / times["sampled"][-1]
    print(
        f"\nspeed-up at 100k classes: {speedup:.0f}x (target >= 10x): {'met' if speedup >= 10 else 'NOT met'}"
    )
    print(
        f"accuracy gap: {gap:+.1f} points (target within 2): {'met' if abs(gap) <= 2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
