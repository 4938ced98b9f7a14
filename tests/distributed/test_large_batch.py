"""Tests for companion.distributed.large_batch: the scaling rule, the warm-up, and SGD with both."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LinearLR

from companion.data import make_regression
from companion.distributed.large_batch import linear_warmup, scaled_lr, train_sgd, warmup_factor
from companion.distributed.roles import global_batches


def test_scaled_lr_rules():
    assert scaled_lr(0.1, base_batch_size=32, batch_size=256) == pytest.approx(0.8)
    assert scaled_lr(0.1, base_batch_size=256, batch_size=32) == pytest.approx(0.0125)
    assert scaled_lr(0.1, base_batch_size=32, batch_size=128, rule="sqrt") == pytest.approx(0.2)
    assert scaled_lr(0.1, base_batch_size=32, batch_size=128, rule="none") == 0.1
    for rule in ("linear", "sqrt", "none"):  # nothing to scale at the base batch size
        assert scaled_lr(0.05, base_batch_size=64, batch_size=64, rule=rule) == 0.05


def test_warmup_factor_values():
    assert [warmup_factor(s, warmup_steps=5) for s in range(7)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1, 1, 1])
    assert [warmup_factor(s, warmup_steps=1) for s in range(3)] == [1.0, 1.0, 1.0]
    assert [warmup_factor(s, warmup_steps=0) for s in range(3)] == [1.0, 1.0, 1.0]


def test_linear_warmup_matches_pytorchs_linear_lr():
    """PyTorch's LinearLR(start_factor=1/w, total_iters=w-1) is the same ramp."""
    rates = {}
    for name in ("ours", "torch"):
        optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.6)
        scheduler = (linear_warmup(optimizer, warmup_steps=6) if name == "ours"
                     else LinearLR(optimizer, start_factor=1 / 6, total_iters=5))
        rates[name] = []
        for _ in range(9):
            rates[name].append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    assert rates["ours"] == pytest.approx(rates["torch"])
    assert rates["ours"][0] == pytest.approx(0.1) and rates["ours"][5:] == pytest.approx([0.6] * 4)


@pytest.fixture(scope="module")
def problem():
    X, y = make_regression(80, 4, seed=1)
    torch.manual_seed(0)
    return nn.Linear(4, 1), X, y.unsqueeze(1)


def test_train_sgd_takes_the_steps_of_sgd_with_the_warmup(problem):
    model, X, y = problem
    run = train_sgd(model, X, y, loss_fn=nn.MSELoss(), epochs=2, batch_size=16, lr=0.2, warmup_steps=3,
                    momentum=0.5, seed=4)
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.2, momentum=0.5)
    step, rates, losses = 0, [], []
    for epoch in (1, 2):
        total = 0.0
        for rows in global_batches(len(X), batch_size=16, epoch=epoch, seed=4):
            for group in optimizer.param_groups:
                group["lr"] = 0.2 * min(1.0, (step + 1) / 3)
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            loss = nn.MSELoss()(reference(X[rows]), y[rows])
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            step += 1
        losses.append(total / 5)
    assert run.lrs == pytest.approx(rates) and len(run.lrs) == 10
    assert run.losses == pytest.approx(losses, rel=1e-5)
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(run.state_dict[name], tensor)


def test_an_unscaled_large_batch_falls_behind_and_the_scaled_rate_catches_up(problem):
    model, X, y = problem
    small = train_sgd(model, X, y, loss_fn=nn.MSELoss(), epochs=3, batch_size=5, lr=0.02)
    unscaled = train_sgd(model, X, y, loss_fn=nn.MSELoss(), epochs=3, batch_size=40, lr=0.02)
    scaled = train_sgd(model, X, y, loss_fn=nn.MSELoss(), epochs=3, batch_size=40,
                       lr=scaled_lr(0.02, base_batch_size=5, batch_size=40), warmup_steps=2)
    assert unscaled.losses[-1] > 3 * small.losses[-1]
    assert scaled.losses[-1] < 2 * small.losses[-1]


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda: scaled_lr(0.0, base_batch_size=1, batch_size=2), ValueError, "Expected `base_lr` to be a float > 0"),
        (lambda: scaled_lr(0.1, base_batch_size=0, batch_size=2), ValueError, "`base_batch_size` to be an int >= 1"),
        (lambda: scaled_lr(0.1, base_batch_size=2, batch_size=2.0), TypeError, "`batch_size` to be an int >= 1"),
        (lambda: scaled_lr(0.1, base_batch_size=2, batch_size=4, rule="square"), ValueError,
         "Expected `rule` to be one of ('linear', 'sqrt', 'none'), but got 'square'."),
        (lambda: warmup_factor(-1, warmup_steps=2), ValueError, "Expected `step` to be an int >= 0, but got -1."),
        (lambda: warmup_factor(0, warmup_steps=-2), ValueError, "`warmup_steps` to be an int >= 0"),
        (lambda: linear_warmup("sgd", warmup_steps=2), TypeError, "`optimizer` to be a torch.optim.Optimizer"),
        (lambda: linear_warmup(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), warmup_steps=math.nan),
         TypeError, "`warmup_steps` to be an int >= 0"),
    ],
)
def test_bad_input_of_the_rules(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("change", "error", "text"),
    [
        (dict(lr=-0.1), ValueError, "Expected `lr` to be a float > 0"),
        (dict(warmup_steps=-1), ValueError, "`warmup_steps` to be an int >= 0"),
        (dict(momentum=1.0), ValueError, "Expected `momentum` to be a float in [0, 1)"),
        (dict(batch_size=81), ValueError, "Expected `batch_size` to be an int in [1, 80]"),
        (dict(epochs=0), ValueError, "`epochs` to be an int >= 1"),
        (dict(seed=-1), ValueError, "`seed` to be an int >= 0"),
        (dict(loss_fn=None), TypeError, "Expected `loss_fn` to be callable"),
        (dict(model=None), TypeError, "Expected `model` to be a torch.nn.Module"),
        (dict(X=torch.zeros(80, 4, dtype=torch.long)), TypeError, "Expected `X` to be a floating-point tensor"),
        (dict(y=torch.zeros(3)), ValueError, "`X` and `y` to have the same length"),
    ],
)
def test_bad_input_of_train_sgd(problem, change, error, text):
    model, X, y = problem
    kwargs = dict(model=model, X=X, y=y, loss_fn=nn.MSELoss(), epochs=1, batch_size=16, lr=0.1)
    kwargs.update(change)
    with pytest.raises(error) as info:
        train_sgd(kwargs.pop("model"), kwargs.pop("X"), kwargs.pop("y"), **kwargs)
    assert text in str(info.value)
