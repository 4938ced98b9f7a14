"""Tests for companion.distributed.staleness: SGD whose gradients are a set number of updates old."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from companion.data import make_regression
from companion.distributed.roles import global_batches
from companion.distributed.staleness import train_stale_sgd


@pytest.fixture(scope="module")
def problem():
    X, y = make_regression(96, 3, seed=2)
    torch.manual_seed(0)
    return nn.Linear(3, 1), X, y.unsqueeze(1)


def _reference(model, X, y, *, staleness, epochs, batch_size, lr):
    """Written out by hand: keep every version; update t uses the gradient at version max(0, t - s)."""
    model = copy.deepcopy(model)
    versions = [parameters_to_vector(model.parameters()).detach().clone()]
    for epoch in range(1, epochs + 1):
        for rows in global_batches(len(X), batch_size=batch_size, epoch=epoch):
            t = len(versions) - 1
            vector_to_parameters(versions[max(0, t - staleness)], model.parameters())
            model.zero_grad()
            nn.MSELoss()(model(X[rows]), y[rows]).backward()
            grad = parameters_to_vector(p.grad for p in model.parameters())
            versions.append(versions[-1] - lr * grad)
    return versions


@pytest.mark.parametrize("staleness", [0, 1, 3])
def test_each_update_applies_the_gradient_of_the_version_s_updates_old(problem, staleness):
    model, X, y = problem
    run = train_stale_sgd(model, X, y, loss_fn=nn.MSELoss(), staleness=staleness, epochs=2, batch_size=16, lr=0.1)
    versions = _reference(model, X, y, staleness=staleness, epochs=2, batch_size=16, lr=0.1)
    final = copy.deepcopy(model)
    final.load_state_dict(run.state_dict)
    torch.testing.assert_close(parameters_to_vector(final.parameters()), versions[-1])
    # The loss is recorded at every version, the first one included.
    expected_losses = []
    for version in versions:
        vector_to_parameters(version, final.parameters())
        with torch.no_grad():
            expected_losses.append(float(nn.MSELoss()(final(X), y)))
    assert run.losses == pytest.approx(expected_losses, rel=1e-5)


def test_staleness_bookkeeping_grows_to_the_set_value(problem):
    model, X, y = problem
    run = train_stale_sgd(model, X, y, loss_fn=nn.MSELoss(), staleness=4, epochs=1, batch_size=12, lr=0.05)
    assert run.staleness == [0, 1, 2, 3, 4, 4, 4, 4]  # 96 // 12 updates
    assert len(run.losses) == len(run.staleness) + 1


def test_staleness_zero_is_plain_sgd(problem):
    model, X, y = problem
    run = train_stale_sgd(model, X, y, loss_fn=nn.MSELoss(), staleness=0, epochs=2, batch_size=16, lr=0.1, seed=3)
    sgd = copy.deepcopy(model)
    optimizer = torch.optim.SGD(sgd.parameters(), lr=0.1)
    for epoch in (1, 2):
        for rows in global_batches(len(X), batch_size=16, epoch=epoch, seed=3):
            optimizer.zero_grad()
            nn.MSELoss()(sgd(X[rows]), y[rows]).backward()
            optimizer.step()
    for name, tensor in sgd.state_dict().items():
        torch.testing.assert_close(run.state_dict[name], tensor)
    assert set(run.staleness) == {0}


def test_stale_gradients_slow_the_descent_at_a_rate_that_suits_fresh_ones(problem):
    model, X, y = problem
    fresh = train_stale_sgd(model, X, y, loss_fn=nn.MSELoss(), staleness=0, epochs=3, batch_size=8, lr=0.3)
    stale = train_stale_sgd(model, X, y, loss_fn=nn.MSELoss(), staleness=4, epochs=3, batch_size=8, lr=0.3)
    assert sum(stale.losses) > 1.5 * sum(fresh.losses)


def test_the_model_is_not_changed(problem):
    model, X, y = problem
    before = copy.deepcopy(model.state_dict())
    train_stale_sgd(model, X, y, loss_fn=nn.MSELoss(), staleness=2, epochs=1, batch_size=16, lr=0.1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("change", "error", "text"),
    [
        (dict(staleness=-1), ValueError, "Expected `staleness` to be an int >= 0, but got -1."),
        (dict(staleness=1.0), TypeError, "Expected `staleness` to be an int >= 0"),
        (dict(lr=0.0), ValueError, "Expected `lr` to be a float > 0"),
        (dict(epochs=0), ValueError, "Expected `epochs` to be an int >= 1"),
        (dict(batch_size=97), ValueError, "Expected `batch_size` to be an int in [1, 96]"),
        (dict(seed=-2), ValueError, "Expected `seed` to be an int >= 0"),
        (dict(loss_fn="mse"), TypeError, "Expected `loss_fn` to be callable"),
        (dict(model="linear"), TypeError, "Expected `model` to be a torch.nn.Module"),
        (dict(X="rows"), TypeError, "Expected `X` to be a torch.Tensor"),
        (dict(y=torch.zeros(5, 1)), ValueError, "Expected `X` and `y` to have the same length"),
    ],
)
def test_bad_input(problem, change, error, text):
    model, X, y = problem
    kwargs = dict(model=model, X=X, y=y, loss_fn=nn.MSELoss(), staleness=1, epochs=1, batch_size=16, lr=0.1, seed=0)
    kwargs.update(change)
    with pytest.raises(error) as info:
        train_stale_sgd(kwargs.pop("model"), kwargs.pop("X"), kwargs.pop("y"), **kwargs)
    assert text in str(info.value)
