"""Tests for companion.distributed.evaluator: it reads the job folder, no process group needed."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from companion.checkpoint import save_checkpoint
from companion.distributed.ddp import train_ddp
from companion.distributed.evaluator import run_evaluator
from companion.distributed.launch import launch
from companion.distributed.parameter_server import train_parameter_server


class _SlowLoss(nn.CrossEntropyLoss):
    """Cross-entropy that takes 0.1 s a batch: a chief slow enough to outlast a short wait."""

    def forward(self, input, target):
        time.sleep(0.1)
        return super().forward(input, target)


def _with_evaluator_timeout_default(seconds, train, *args, **kwargs):
    """Run ``train`` with run_evaluator's own default timeout cut to ``seconds`` in this rank."""
    run_evaluator.__kwdefaults__["timeout"] = seconds
    return train(*args, **kwargs)


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
    assert model.training  # the caller's model was copied, not switched to eval mode


def test_evaluator_times_out_when_the_chief_never_finishes(data, tmp_path):
    model, _, _, X_val, y_val = data
    (tmp_path / "status.json").write_text(json.dumps({"state": "running", "checkpoints": []}))
    with pytest.raises(TimeoutError, match="The evaluator waited 0.3 s"):
        run_evaluator(model, X_val, y_val, loss_fn=nn.CrossEntropyLoss(), job_dir=tmp_path, timeout=0.3)


@pytest.mark.parametrize("train", [train_ddp, train_parameter_server])
def test_in_a_job_the_evaluator_waits_as_long_as_the_job(train, data, tmp_path):
    # The chief needs at least 1.6 s (16 batches of 0.1 s); an evaluator left at its own default
    # timeout (cut here from 60 to 0.5 s, so the test is fast) would give up first, and with it the
    # job. It waits as long as the job may run (the launcher's 60 s).
    model, X, y, X_val, y_val = data
    nprocs = 2 if train is train_ddp else 3  # chief (+ parameter server) + evaluator
    job = launch(
        _with_evaluator_timeout_default, nprocs=nprocs, args=(0.5, train, model, X, y), timeout=60,
        kwargs=dict(loss_fn=_SlowLoss(), epochs=2, batch_size=32, lr=0.1, job_dir=tmp_path, val_data=(X_val, y_val)),
    )
    assert job.results[-1].role == "evaluator"
    assert job.results[-1].checkpoints == ["epoch-0001.pt", "epoch-0002.pt"]
