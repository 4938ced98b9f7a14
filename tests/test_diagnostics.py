"""Tests for companion.diagnostics: autograd and captum as oracles, planted faults caught."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerActivation
from torch import nn

from companion.data import make_loader
from companion.diagnostics import GradientMonitor, record_layer_outputs, unit_activity
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
    with pytest.raises(ValueError, match=r"Expected `monitor` to be a GradientMonitor that has recorded a "
                                         r"backward pass, .*: found no gradients yet"):
        GradientMonitor(_mlp([2, 2, 1])).attach().summary()


# ---- record_layer_outputs ----------------------------------------------------------------------


def _no_forward_hooks(model: nn.Module) -> bool:
    return all(len(m._forward_hooks) == 0 for m in model.modules())


def test_record_layer_outputs_records_every_layer_in_the_order_forward_finishes_them():
    model = _mlp([3, 4, 2])
    x = torch.randn(5, 3)
    with record_layer_outputs(model) as records:
        out = model(x)
    assert [name for name, _, _ in records] == ["0", "1", "2", ""]
    hidden = torch.relu(model[0](x))
    assert torch.equal(records[1][2][0], hidden) and torch.equal(records[3][2][0], out)
    assert records[1][1] is model[1]
    assert _no_forward_hooks(model)


def test_record_layer_outputs_flattens_outputs_selects_types_and_transforms_inside_the_hook():
    lstm = nn.LSTM(3, 4, batch_first=True)
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(inplace=True), nn.Dropout(0.0, inplace=True))
    with record_layer_outputs(lstm, layer_types=nn.LSTM, transform=lambda t: tuple(t.shape)) as records:
        lstm(torch.randn(2, 5, 3))
    assert records[0][2] == [(2, 5, 4), (1, 2, 4), (1, 2, 4)]  # output, (h, c)
    with torch.no_grad(), record_layer_outputs(model, layer_types=nn.ReLU, transform=torch.clone) as records:
        out = model(torch.randn(4, 3))
        out.fill_(-1.0)  # a later in-place change of the same tensor ...
    assert (records[0][2][0] >= 0).all()  # ... does not reach what the hook recorded


def test_record_layer_outputs_removes_its_hooks_after_an_error():
    model = _mlp([3, 4, 2])
    with pytest.raises(RuntimeError):
        with record_layer_outputs(model):
            model(torch.randn(2, 5))  # wrong width
    assert _no_forward_hooks(model)
    with pytest.raises(TypeError, match=r"Expected `transform` to be callable"):
        with record_layer_outputs(model, transform=3):
            pass
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module"):
        with record_layer_outputs(lambda x: x):
            pass


# ---- unit_activity ---------------------------------------------------------------------------


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
    ours = unit_activity(model, make_loader(X, torch.zeros(200), batch_size=37, shuffle=False))
    reference = _captum_dead_counts(model, X)
    assert ours["dead"].to_dict() == reference
    assert ours["dead"].tolist()[0] == 5 and ours["dead"].tolist()[1] >= 9
    assert ours["units"].tolist() == [32, 32, 16]
    assert ours["dead_fraction"].tolist() == pytest.approx((ours["dead"] / ours["units"]).tolist())


def test_dead_counts_agree_with_captum_on_a_cnn_with_inplace_relu():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 6 * 6, 2),
    )
    with torch.no_grad():
        model[2].bias[1] = -50.0
    X = torch.randn(30, 1, 8, 8)
    ours = unit_activity(model, X)
    assert ours["dead"].to_dict() == _captum_dead_counts(model, X)
    assert ours.loc["3", "units"] == 4 * 6 * 6 and ours.loc["3", "dead"] >= 36


def test_nonzero_fraction_counts_every_output_value_and_matches_a_manual_count():
    torch.manual_seed(0)
    model = _mlp([3, 16, 2])
    x = torch.randn(32, 3)
    relu_out = model[1](model[0](x))
    table = unit_activity(model, x)
    assert list(table.index) == ["1"] and table.index.name == "layer"
    assert 1 - table.loc["1", "dead_fraction"] == pytest.approx(float((relu_out != 0).any(dim=0).float().mean()))
    assert table.loc["1", "nonzero_fraction"] == pytest.approx(float((relu_out != 0).float().mean()))
    # Over two batches of different sizes, the shares pool every value.
    loader = [x[:20], x[20:]]
    assert unit_activity(model, loader).loc["1", "nonzero_fraction"] == pytest.approx(table.loc["1", "nonzero_fraction"])
    # Other layer types: a linear layer's outputs are non-zero (almost) everywhere.
    both = unit_activity(model, x, layer_types=(nn.Linear, nn.ReLU))
    assert list(both.index) == ["0", "1", "2"] and both.loc["0", "dead"] == 0


def test_unit_activity_restores_mode_and_removes_hooks():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 1)).train()
    model[2].eval()  # a submodule in its own mode comes back in that mode
    unit_activity(model, torch.randn(10, 3))
    assert model.training and not model[2].training
    assert _no_forward_hooks(model)


def test_unit_activity_leaves_the_model_where_it_is():
    # It used to run `model.to(device)` with the best device available and leave the model
    # there. Any re-placement goes through Module._apply; none may happen.
    model = _mlp([3, 4, 1])
    moves = []
    original = model._apply
    model._apply = lambda fn, *args, **kwargs: moves.append(fn) or original(fn, *args, **kwargs)
    unit_activity(model, torch.randn(8, 3))
    assert moves == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU to tell two devices apart")
def test_unit_activity_runs_on_the_models_device_with_a_gpu_present():
    cpu_model, gpu_model = _mlp([3, 4, 1]), _mlp([3, 4, 1]).cuda()
    x = torch.randn(8, 3)
    assert unit_activity(cpu_model, x).equals(unit_activity(gpu_model.cpu(), x))
    gpu_model.cuda()
    unit_activity(cpu_model, x)
    unit_activity(gpu_model, x)  # CPU inputs go to the model's device
    assert next(cpu_model.parameters()).device.type == "cpu"
    assert next(gpu_model.parameters()).device.type == "cuda"


def test_unit_activity_validates_input():
    with pytest.raises(ValueError, match=r"Expected `model` to be a model with at least one layer of type ReLU"):
        unit_activity(nn.Linear(2, 2), torch.randn(3, 2))
    relu = nn.ReLU()
    reused = nn.Sequential(nn.Linear(2, 4), relu, nn.Linear(4, 4), relu)
    with pytest.raises(ValueError, match=r"Expected `model` to be a model that runs each watched layer once per "
                                         r"forward pass, .*: found `1` ran 2 times"):
        unit_activity(reused, torch.randn(3, 2))

    class Skips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear, self.spare = nn.Linear(2, 2), nn.ReLU()

        def forward(self, x):
            return self.linear(x)

    with pytest.raises(ValueError, match=r"Expected `model` to be a model whose watched layers all run .*`spare` did not run"):
        unit_activity(Skips(), torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"Expected `data` to be a tensor or loader with at least one example"):
        unit_activity(_mlp([2, 4, 1]), [])
    with pytest.raises(TypeError, match=r"Expected `data` to be a tensor or a loader"):
        unit_activity(_mlp([2, 4, 1]), 3.0)
    with pytest.raises(TypeError, match=r"Expected `layer_types` to be a type or a tuple of types"):
        unit_activity(_mlp([2, 4, 1]), torch.randn(3, 2), layer_types=())
    conv = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"Expected `data` to be batches on which layer `1` outputs the same number"):
        unit_activity(conv, [torch.randn(2, 1, 5, 5), torch.randn(2, 1, 6, 6)])


# ---- plots ---------------------------------------------------------------------------------------
