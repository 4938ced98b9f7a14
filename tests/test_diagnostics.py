"""Tests for companion.diagnostics: autograd and captum as oracles, planted faults caught."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerActivation
from torch import nn

from companion.data import make_loader
from companion.diagnostics import GradientMonitor, dead_relu_fraction
from companion.training import fit


def _mlp(widths: list[int], activation: type[nn.Module] = nn.ReLU, *, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def _hook_count(model: nn.Module) -> int:
    return sum(len(p._backward_hooks or {}) for p in model.parameters())


def _data(n: int = 64, features: int = 4, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, features, generator=g)
    return X, X.sum(dim=1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)


# ---- GradientMonitor -----------------------------------------------------------------------


def test_recorded_norms_equal_autograd_weight_gradient_norms():
    model = _mlp([4, 8, 8, 1])
    X, y = _data()
    with GradientMonitor(model) as monitor:
        for _ in range(3):
            model.zero_grad()
            nn.functional.mse_loss(model(X), y).backward()
    assert monitor.layers_ == ["0", "2", "4"]
    norms = monitor.step_norms()
    for name in monitor.layers_:
        assert len(norms[name]) == 3
        expected = model.get_submodule(name).weight.grad.norm().item()
        assert norms[name][-1] == pytest.approx(expected, rel=1e-6)
    assert _hook_count(model) == 0


def test_as_fit_callback_records_every_step_and_removes_its_hooks():
    model = _mlp([4, 8, 1])
    X, y = _data(40)
    monitor = GradientMonitor()
    fit(model, make_loader(X, y, batch_size=16), loss_fn=nn.MSELoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01), epochs=3,
        callbacks=[monitor], progress=False, device="cpu")
    assert monitor.num_steps == 9  # 3 batches per epoch
    assert monitor.epoch_ends_ == [3, 6, 9]
    assert not monitor.attached and _hook_count(model) == 0
    steps = torch.tensor(monitor.step_norms()["0"], dtype=torch.float64)
    assert monitor.epoch_norms()["0"] == pytest.approx([float(steps[i:i + 3].mean()) for i in (0, 3, 6)])
    assert monitor.layer_norms()["0"] == pytest.approx(float(steps.mean()))


def test_a_second_fit_starts_a_new_record():
    model = _mlp([4, 8, 1])
    X, y = _data(32)
    monitor = GradientMonitor()
    for _ in range(2):
        fit(model, make_loader(X, y, batch_size=32), loss_fn=nn.MSELoss(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01), epochs=2,
            callbacks=[monitor], progress=False, device="cpu")
        assert monitor.num_steps == 2


def test_context_manager_keeps_hooks_through_fit_and_removes_them_on_error():
    model = _mlp([4, 8, 1])
    X, y = _data(32)
    with pytest.raises(RuntimeError, match="boom"):
        with GradientMonitor(model) as monitor:
            fit(model, make_loader(X, y, batch_size=32), loss_fn=nn.MSELoss(),
                optimizer=torch.optim.SGD(model.parameters(), lr=0.01), epochs=1,
                callbacks=[monitor], progress=False, device="cpu")
            assert monitor.attached  # fit did not remove the with-block's hooks
            raise RuntimeError("boom")
    assert not monitor.attached and _hook_count(model) == 0


def test_deep_sigmoid_network_is_flagged_vanishing_and_relu_is_not():
    X, y = _data(128, 16)
    found = {}
    for activation in (nn.Sigmoid, nn.ReLU):
        model = _mlp([16] + [32] * 10 + [1], activation)
        for layer in model:  # He initialization, so that ReLU keeps the gradient's scale
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        with GradientMonitor(model) as monitor:
            nn.functional.mse_loss(model(X), y).backward()
        found[activation] = monitor.summary()
    sigmoid, relu = found[nn.Sigmoid], found[nn.ReLU]
    assert sigmoid["vanishing"].iloc[0] and not sigmoid["vanishing"].iloc[-1]
    assert not relu["vanishing"].any()
    assert sigmoid["ratio_to_largest"].iloc[0] < 1e-3 < relu["ratio_to_largest"].iloc[0]


def test_large_weights_and_nan_are_flagged_exploding():
    X, y = _data(64, 8)
    model = _mlp([8] + [64] * 6 + [1])
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5.0)
    with GradientMonitor(model, exploding_norm=1e3) as monitor:
        nn.functional.mse_loss(model(X), y).backward()
    assert monitor.exploding_layers == monitor.layers_
    healthy = _mlp([8, 16, 1])
    with torch.no_grad():
        healthy[0].weight[0, 0] = float("nan")  # planted fault
    with GradientMonitor(healthy) as monitor:
        nn.functional.mse_loss(healthy(X), y).backward()
    assert monitor.summary()["exploding"].all()


def test_watches_convolutions_and_counts_shared_weights_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 4), shared, nn.ReLU(), shared)
    with GradientMonitor(model) as monitor:
        model(torch.randn(2, 1, 6, 6)).sum().backward()
    assert monitor.layers_ == ["0", "2", "3"]
    assert [len(v) for v in monitor.step_norms().values()] == [1, 1, 1]


def test_gradient_monitor_validates_input():
    with pytest.raises(ValueError, match=r"Expected `vanishing_ratio` to be a float in \(0, 1\), but got 1.5"):
        GradientMonitor(vanishing_ratio=1.5)
    with pytest.raises(ValueError, match=r"Expected `exploding_norm` to be a float > 0, but got -1.0"):
        GradientMonitor(exploding_norm=-1.0)
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module, but got 'net'"):
        GradientMonitor("net")
    with pytest.raises(ValueError, match=r"Expected `model` to be a model with trainable layers of type Linear"):
        GradientMonitor(nn.Sequential(nn.ReLU())).attach()
    with pytest.raises(RuntimeError, match="recorded no gradients yet"):
        GradientMonitor(_mlp([2, 2, 1])).attach().summary()


# ---- dead_relu_fraction ------------------------------------------------------------------------


def _captum_dead_counts(model: nn.Module, X: torch.Tensor) -> dict[str, int]:
    counts = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.ReLU):
            activation = LayerActivation(model, module).attribute(X)
            counts[name] = int((~(activation > 0).any(dim=0)).sum())
    return counts


def test_dead_counts_agree_with_captum_layer_activation_on_an_mlp():
    model = _mlp([6, 32, 32, 16, 1], seed=3)
    with torch.no_grad():  # kill some units of each layer: very negative bias
        model[0].bias[:5] = -1e3
        model[2].bias[3:12] = -1e3
        model[4].bias[0] = -1e3
    X = torch.randn(200, 6)
    ours = dead_relu_fraction(model, make_loader(X, torch.zeros(200), batch_size=37, shuffle=False), device="cpu")
    reference = _captum_dead_counts(model, X)
    assert ours["dead"].to_dict() == reference
    assert ours["dead"].tolist()[0] == 5 and ours["dead"].tolist()[1] >= 9
    assert ours["units"].tolist() == [32, 32, 16]
    assert ours["fraction"].tolist() == pytest.approx((ours["dead"] / ours["units"]).tolist())


def test_dead_counts_agree_with_captum_on_a_cnn_with_inplace_relu():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 6 * 6, 2),
    )
    with torch.no_grad():
        model[2].bias[1] = -50.0
    X = torch.randn(30, 1, 8, 8)
    ours = dead_relu_fraction(model, X, device="cpu")
    assert ours["dead"].to_dict() == _captum_dead_counts(model, X)
    assert ours.loc["3", "units"] == 4 * 6 * 6 and ours.loc["3", "dead"] >= 36


def test_dead_relu_fraction_restores_mode_and_removes_hooks():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 1)).train()
    dead_relu_fraction(model, torch.randn(10, 3), device="cpu")
    assert model.training
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_dead_relu_fraction_validates_input():
    with pytest.raises(ValueError, match=r"Expected `model` to be a model with at least one nn.ReLU module"):
        dead_relu_fraction(nn.Linear(2, 2), torch.randn(3, 2), device="cpu")
    relu = nn.ReLU()
    reused = nn.Sequential(nn.Linear(2, 4), relu, nn.Linear(4, 3), relu)
    with pytest.raises(ValueError, match="used once per forward pass"):
        dead_relu_fraction(reused, torch.randn(3, 2), device="cpu")
    with pytest.raises(ValueError, match=r"Expected `data` to be a tensor or loader with at least one example"):
        dead_relu_fraction(_mlp([2, 4, 1]), [], device="cpu")
    with pytest.raises(TypeError, match=r"Expected `data` to be a tensor or a loader"):
        dead_relu_fraction(_mlp([2, 4, 1]), 3.0, device="cpu")


# ---- plots ---------------------------------------------------------------------------------------


def test_gradient_and_dead_unit_plots_draw_every_layer_and_run():
    from companion.plots import (
        plot_dead_units,
        plot_gradient_norm_history,
        plot_layer_gradient_norms,
    )

    model = _mlp([4, 8, 8, 1])
    X, y = _data()
    with GradientMonitor(model) as monitor:
        for _ in range(2):
            model.zero_grad()
            nn.functional.mse_loss(model(X), y).backward()
    ax = plot_layer_gradient_norms({"a": monitor.layer_norms(), "b": monitor.layer_norms()})
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == monitor.layers_
    norms = monitor.step_norms()
    norms["0"][1] = float("nan")
    ax = plot_gradient_norm_history(norms)
    assert len(ax.lines) == 4  # three layers and the first-NaN marker
    table = dead_relu_fraction(model, X, device="cpu")
    ax = plot_dead_units({"high lr": table, "low lr": table})
    assert len(ax.patches) == 2 * len(table)
