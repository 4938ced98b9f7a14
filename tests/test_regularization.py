"""Tests for companion.regularization: L2 against scikit-learn's Ridge and SGD weight decay,
EarlyStopping's life cycle on scripted histories, and the lambda sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from torch import nn

from companion.data import make_loader, make_regression, split
from companion.regularization import (
    EarlyStopping,
    L2Regularized,
    SweepResult,
    l2_penalty,
    lambda_sweep,
    regularized_parameters,
    weight_norm,
)
from companion.training import History, TrainingState, fit


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 4, bias=False),
        nn.LayerNorm(4), nn.GroupNorm(2, 4), nn.Linear(4, 3),
    )


# --- which parameters are penalized -------------------------------------------------------

def test_regularized_parameters_skip_biases_and_norm_layers():
    names = [name for name, _ in regularized_parameters(_net())]
    assert names == ["0.weight", "3.weight", "6.weight"]


def test_embedding_weights_are_penalized():
    model = nn.Sequential(nn.Embedding(5, 2), nn.Linear(2, 1))
    assert [n for n, _ in regularized_parameters(model)] == ["0.weight", "1.weight"]


def test_l2_penalty_equals_lambda_times_sum_of_squared_weights():
    net = _net()
    expected = 0.3 * sum((net[i].weight ** 2).sum().item() for i in (0, 3, 6))
    assert l2_penalty(net, 0.3).item() == pytest.approx(expected, rel=1e-6)
    assert l2_penalty(net, 0.0).item() == 0.0
    assert weight_norm(net) == pytest.approx((expected / 0.3) ** 0.5, rel=1e-6)


def test_l2_penalty_gradient_is_two_lambda_w_and_zero_for_biases():
    net = _net()
    l2_penalty(net, 0.25).backward()
    torch.testing.assert_close(net[6].weight.grad, 2 * 0.25 * net[6].weight.detach())
    for p in (net[0].bias, net[1].weight, net[4].weight, net[6].bias):
        assert p.grad is None


def test_penalty_step_equals_sgd_weight_decay_of_two_lambda():
    """Oracle: torch's SGD weight_decay adds wd * w to the gradient, i.e. L2 with lam = wd / 2."""
    X, y = make_regression(32, 4, seed=1)
    y = y.unsqueeze(1)
    ours, reference = nn.Linear(4, 1), nn.Linear(4, 1)
    reference.load_state_dict(ours.state_dict())
    lam, lr = 0.05, 0.1
    loss = L2Regularized(nn.MSELoss(), ours, lam=lam)
    opt = torch.optim.SGD(ours.parameters(), lr=lr)
    opt_ref = torch.optim.SGD([{"params": [reference.weight], "weight_decay": 2 * lam},
                               {"params": [reference.bias], "weight_decay": 0.0}], lr=lr)
    for _ in range(5):
        for model, optimizer, fn in ((ours, opt, loss), (reference, opt_ref, nn.MSELoss())):
            optimizer.zero_grad()
            fn(model(X), y).backward()
            optimizer.step()
    torch.testing.assert_close(ours.weight, reference.weight)
    torch.testing.assert_close(ours.bias, reference.bias)


def test_minimizer_matches_sklearn_ridge_with_unpenalized_intercept():
    """mean((y - Xw - b)^2) + lam ||w||^2 has the minimizer of Ridge(alpha = lam * N)."""
    X, y = make_regression(80, 6, noise=1.0, seed=3)
    X, y = X.double(), y.double().unsqueeze(1)
    lam = 0.2
    model = nn.Linear(6, 1).double()
    loss = L2Regularized(nn.MSELoss(), model, lam=lam)
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=200, tolerance_grad=1e-12,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss(model(X), y)
        value.backward()
        return value

    opt.step(closure)
    ridge = Ridge(alpha=lam * len(X)).fit(X.numpy(), y.numpy().ravel())
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), ridge.coef_, atol=1e-6)
    np.testing.assert_allclose(model.bias.item(), ridge.intercept_, atol=1e-6)


def test_l2_regularized_adds_penalty_only_in_training_mode():
    model = nn.Linear(3, 1)
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    loss = L2Regularized(nn.MSELoss(), model, lam=0.5)
    pure = nn.MSELoss()(model(x), y)
    torch.testing.assert_close(loss(model(x), y), pure + l2_penalty(model, 0.5))
    model.eval()
    torch.testing.assert_close(loss(model(x), y), pure)
    assert "lam=0.5" in repr(loss)


def test_l2_bad_inputs():
    with pytest.raises(ValueError, match=r"Expected `lam` to be a float >= 0, but got -0.1\."):
        l2_penalty(nn.Linear(2, 1), -0.1)
    with pytest.raises(TypeError, match=r"Expected `lam` to be a float >= 0, but got '1'\."):
        l2_penalty(nn.Linear(2, 1), "1")
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module"):
        l2_penalty("not a model", 0.1)
    with pytest.raises(ValueError, match=r"Expected `model` to be a module with at least one weight"):
        l2_penalty(nn.Sequential(nn.ReLU(), nn.LayerNorm(3)), 0.1)
    with pytest.raises(TypeError, match=r"Expected `loss_fn` to be callable"):
        L2Regularized(3, nn.Linear(2, 1), lam=0.1)
    with pytest.raises(ValueError, match=r"Expected `lam` to be a float >= 0"):
        L2Regularized(nn.MSELoss(), nn.Linear(2, 1), lam=float("nan"))


# --- early stopping --------------------------------------------------------------------------

def _replay(stopper: EarlyStopping, values: list[float], model: nn.Module | None = None) -> TrainingState:
    """Drive the callback as fit would, epoch by epoch, with scripted validation losses.

    Before epoch e ends, the model's weight is set to e, so restoring can be checked.
    """
    model = model or nn.Linear(1, 1)
    state = TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                          history=History())
    stopper.on_train_begin(state)
    for epoch, value in enumerate(values, start=1):
        state.epoch = epoch
        with torch.no_grad():
            model.weight.fill_(epoch)
        state.history.val_loss.append(value)
        state.history.train_loss.append(value)
        stopper.on_epoch_end(state)
        if state.stop:
            state.history.stopped_epoch = epoch
            break
    stopper.on_train_end(state)
    return state


def test_early_stopping_stops_after_patience_and_restores_best_epoch():
    stopper = EarlyStopping(patience=3)
    state = _replay(stopper, [1.0, 0.8, 0.5, 0.6, 0.55, 0.7, 0.4, 0.3])
    assert stopper.best_epoch_ == 3 and stopper.best_score_ == 0.5
    assert stopper.stopped_epoch_ == 6 and state.history.stopped_epoch == 6
    assert stopper.wait_ == 3
    assert float(state.model.weight.detach()) == 3.0  # the weights of epoch 3, not of epoch 6


def test_early_stopping_min_delta_ignores_tiny_improvements():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    _replay(stopper, [1.0, 0.95, 0.92, 0.5])
    assert stopper.best_epoch_ == 1 and stopper.stopped_epoch_ == 3


def test_early_stopping_mode_max_and_no_restore():
    stopper = EarlyStopping(patience=1, monitor="val_loss", mode="max", restore_best=False)
    state = _replay(stopper, [0.1, 0.5, 0.4])
    assert stopper.best_epoch_ == 2 and stopper.stopped_epoch_ == 3
    assert float(state.model.weight.detach()) == 3.0  # kept the last weights


def test_early_stopping_never_triggered_keeps_running_and_restores():
    stopper = EarlyStopping(patience=5)
    state = _replay(stopper, [3.0, 2.0, 1.0, 2.0])
    assert stopper.stopped_epoch_ is None and not state.stop
    assert float(state.model.weight.detach()) == 3.0


def test_early_stopping_resets_between_runs():
    stopper = EarlyStopping(patience=2)
    _replay(stopper, [0.1, 0.2, 0.3])
    assert stopper.best_score_ == 0.1 and stopper.stopped_epoch_ == 3
    _replay(stopper, [5.0, 4.0, 3.0, 2.0])  # worse than the old best: must not count as stalled
    assert stopper.best_score_ == 2.0 and stopper.best_epoch_ == 4
    assert stopper.stopped_epoch_ is None and stopper.wait_ == 0


def test_early_stopping_inside_fit_restores_the_best_validation_weights():
    X, y = make_regression(40, 30, noise=2.0, seed=0)
    (Xtr, ytr), (Xva, yva) = split(X, y.unsqueeze(1), fractions=(0.5, 0.5))
    torch.manual_seed(0)
    model = nn.Linear(30, 1)
    stopper = EarlyStopping(patience=5)
    history = fit(model, make_loader(Xtr, ytr, batch_size=4), loss_fn=nn.MSELoss(),
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.05), epochs=300,
                  val_loader=make_loader(Xva, yva, shuffle=False), callbacks=[stopper],
                  progress=False, device="cpu")
    assert history.stopped_epoch == stopper.stopped_epoch_ < 300
    assert stopper.best_epoch_ == history.best_epoch()
    with torch.no_grad():
        restored = float(nn.MSELoss()(model(Xva), yva))
    assert restored == pytest.approx(min(history.val_loss), rel=1e-5)
    assert restored < history.val_loss[-1]


def test_early_stopping_without_validation_data_says_what_to_do():
    X, y = make_regression(16, 1)
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match=r"Expected `monitor` to be .*pass val_loader.*'val_loss'"):
        fit(model, make_loader(X, y.unsqueeze(1)), loss_fn=nn.MSELoss(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
            callbacks=[EarlyStopping()], progress=False, device="cpu")


def test_early_stopping_bad_arguments():
    with pytest.raises(ValueError, match=r"Expected `patience` to be an int >= 1, but got 0\."):
        EarlyStopping(patience=0)
    with pytest.raises(TypeError, match=r"Expected `patience` to be an int >= 1, but got 2.5\."):
        EarlyStopping(patience=2.5)
    with pytest.raises(ValueError, match=r"Expected `min_delta` to be a float >= 0"):
        EarlyStopping(min_delta=-1.0)
    with pytest.raises(ValueError, match=r"Expected `mode` to be one of \('min', 'max'\)"):
        EarlyStopping(mode="avg")
    with pytest.raises(TypeError, match=r"Expected `restore_best` to be a bool"):
        EarlyStopping(restore_best=1)
    with pytest.raises(TypeError):
        EarlyStopping(3)  # hyperparameters are keyword-only
    with pytest.raises(KeyError, match=r"Expected `key` to be one of"):
        _replay(EarlyStopping(monitor="val_acc"), [1.0])


# --- lambda sweep -----------------------------------------------------------------------------

def _sweep(lambdas, **kwargs) -> SweepResult:
    X, y = make_regression(60, 20, noise=2.0, seed=2)
    (Xtr, ytr), (Xva, yva) = split(X, y.unsqueeze(1), fractions=(0.5, 0.5))
    return lambda_sweep(lambda: nn.Linear(20, 1), (Xtr, ytr), (Xva, yva), lambdas=lambdas,
                        loss_fn=nn.MSELoss(), epochs=150, lr=0.05, device="cpu", **kwargs)


def test_lambda_sweep_goes_from_overfit_to_underfit():
    result = _sweep([0.0, 0.01, 0.1, 1.0, 10.0])
    assert all(a > b for a, b in zip(result.weight_norm, result.weight_norm[1:]))
    assert all(a < b for a, b in zip(result.train_loss, result.train_loss[1:]))
    assert result.val_loss[0] > result.train_loss[0] * 2  # lambda = 0 overfits
    assert result.val_loss[-1] > min(result.val_loss) * 1.5  # lambda = 10 underfits
    assert result.best_lambda not in (0.0, 10.0)
    assert len(result.models) == 5


def test_lambda_sweep_is_deterministic_and_lambda_zero_is_plain_training():
    a, b = _sweep([0.0, 0.5]), _sweep([0.0, 0.5])
    assert a.val_loss == b.val_loss and a.weight_norm == b.weight_norm
    X, y = make_regression(60, 20, noise=2.0, seed=2)
    (Xtr, ytr), _ = split(X, y.unsqueeze(1), fractions=(0.5, 0.5))
    from companion.utils import seed_everything

    seed_everything(0)
    model = nn.Linear(20, 1)
    fit(model, make_loader(Xtr, ytr, batch_size=len(Xtr)), loss_fn=nn.MSELoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.05), epochs=150, progress=False,
        device="cpu")
    assert weight_norm(model) == a.weight_norm[0]


def test_lambda_sweep_bad_arguments():
    with pytest.raises(ValueError, match=r"Expected `lambdas` to be a non-empty sequence"):
        _sweep([])
    with pytest.raises(ValueError, match=r"Expected `lambdas\[1\]` to be a float >= 0, but got -1.0\."):
        _sweep([0.0, -1.0])
    with pytest.raises(ValueError, match=r"Expected `optimizer` to be one of \('adam', 'sgd'\)"):
        _sweep([0.0], optimizer="rmsprop")
    X = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"Expected `train\[0\]` and `train\[1\]` to have the same length"):
        lambda_sweep(lambda: nn.Linear(2, 1), (X, torch.zeros(3, 1)), (X, torch.zeros(4, 1)),
                     lambdas=[0.0], loss_fn=nn.MSELoss(), epochs=1)
    with pytest.raises(TypeError, match=r"Expected `build_model\(\)` to be a torch.nn.Module"):
        lambda_sweep(lambda: "model", (X, torch.zeros(4, 1)), (X, torch.zeros(4, 1)),
                     lambdas=[0.0], loss_fn=nn.MSELoss(), epochs=1)
