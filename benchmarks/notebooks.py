"""How long a reader waits for each notebook: one at a time, each from a cold kernel.

Run: .venv/bin/python benchmarks/notebooks.py [--busy 2] [--limit 20] [notebooks/4.1.4-*.ipynb ...]

Each notebook runs in a fresh kernel (start-up included) with nbclient, as "Run all" in
Colab does, with torch's default thread count: no OMP_NUM_THREADS=1 here, because a
reader does not set it. The time is what the reader waits for: from starting the kernel
to the last cell's answer. Shutting the kernel down comes after and is printed apart: a
kernel that has imported torch takes 2-3 s to exit (the interpreter tearing down its
modules), which nobody waits for. ``--busy N`` starts N busy-loop processes beside the run, to see
what a shared machine does to the times. The table compares each time with the course's
limit (20 s on two cores); the script exits 1 when one is over it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def _spin() -> None:
    while True:
        pass


def run(path: Path) -> tuple[float, float]:
    """Seconds from the kernel's start to the last cell's answer, and then to the kernel's exit."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        ran = time.perf_counter() - start
    return ran, time.perf_counter() - start - ran


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes to run beside")
    parser.add_argument("--limit", type=float, default=20.0, help="seconds a notebook may take")
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    os.environ.setdefault("IPYTHONDIR", str(ROOT / "tests" / "ipython"))  # offline, as the tests run
    busy = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for process in busy:
        process.start()
    try:
        runs = {path.stem: run(path) for path in paths}
    finally:
        for process in busy:
            process.terminate()
    times = {name: ran for name, (ran, _) in runs.items()}
    print(f"{os.cpu_count()} cores, {args.busy} busy-loop processes beside; limit {args.limit:.0f} s")
    print(f"| notebook | seconds | under {args.limit:.0f} s | then the kernel's exit (s) |\n|---|---:|:---:|---:|")
    for name, (ran, exit_) in runs.items():
        print(f"| {name} | {ran:.1f} | {'yes' if ran < args.limit else 'NO'} | {exit_:.1f} |")
    print(f"| total | {sum(times.values()):.1f} | | |")
    return 0 if all(seconds < args.limit for seconds in times.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
