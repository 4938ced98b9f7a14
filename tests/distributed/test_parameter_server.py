"""Tests for companion.distributed.parameter_server: asynchronous SGD through parameter servers."""

from __future__ import annotations

import copy

import torch
from torch import nn

from companion.distributed.launch import launch
from companion.distributed.parameter_server import train_parameter_server


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


def test_parameter_server_chief_checkpoints_the_final_parameters(data, tmp_path):
    model, X, y, X_val, y_val = data
    job = launch(
        train_parameter_server, nprocs=4, args=(model, X, y), timeout=30,
        kwargs=dict(loss_fn=nn.CrossEntropyLoss(), epochs=2, batch_size=32, lr=0.2,
                    job_dir=tmp_path, val_data=(X_val, y_val)),
    )
    chief, worker, ps, evaluator = job.results
    assert [r.role for r in job.results] == ["chief", "worker", "ps", "evaluator"]
    assert chief.checkpoints == evaluator.checkpoints == ["epoch-0001.pt", "epoch-0002.pt"]
    assert worker.checkpoints == [] and ps.state_dict is None
    final = copy.deepcopy(model)
    final.load_state_dict(chief.state_dict)
    with torch.no_grad():
        expected = float(nn.CrossEntropyLoss()(final(X_val), y_val))
    assert abs(evaluator.val_losses[-1] - expected) < 1e-6  # the last checkpoint holds the servers' final parameters


def test_parameter_server_records_the_staleness_of_every_gradient(data):
    model, X, y, _, _ = data
    job = dict(loss_fn=nn.CrossEntropyLoss(), epochs=1, batch_size=48, lr=0.1)
    one = launch(train_parameter_server, nprocs=2, args=(model, X, y), kwargs=job, timeout=30)
    three = launch(train_parameter_server, nprocs=4, args=(model, X, y), kwargs=job, timeout=30)
    # One worker: it always computes on the parameters of the server's last reply, so nothing is stale.
    assert one.results[1].staleness == [0] * (256 // 48)
    # Three workers: one entry per update; the first is fresh, none can be older than the updates so far,
    # and while a worker computes, the others' gradients are applied, so some are stale.
    staleness = three.results[3].staleness
    assert len(staleness) == 3 * (256 // 48) and staleness[0] == 0
    # (all workers start from the initial parameters, so the second gradient to arrive is stale).
    assert all(0 <= s <= t for t, s in enumerate(staleness)) and max(staleness) >= 1
    assert [r.staleness for r in three.results[:3]] == [[], [], []]  # only servers record it
