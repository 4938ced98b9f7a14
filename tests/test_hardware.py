"""Tests for companion.hardware."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from companion.hardware import (
    Workload,
    matrix_time_fraction,
    measure_throughput,
    peak_memory,
    recommend_hardware,
)

# One workload per line of the guidance, and the answer it must get.
GUIDANCE = [
    (dict(framework="sklearn"), "CPU", "memory-optimised"),
    (dict(framework="xgboost", model_size="very_large", batch_size=8192), "CPU", "device='cuda'"),
    (dict(prototyping=True, model_size="large"), "CPU", "prototyping"),
    (dict(model_size="small", training_hours=0.2, batch_size=256), "CPU", "does not take long"),
    (dict(model_size="small", batch_size=16, training_hours=10.0), "CPU", "small effective batch"),
    (dict(custom_ops="dominant", model_size="large"), "CPU", "custom operations written in C++"),
    (dict(io_bound=True, model_size="large", matrix_dominated=True), "CPU", "I/O or network"),
    (dict(source_available=False, matrix_dominated=True, training_hours=500.0), "GPU", "source"),
    (dict(custom_ops="some", matrix_dominated=True, training_hours=500.0), "GPU", "partly on CPUs"),
    (dict(tpu_ops_available=False, matrix_dominated=True, training_hours=500.0), "GPU", "not available on TPU"),
    (dict(model_size="medium", batch_size=512), "GPU", "medium-to-large"),
    (dict(matrix_dominated=True, training_hours=1000.0), "TPU", "trains for weeks"),
    (dict(matrix_dominated=True, model_size="very_large", batch_size=4096), "TPU", "very large effective batch"),
    # matrix-bound but neither long nor huge: a GPU is enough
    (dict(matrix_dominated=True, model_size="large", batch_size=256), "GPU", "medium-to-large"),
]


@pytest.mark.parametrize(("fields", "hardware", "reason"), GUIDANCE)
def test_recommend_hardware_follows_the_guidance(fields, hardware, reason):
    answer = recommend_hardware(**fields)
    assert answer.hardware == hardware
    assert any(reason in text for text in answer.reasons), answer.reasons
    assert recommend_hardware(Workload(**fields)) == answer
    assert str(answer).startswith(f"{hardware}: ")


def test_tpu_lists_every_matching_reason():
    answer = recommend_hardware(matrix_dominated=True, model_size="very_large", batch_size=4096, training_hours=2000.0)
    assert answer.hardware == "TPU"
    assert len(answer.reasons) == 4


def test_workload_rejects_bad_fields():
    with pytest.raises(ValueError, match=r"Expected `framework` to be one of \('pytorch'"):
        Workload(framework="caffe")
    with pytest.raises(ValueError, match="Expected `batch_size` to be an int >= 1, but got 0."):
        Workload(batch_size=0)
    with pytest.raises(TypeError, match="Expected `io_bound` to be a bool"):
        Workload(io_bound="yes")
    with pytest.raises(TypeError, match="Expected `fields` to be empty"):
        recommend_hardware(Workload(), batch_size=3)
    with pytest.raises(TypeError, match="Expected `workload` to be a Workload"):
        recommend_hardware({"framework": "sklearn"})


class _Sleepy(nn.Module):
    """Takes 20 ms per call, whatever the batch: a known throughput."""

    def forward(self, x):
        time.sleep(0.02)
        return x


class _SleepyEstimator:
    def predict(self, X):
        time.sleep(0.02)
        return np.zeros(len(X))


@pytest.mark.parametrize("model", [_Sleepy(), _SleepyEstimator()])
def test_measure_throughput_times_a_known_model(model):
    t = measure_throughput(model, torch.zeros(100, 3), "cpu", repeats=3)
    assert 0.02 <= t.seconds_per_batch < 0.06
    assert t.examples_per_second == pytest.approx(100 / t.seconds_per_batch)
    assert (t.batch_size, t.device) == (100, "cpu")


def test_measure_throughput_trains_and_uses_autocast():
    model = nn.Linear(4, 2)
    passes = {"backward": 0, "autocast": 0}

    def count(module, inputs, output):
        passes["autocast"] += output.dtype == torch.bfloat16
        output.register_hook(lambda grad: passes.update(backward=passes["backward"] + 1))

    model.register_forward_hook(count)
    t = measure_throughput(model, torch.randn(16, 4), "cpu", train=True, amp=True, repeats=2, warmup=1)
    assert t.examples_per_second > 0
    assert passes == {"backward": 3, "autocast": 3}  # the timed copy ran backward, under bfloat16 autocast
    assert model.weight.grad is None  # on a copy: the caller's model gets no gradients


def test_measure_throughput_leaves_the_callers_model_where_it_was():
    # It used to run `model.to(device)` on the caller's model and leave it there; "meta" stands in
    # for an accelerator here (moving to it discards the weights, so the test sees any move).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    t = measure_throughput(model, torch.randn(32, 8), "meta", train=True, repeats=1, warmup=0)
    assert t.device == "meta"
    after = model.state_dict()
    assert all(value.device.type == "cpu" for value in after.values())
    assert all(torch.equal(before[name], after[name]) for name in before)  # running stats too
    assert all(p.grad is None for p in model.parameters()) and model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_measure_throughput_on_cuda_leaves_a_cpu_model_on_the_cpu():
    model = nn.Linear(8, 2)
    t = measure_throughput(model, torch.randn(4, 8), "cuda", train=True)
    assert t.device == "cuda"
    assert model.weight.device.type == "cpu" and model.weight.grad is None


def test_measure_throughput_rejects_bad_input():
    sk = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, 2)), [0, 1] * 10)
    with pytest.raises(ValueError, match=r"Expected `device` to be 'cpu' for a scikit-learn-style model"):
        measure_throughput(sk, np.zeros((4, 2)), "cuda")
    with pytest.raises(TypeError, match="Expected `model` to be a torch.nn.Module or an object with predict"):
        measure_throughput(object(), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="Expected `repeats` to be an int >= 1"):
        measure_throughput(nn.Linear(2, 1), torch.zeros(4, 2), "cpu", repeats=0)
    with pytest.raises(TypeError, match="Expected `batch` to be a torch.Tensor"):
        measure_throughput(nn.Linear(2, 1), [[0.0, 0.0]], "cpu")


def test_matrix_time_fraction_separates_matrix_from_elementwise_models():
    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 4))
    elementwise = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.LayerNorm(4), nn.Softplus(), nn.Linear(4, 2))
    heavy = matrix_time_fraction(wide, torch.randn(256, 256))
    light = matrix_time_fraction(elementwise, torch.randn(8192, 4))
    assert 0.5 < heavy <= 1.0
    assert 0.0 <= light < heavy - 0.2


def test_matrix_time_fraction_leaves_the_callers_model_as_it_was():
    # It profiles a CPU copy: no gradients, no updated batch-norm statistics, no move.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    share = matrix_time_fraction(model, torch.randn(32, 8))
    assert 0.0 < share < 1.0
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)  # running stats too
    assert model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_matrix_time_fraction_leaves_a_cuda_model_on_cuda():
    model = nn.Linear(8, 2).cuda()
    matrix_time_fraction(model, torch.randn(4, 8, device="cuda"))
    assert model.weight.device.type == "cuda" and model.weight.grad is None


def test_matrix_time_fraction_profiles_a_function_of_the_batch():
    weights = torch.randn(256, 256)
    products = matrix_time_fraction(lambda x: torch.relu(x @ weights) @ weights, torch.randn(256, 256))
    counting = matrix_time_fraction(lambda x: torch.bincount((x > 0).long().flatten()), torch.randn(256, 256))
    assert products > 0.5 and counting == 0.0
    with pytest.raises(TypeError, match="Expected `model` to be a torch.nn.Module or a function of the batch"):
        matrix_time_fraction(3, torch.randn(2, 2))


def _allocate(megabytes: int) -> float:
    return float(np.ones(megabytes * 2**20 // 8).sum())


def _fail():
    raise KeyError("boom")


def test_peak_memory_measures_an_allocation():
    small, _ = peak_memory(_allocate, 8)
    big, total = peak_memory(_allocate, 64)
    assert total == 64 * 2**20 // 8
    assert 60 * 2**20 < big < 90 * 2**20
    assert big - small == pytest.approx(56 * 2**20, rel=0.25)


def test_peak_memory_reports_a_failure():
    with pytest.raises(
        RuntimeError, match=r"Expected `fn` to be a function that runs in the measuring process, but got "
        r"<function _fail at .*>: found it raised KeyError: 'boom'\."
    ):
        peak_memory(_fail)


def test_peak_memory_sees_allocations_in_a_parent_that_used_and_freed_memory(tmp_path):
    """A forked child inherits freed but resident heap pages (glibc's heap, Arrow's pool); the
    allocations it measures must not hide in them, as they did in a long-running test worker."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"slice": np.repeat(["web", "app"], 100_000), "score": np.ones(200_000)})
    paths = [tmp_path / f"{i}.parquet" for i in range(6)]
    for path in paths:
        frame.to_parquet(path)
    frame_bytes = frame.memory_usage(deep=True).sum()

    def load(files):
        return len(pd.concat([pd.read_parquet(p) for p in files]))

    junk = pd.concat([pd.read_parquet(p) for p in paths for _ in range(3)])  # use memory, then free it
    blocks = [np.ones(100_000) for _ in range(1000)]
    del junk, blocks
    one, _ = peak_memory(load, paths[:1])
    six, rows = peak_memory(load, paths)
    assert rows == 6 * len(frame)
    assert six - one > 2 * frame_bytes, (one, six, frame_bytes)  # five more frames at least once each


def test_peak_memory_does_not_hang_after_the_parent_ran_openmp_threads():
    # A reader's kernel has two threads: k-means (OpenMP) in the forked child used to wait forever for
    # the parent's worker threads, which a child does not have. Tests run with OMP_NUM_THREADS=1, so
    # the scenario runs in a fresh interpreter with two threads.
    code = (
        "import numpy as np, torch\n"
        "from sklearn.cluster import KMeans\n"
        "from companion.hardware import peak_memory\n"
        "X = np.random.default_rng(0).normal(size=(20000, 8))\n"
        "KMeans(8, n_init=1, max_iter=5, random_state=0).fit(X)  # the parent's OpenMP pool starts\n"
        "torch.ones(2000, 2000) @ torch.ones(2000, 2000)\n"
        "extra, n_iter = peak_memory(lambda: KMeans(8, n_init=1, max_iter=5, random_state=0).fit(X).n_iter_)\n"
        "print(n_iter, torch.get_num_threads())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    n_iter, parent_threads = out.stdout.split()
    assert 1 <= int(n_iter) <= 5 and parent_threads == "2"  # the parent keeps its threads
