"""Tests for companion.distributed.roles: who does what, and which rows each trainer takes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from companion.distributed.roles import ROLES, assign_roles, global_batches


def test_assign_roles_layout():
    assert assign_roles(1) == ["chief"]
    assert assign_roles(3, evaluator=True) == ["chief", "worker", "evaluator"]
    assert assign_roles(4, parameter_servers=2) == ["chief", "worker", "ps", "ps"]
    roles = assign_roles(6, parameter_servers=1, evaluator=True)
    assert roles.count("chief") == 1 and roles.count("evaluator") == 1 and roles[0] == "chief"
    assert set(roles) == set(ROLES)


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
    sampler.set_epoch(epoch)
    expected = torch.tensor(list(sampler))[:48].view(6, 8)
    batches = global_batches(50, batch_size=8, epoch=epoch, seed=7)
    assert torch.equal(torch.stack(batches), expected)


def test_global_batches_rejects_bad_input():
    with pytest.raises(ValueError, match="Expected `n_samples` to be an int >= 8, but got 5."):
        global_batches(5, batch_size=8, epoch=1)
