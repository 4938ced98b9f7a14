"""Tests for companion.distributed.ddp: data-parallel training on a real gloo group of 3 processes."""

from __future__ import annotations

import copy
import time

import pytest
import torch
from torch import nn

from companion.distributed.ddp import train_ddp
from companion.distributed.job import latest_checkpoint, read_status
from companion.distributed.launch import JobFailedError, launch
from companion.distributed.roles import global_batches

JOB = dict(loss_fn=nn.CrossEntropyLoss(), epochs=3, batch_size=32, lr=0.2, momentum=0.5, seed=3)


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
    status = read_status(job_dir)
    assert status | {"loss": None, "job": None} == {
        "state": "succeeded", "epoch": 3, "epochs": 3, "checkpoints": written, "loss": None, "job": None
    }
    assert status["job"] | {"model": None, "data": None} == {  # what makes the job this job
        "training": "ddp", "momentum": 0.5, "epochs": 3, "batch_size": 32, "lr": 0.2, "seed": 3,
        "loss_fn": "CrossEntropyLoss", "model": None, "data": None,
    }
    # The evaluator's last number is the final model's validation loss.
    final = copy.deepcopy(model)
    final.load_state_dict(chief.state_dict)
    with torch.no_grad():
        assert evaluator.val_losses[-1] == pytest.approx(float(JOB["loss_fn"](final(X_val), y_val)), abs=1e-6)
    assert not list(job_dir.glob("checkpoints/.*tmp"))  # atomic writes left no temporary file


def _files(job_dir):
    return {path.relative_to(job_dir): path.read_bytes() for path in job_dir.rglob("*") if path.is_file()}


def test_a_used_job_dir_is_refused_unless_resuming_the_same_job(data, uninterrupted):
    model, X, y, X_val, y_val = data
    _, job_dir = uninterrupted
    before = _files(job_dir)
    kwargs = dict(JOB, job_dir=job_dir, val_data=(X_val, y_val))
    # A new run would have its evaluator evaluate the earlier run's checkpoints as its own.
    with pytest.raises(JobFailedError, match=r"rank \d failed with ValueError: Expected `job_dir` to be a new "
                       r"folder, or this job's own to resume it, but got .*: found an earlier run of this job "
                       r"\(succeeded, epoch 3 of 3\)"):
        launch(train_ddp, nprocs=3, args=(model, X, y), kwargs=kwargs, timeout=30)
    # Resuming another job would start from its checkpoint, and here return it as trained.
    with pytest.raises(JobFailedError, match=r"found a run of another job \(lr 0.2 there, 0.4 here\)"):
        launch(train_ddp, nprocs=3, args=(model, X, y), kwargs=dict(kwargs, lr=0.4, resume=True), timeout=30)
    with pytest.raises(JobFailedError, match=r"found a run of another job \(data [0-9a-f]{16} there, [0-9a-f]{16} here\)"):
        launch(train_ddp, nprocs=3, args=(model, X, y.flip(0)), kwargs=dict(kwargs, resume=True), timeout=30)
    assert _files(job_dir) == before  # refused before touching anything


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
    assert read_status(tmp_path)["state"] == "failed"  # the chief saw its all-reduce break and said so

    resumed = launch(train_ddp, nprocs=3, args=(model, X, y), kwargs=dict(kwargs, resume=True), timeout=30)
    chief = resumed.results[0]
    assert chief.log[0] == "[chief 0] resumed from epoch-0001.pt"
    for name, tensor in reference.results[0].state_dict.items():
        assert torch.equal(chief.state_dict[name], tensor), name
    assert chief.losses == reference.results[0].losses
    assert read_status(tmp_path)["state"] == "succeeded"
