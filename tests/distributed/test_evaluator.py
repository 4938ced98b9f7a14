"""Tests for companion.distributed.evaluator: it reads the job folder, no process group needed."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from companion.checkpoint import save_checkpoint
from companion.distributed.evaluator import run_evaluator


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
