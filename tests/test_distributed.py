"""Tests for companion.distributed: a real process group on 127.0.0.1 (gloo, 2-4 processes)."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from companion.data import make_classification
from companion.distributed import (
    JobFailedError,
    JobTimeoutError,
    assign_roles,
    global_batches,
    latest_checkpoint,
    launch,
    read_status,
    run_evaluator,
    train_ddp,
    train_parameter_server,
)
from companion.checkpoint import save_checkpoint

JOB = dict(loss_fn=nn.CrossEntropyLoss(), epochs=3, batch_size=32, lr=0.2, momentum=0.5, seed=3)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(352, 6, 3, seed=1)
    X, X_val, y, y_val = X[:256], X[256:], y[:256], y[256:]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, X, y, X_val, y_val


def _is_multiprocessing_helper(process: psutil.Process) -> bool:
    """The forkserver (and its resource tracker) that launch() reuses across jobs by design."""
    cmdline = " ".join(process.cmdline())
    return "forkserver" in cmdline or "resource_tracker" in cmdline


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test must leave no job process behind (only multiprocessing's reusable helpers)."""
    yield
    children = psutil.Process().children(recursive=True)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE
            and not _is_multiprocessing_helper(c)]
    assert not left, left


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    """The reference job: 2 trainers and an evaluator, 3 epochs, run once for several tests."""
    model, X, y, X_val, y_val = data
    job_dir = tmp_path_factory.mktemp("uninterrupted")
    job = launch(train_ddp, nprocs=3, args=(model, X, y), kwargs=dict(JOB, job_dir=job_dir, val_data=(X_val, y_val)))
    return job, job_dir


def _plain_sgd(model, X, y, *, loss_fn, epochs, batch_size, lr, momentum, seed):
    """One process, no torch.distributed: the oracle for data-parallel training."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for epoch in range(1, epochs + 1):
        for batch in global_batches(len(X), batch_size=batch_size, epoch=epoch, seed=seed):
            optimizer.zero_grad()
            loss_fn(model(X[batch]), y[batch]).backward()
            optimizer.step()
    return model.state_dict()


# ---------------------------------------------------------------- roles and batches


def test_assign_roles_layout():
    assert assign_roles(1) == ["chief"]
    assert assign_roles(3, evaluator=True) == ["chief", "worker", "evaluator"]
    assert assign_roles(4, parameter_servers=2) == ["chief", "worker", "ps", "ps"]
    roles = assign_roles(6, parameter_servers=1, evaluator=True)
    assert roles.count("chief") == 1 and roles.count("evaluator") == 1 and roles[0] == "chief"


def test_assign_roles_rejects_bad_input():
    with pytest.raises(ValueError, match=r"Expected `world_size` to be an int >= 3 \(one chief, 1 parameter server\(s\) and one evaluator\), but got 2\."):
        assign_roles(2, parameter_servers=1, evaluator=True)
    with pytest.raises(TypeError, match="Expected `evaluator` to be a bool"):
        assign_roles(2, evaluator=1)
    with pytest.raises(ValueError, match="Expected `parameter_servers` to be an int >= 0"):
        assign_roles(2, parameter_servers=-1)


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_global_batches_follow_distributed_sampler(epoch):
    """Same permutation as PyTorch's DistributedSampler with one replica, cut into batches."""
    sampler = DistributedSampler(range(50), num_replicas=1, rank=0, shuffle=True, seed=7)
    sampler.set_epoch(7 * 0 + epoch)
    expected = torch.tensor(list(sampler))[:48].view(6, 8)
    batches = global_batches(50, batch_size=8, epoch=epoch, seed=7)
    assert torch.equal(torch.stack(batches), expected)


def test_global_batches_rejects_bad_input():
    with pytest.raises(ValueError, match="Expected `n_samples` to be an int >= 8, but got 5."):
        global_batches(5, batch_size=8, epoch=1)


# ---------------------------------------------------------------- launch


def _rank_times_ten():
    return dist.get_rank() * 10


def _fail_on_rank_one():
    if dist.get_rank() == 1:
        raise ValueError("bad shard")
    dist.barrier()  # rank 0 waits on rank 1, which never arrives


def _sleep_forever():
    time.sleep(60)


def _optimizer_import_done():
    return "torch._dynamo" in sys.modules


def test_launch_ranks_start_with_the_optimizer_import_done():
    # torch.optim imports torch._dynamo on a process's first optimizer; the forkserver does it
    # once for all ranks, so a job does not pay seconds per rank for it.
    assert launch(_optimizer_import_done, nprocs=2, timeout=30).results == [True, True]


def test_launch_returns_each_rank_and_leaves_no_port():
    job = launch(_rank_times_ten, nprocs=3, timeout=30)
    assert job.results == [0, 10, 20]
    assert job.backend == "gloo"
    assert _port_closed(job.port)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in job.pids)


def test_launch_failure_names_the_rank_and_stops_fast():
    start = time.monotonic()
    with pytest.raises(JobFailedError, match=r"The job failed: rank 1 failed with ValueError: bad shard") as info:
        launch(_fail_on_rank_one, nprocs=2, timeout=30)
    assert info.value.rank == 1
    assert time.monotonic() - start < 20  # well before the 30 s timeout


def test_launch_timeout_stops_the_job():
    start = time.monotonic()
    with pytest.raises(JobTimeoutError, match=r"did not finish within 1 s; ranks \[0, 1\] were still running"):
        launch(_sleep_forever, nprocs=2, timeout=1.0)
    assert time.monotonic() - start < 10


def test_launch_rejects_bad_input():
    with pytest.raises(ValueError, match="Expected `nprocs` to be an int >= 1, but got 0."):
        launch(_rank_times_ten, nprocs=0)
    with pytest.raises(TypeError, match="Expected `fn` to be callable"):
        launch(3, nprocs=1)
    with pytest.raises(ValueError, match="Expected `backend` to be one of"):
        launch(_rank_times_ten, nprocs=1, backend="mpi")
    with pytest.raises(ValueError, match="Expected `timeout` to be a float > 0"):
        launch(_rank_times_ten, nprocs=1, timeout=0)


def test_job_functions_need_a_process_group(data):
    model, X, y, *_ = data
    with pytest.raises(RuntimeError, match="Expected a torch.distributed process group"):
        train_ddp(model, X, y, **JOB)


# ---------------------------------------------------------------- data-parallel training


def test_ddp_two_workers_equal_one_process(data, uninterrupted):
    model, X, y, *_ = data
    job, _ = uninterrupted
    chief, worker, _ = job.results
    expected = _plain_sgd(model, X, y, **JOB)
    for name, tensor in expected.items():
        torch.testing.assert_close(chief.state_dict[name], tensor, atol=1e-6, rtol=0)
        assert torch.equal(chief.state_dict[name], worker.state_dict[name])  # replicas agree exactly
    assert chief.losses[-1] < 0.5 * chief.losses[0]


def test_ddp_catches_a_planted_fault(data):
    """The oracle must notice a change of a single step: a learning rate 1% off."""
    model, X, y, *_ = data
    a = _plain_sgd(model, X, y, **JOB)
    b = _plain_sgd(model, X, y, **dict(JOB, lr=JOB["lr"] * 1.01))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-4


def test_chief_checkpoints_and_evaluator_saw_every_one(data, uninterrupted):
    model, X, y, X_val, y_val = data
    job, job_dir = uninterrupted
    chief, _, evaluator = job.results
    assert [r.role for r in job.results] == ["chief", "worker", "evaluator"]
    written = [p.name for p in sorted((job_dir / "checkpoints").glob("*.pt"))]
    assert chief.checkpoints == written == ["epoch-0001.pt", "epoch-0002.pt", "epoch-0003.pt"]
    assert evaluator.checkpoints == written
    assert read_status(job_dir) | {"loss": None} == {
        "state": "succeeded", "epoch": 3, "epochs": 3, "checkpoints": written, "loss": None
    }
    # The evaluator's last number is the final model's validation loss.
    final = copy.deepcopy(model)
    final.load_state_dict(chief.state_dict)
    with torch.no_grad():
        assert evaluator.val_losses[-1] == pytest.approx(float(JOB["loss_fn"](final(X_val), y_val)), abs=1e-6)
    assert not list(job_dir.glob("checkpoints/.*tmp"))  # atomic writes left no temporary file


def test_killed_worker_fails_fast_and_resume_matches(data, uninterrupted, tmp_path):
    model, X, y, X_val, y_val = data
    reference, _ = uninterrupted
    kwargs = dict(JOB, job_dir=tmp_path, val_data=(X_val, y_val))
    start = time.monotonic()
    with pytest.raises(JobFailedError, match=r"The job failed: rank 1 was killed by signal SIGKILL") as info:
        launch(train_ddp, nprocs=3, args=(model, X, y), kwargs=dict(kwargs, crash_at=(1, 2)), timeout=30)
    assert info.value.rank == 1
    assert time.monotonic() - start < 25  # fails fast, well within the timeout
    assert latest_checkpoint(tmp_path).name == "epoch-0001.pt"
    assert read_status(tmp_path)["state"] in ("running", "failed")

    resumed = launch(train_ddp, nprocs=3, args=(model, X, y), kwargs=dict(kwargs, resume=True), timeout=30)
    chief = resumed.results[0]
    assert chief.log[0] == "[chief 0] resumed from epoch-0001.pt"
    for name, tensor in reference.results[0].state_dict.items():
        assert torch.equal(chief.state_dict[name], tensor), name
    assert chief.losses == reference.results[0].losses
    assert read_status(tmp_path)["state"] == "succeeded"


# ---------------------------------------------------------------- parameter servers


def test_parameter_servers_converge(data):
    model, X, y, X_val, y_val = data
    job = launch(
        train_parameter_server, nprocs=4, args=(model, X, y),
        kwargs=dict(loss_fn=nn.CrossEntropyLoss(), epochs=3, batch_size=32, lr=0.2, parameter_servers=2),
        timeout=30,
    )
    chief, worker, ps1, ps2 = job.results
    assert [r.role for r in job.results] == ["chief", "worker", "ps", "ps"]
    # Every push from every trainer reached both servers (3 epochs * 8 batches * 2 trainers),
    # and the 163 parameters are split between them.
    assert sum(p.numel() for p in model.parameters()) == 163
    assert ps1.log == ["[ps 2] applied 48 updates to 82 parameters"]
    assert ps2.log == ["[ps 3] applied 48 updates to 81 parameters"]
    assert chief.losses[-1] < 0.5 * chief.losses[0]
    final = copy.deepcopy(model)
    final.load_state_dict(chief.state_dict)
    with torch.no_grad():
        accuracy = float((final(X_val).argmax(1) == y_val).float().mean())
        before = float((model(X_val).argmax(1) == y_val).float().mean())
    assert accuracy > 0.8 and accuracy > before + 0.2


# ---------------------------------------------------------------- evaluator alone


def test_evaluator_reads_checkpoints_as_written(data, tmp_path):
    model, _, _, X_val, y_val = data
    for epoch in (1, 2):
        torch.manual_seed(epoch)
        save_checkpoint(tmp_path / "checkpoints" / f"epoch-{epoch:04d}.pt", nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)), epoch=epoch)
    status = {"state": "succeeded", "checkpoints": ["epoch-0001.pt", "epoch-0002.pt"]}
    (tmp_path / "status.json").write_text(json.dumps(status))
    result = run_evaluator(model, X_val, y_val, loss_fn=nn.CrossEntropyLoss(), job_dir=tmp_path)
    assert result.checkpoints == status["checkpoints"]
    torch.manual_seed(2)
    last = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        assert result.val_losses[1] == pytest.approx(float(nn.CrossEntropyLoss()(last(X_val), y_val)))


def test_evaluator_times_out_when_the_chief_never_finishes(data, tmp_path):
    model, _, _, X_val, y_val = data
    (tmp_path / "status.json").write_text(json.dumps({"state": "running", "checkpoints": []}))
    with pytest.raises(TimeoutError, match="The evaluator waited 0.3 s"):
        run_evaluator(model, X_val, y_val, loss_fn=nn.CrossEntropyLoss(), job_dir=tmp_path, timeout=0.3)


# ---------------------------------------------------------------- torchrun entry point


def test_torchrun_entry_point(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    out = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node=3", "-m", "companion.distributed",
         "--mode", "ps", "--job-dir", str(tmp_path), "--epochs", "2", "--samples", "256", "--evaluator"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert read_status(tmp_path)["state"] == "succeeded"
    assert "[chief] epoch 2/2" in out.stdout
    assert "[evaluator] epoch-0002.pt" in out.stdout
