"""Tests for companion.distributed.job: the skeleton both training jobs share."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from companion.checkpoint import load_checkpoint, save_checkpoint
from companion.distributed.ddp import train_ddp
from companion.distributed.job import Job, latest_checkpoint, read_status, start_job
from companion.distributed.launch import JobFailedError, launch
from companion.distributed.roles import global_batches

JOB = dict(loss_fn=nn.CrossEntropyLoss(), epochs=3, batch_size=32, lr=0.2, seed=3)


def test_job_functions_need_a_process_group(data):
    model, X, y, *_ = data
    with pytest.raises(RuntimeError, match="Expected a torch.distributed process group"):
        train_ddp(model, X, y, **JOB)


def test_trainers_rows_split_every_global_batch():
    roles = ["chief", "worker", "worker", "ps", "evaluator"]
    jobs = [Job(rank=rank, roles=roles, epochs=1, batch_size=6, lr=0.1, seed=4) for rank in range(3)]
    assert jobs[0].trainers == [0, 1, 2] and jobs[2].role == "worker"
    for batch, *rows in zip(global_batches(20, batch_size=6, epoch=2, seed=4), *(j.rows(20, epoch=2) for j in jobs)):
        assert sorted(torch.cat(rows).tolist()) == sorted(batch.tolist())
        assert all(len(r) == 2 for r in rows)


def test_only_the_chief_writes_the_job_folder(tmp_path):
    roles = ["chief", "worker"]
    chief, worker = (Job(rank=r, roles=roles, epochs=2, batch_size=4, lr=0.1, seed=0, job_dir=tmp_path) for r in (0, 1))
    model = nn.Linear(2, 1)
    worker.epoch_done(1, [0.5], model)
    worker.report(state="succeeded")
    assert read_status(tmp_path) is None and latest_checkpoint(tmp_path) is None and worker.log == []

    chief.epoch_done(1, [0.5], model)
    assert chief.log == ["[chief] epoch 1/2: train loss 0.5000"]
    assert read_status(tmp_path) == {"state": "running", "epoch": 1, "epochs": 2, "loss": 0.5,
                                     "checkpoints": ["epoch-0001.pt"], "job": None}
    info = load_checkpoint(latest_checkpoint(tmp_path), nn.Linear(2, 1))
    assert info == {"epoch": 1, "extra": {"losses": [0.5]}}
    assert not list(tmp_path.glob(".*tmp"))  # status written atomically: no temporary file left


def test_reporting_records_how_the_job_ended(tmp_path):
    chief = Job(rank=0, roles=["chief"], epochs=1, batch_size=4, lr=0.1, seed=0, job_dir=tmp_path)
    with pytest.raises(ValueError, match="diverged"), chief.reporting():
        raise ValueError("diverged")
    assert read_status(tmp_path) | {"epoch": None} == {
        "state": "failed", "error": "ValueError: diverged", "epoch": None, "epochs": 1, "checkpoints": [], "job": None
    }
    with chief.reporting():
        pass
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "succeeded"


def test_start_job_checks_every_rank_alike(data):
    model, X, y, *_ = data
    with pytest.raises(JobFailedError, match=r"rank \d failed with ValueError: Expected `batch_size` to be a multiple of the 2 training ranks, but got 33\. (Then|All) "):
        launch(start_job, nprocs=2, args=(model, X, y), timeout=30,
               kwargs=dict(JOB, batch_size=33, job_dir=None, evaluator=False))
    with pytest.raises(JobFailedError, match=r"Expected `job_dir` to be a folder \(the evaluator reads checkpoints there\), but got None\."):
        launch(start_job, nprocs=2, args=(model, X, y), timeout=30,
               kwargs=dict(JOB, job_dir=None, evaluator=True))


def test_start_job_reports_running_before_any_rank_goes_on(data, tmp_path):
    model, X, y, *_ = data
    kwargs = dict(JOB, job_dir=tmp_path, evaluator=True)
    launch(start_job, nprocs=2, args=(model, X, y), timeout=30, kwargs=kwargs)
    earlier = read_status(tmp_path) | {"state": "succeeded", "checkpoints": ["epoch-0003.pt"]}
    (tmp_path / "status.json").write_text(json.dumps(earlier))
    job = launch(start_job, nprocs=2, args=(model, X, y), timeout=30, kwargs=dict(kwargs, resume=True))
    assert [j.role for j in job.results] == ["chief", "evaluator"]
    assert read_status(tmp_path) == {"state": "running", "epoch": 0, "epochs": 3, "checkpoints": [],
                                     "job": job.results[0].config}


def test_start_job_names_the_job_and_passes_the_job_timeout(data):
    model, X, y, *_ = data
    job = launch(start_job, nprocs=2, args=(model, X, y), timeout=7.5,
                 kwargs=dict(JOB, job_dir=None, evaluator=False, settings={"training": "test"}))
    chief, other = job.results
    assert chief.timeout == other.timeout == 7.5  # what the evaluator waits for the chief
    assert chief.config | {"model": None, "data": None} == {
        "training": "test", "epochs": 3, "batch_size": 32, "lr": 0.2, "seed": 3, "loss_fn": "CrossEntropyLoss",
        "model": None, "data": None,
    }
    assert other.config is None  # only the chief keeps the job folder


_CONFIG = {"training": "ddp", "epochs": 2, "lr": 0.1}


def _chief(job_dir, config=_CONFIG):
    return Job(rank=0, roles=["chief"], epochs=2, batch_size=4, lr=0.1, seed=0, job_dir=job_dir, config=config)


def test_a_job_takes_only_a_new_folder_or_its_own(tmp_path):
    _chief(tmp_path / "not-yet-made").check_folder(resume=False)
    _chief(tmp_path).check_folder(resume=True)  # nothing to resume: it starts anew
    save_checkpoint(tmp_path / "checkpoints" / "epoch-0001.pt", nn.Linear(2, 1), epoch=1)
    with pytest.raises(ValueError, match=r"Expected `job_dir` to be a new folder, or this job's own to resume "
                       r"it, but got .*: found checkpoints but no status.json\."):
        _chief(tmp_path).check_folder(resume=True)
    (tmp_path / "status.json").write_text(json.dumps({"state": "succeeded", "checkpoints": ["epoch-0001.pt"]}))
    with pytest.raises(ValueError, match=r"found the status.json of a job that does not say what it is\."):
        _chief(tmp_path).check_folder(resume=True)
    _chief(tmp_path).report()
    _chief(tmp_path).check_folder(resume=True)  # its own
    with pytest.raises(ValueError, match=r"found an earlier run of this job \(running, epoch 0 of 2\)\."):
        _chief(tmp_path).check_folder(resume=False)
    with pytest.raises(ValueError, match=r"found a run of another job \(epochs 2 there, 3 here; lr 0.1 there, 0.2 here\)\."):
        _chief(tmp_path, dict(_CONFIG, epochs=3, lr=0.2)).check_folder(resume=True)
    with pytest.raises(ValueError, match=r"found a run of another job \(momentum None there, 0.5 here\)\."):
        _chief(tmp_path, dict(_CONFIG, momentum=0.5)).check_folder(resume=True)
