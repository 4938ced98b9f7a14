"""Tests for companion.checks: each check passes on a healthy model and fails, with its
message, on a planted fault."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import ks_2samp
from torch import nn

from companion import checks as C
from companion.checks import ModelCheckError
from companion.data import make_classification, make_loader, make_regression
from companion.utils import seed_everything


def mlp(in_features: int = 3, out_features: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, out_features))


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


# ---------------------------------------------------------------- smoke_step


def test_smoke_step_passes_and_leaves_model_untouched():
    torch.manual_seed(0)
    model = mlp()
    before = [p.clone() for p in model.parameters()]
    loss = C.smoke_step(model, nn.CrossEntropyLoss(), torch.randn(8, 3), torch.randint(0, 2, (8,)))
    assert loss > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_smoke_step_names_the_failing_stage():
    model = mlp()
    with pytest.raises(ModelCheckError, match=r"forward pass raised.*\n  Where: .*\(8, 5\)"):
        C.smoke_step(model, nn.CrossEntropyLoss(), torch.randn(8, 5), torch.randint(0, 2, (8,)))
    with pytest.raises(ModelCheckError, match="the loss raised"):
        C.smoke_step(model, nn.CrossEntropyLoss(), torch.randn(8, 3), torch.randn(8, 3, 3))
    with pytest.raises(ModelCheckError, match="not a scalar"):
        C.smoke_step(model, nn.MSELoss(reduction="none"), torch.randn(8, 3), torch.randn(8, 2))


class Detached(nn.Module):
    """Planted bug: the first layer's output leaves the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(3, 4), nn.Linear(4, 1)

    def forward(self, x):
        return self.second(self.first(x).detach())


def test_smoke_step_finds_parameters_without_gradient():
    with pytest.raises(ModelCheckError, match=r"no gradient.*\n  Where: parameters \['first.weight', 'first.bias'\]"):
        C.smoke_step(Detached(), nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1))


def test_smoke_step_finds_zero_gradients_of_a_dead_layer():
    model = mlp(out_features=1)
    with torch.no_grad():
        model[0].bias.fill_(-100.0)
    with pytest.raises(ModelCheckError, match=r"gradient of zero everywhere\n  Where: parameters \['0.weight', '0.bias', '2.weight'\]"):
        C.smoke_step(model, nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1))


def test_smoke_step_rejects_non_finite_loss_and_bad_arguments():
    model = mlp(out_features=1)
    with pytest.raises(ModelCheckError, match="the loss is nan"):
        C.smoke_step(model, nn.MSELoss(), torch.randn(8, 3), torch.full((8, 1), float("nan")))
    with pytest.raises(ValueError, match=r"Expected `lr` to be a float > 0, but got 0.0\."):
        C.smoke_step(model, nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1), lr=0.0)
    with pytest.raises(TypeError, match="Expected `model` to be a torch.nn.Module"):
        C.smoke_step("model", nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1))


# ---------------------------------------------------------------- overfit_small_batch


def test_overfit_small_batch_reaches_tiny_loss_with_plain_gradient_descent():
    seed_everything(0)
    x = torch.randn(10, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()  # not linearly separable
    final = C.overfit_small_batch(mlp(2, 2), x, y, steps=300, lr=0.5, max_loss=0.05)
    assert final < 0.05


def test_overfit_small_batch_fails_when_labels_are_scrambled_by_a_bug():
    seed_everything(0)
    x = torch.randn(10, 2)
    y = (x[:, 0] > 0).long()
    linear = nn.Linear(2, 2)
    final = C.overfit_small_batch(linear, x, y, steps=300, lr=0.5)
    assert final < 0.1
    scrambled = torch.tensor([0, 1] * 5)  # planted bug: labels no longer belong to their rows
    with pytest.raises(ModelCheckError, match=r"loss on 10 examples is .* \(must be <= 0.05\)"):
        C.overfit_small_batch(nn.Linear(2, 2), torch.ones(10, 2), scrambled, steps=100, lr=0.5,
                              max_loss=0.05)


def test_overfit_small_batch_reports_divergence():
    x, y = torch.randn(10, 2) * 100, torch.randn(10, 1) * 100
    with pytest.raises(ModelCheckError, match=r"loss became (inf|nan) at step \d+"):
        C.overfit_small_batch(nn.Linear(2, 1), x, y, steps=200, lr=10.0)


def test_overfit_small_batch_uses_plain_sgd_like_a_manual_loop():
    seed_everything(1)
    x, y = torch.randn(10, 3), torch.randn(10, 1)
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    C.overfit_small_batch(a, x, y, steps=5, lr=0.1)
    for _ in range(5):  # the reference: w <- w - lr * grad
        b.zero_grad()
        nn.functional.mse_loss(b(x), y).backward()
        with torch.no_grad():
            for p in b.parameters():
                p -= 0.1 * p.grad
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


# ---------------------------------------------------------------- label_leak_check


def _train(shuffle_bug: bool = False):
    def train(X, y):
        if shuffle_bug:  # planted pipeline bug: labels shuffled apart from their rows
            y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
        model = nn.Linear(X.shape[1], int(y.max()) + 1)
        C.overfit_small_batch(model, X, y, steps=300, lr=0.5)
        return model
    return train


def test_label_leak_check_passes_on_a_working_pipeline():
    X, y = make_classification(200, 5, 3, class_sep=0.1, seed=0)
    assert C.label_leak_check(_train(), X, y) >= 0.99


def test_label_leak_check_catches_a_pipeline_bug():
    X, y = make_classification(200, 5, 3, class_sep=0.1, seed=0)
    with pytest.raises(ModelCheckError, match=r"only reached accuracy 0\.\d+ .*bug.*\n  Where: train_fn on 8 columns, the last 3"):
        C.label_leak_check(_train(shuffle_bug=True), X, y)


def test_label_leak_check_regression_uses_r2():
    X, y = make_regression(100, 3, noise=5.0, seed=0)

    def train(X, y):
        model = nn.Linear(X.shape[1], 1)
        C.overfit_small_batch(model, X, y.unsqueeze(1), steps=300, lr=0.01)
        return lambda inputs: model(inputs).squeeze(1)

    assert C.label_leak_check(train, X, y) > 0.99
    with pytest.raises(ValueError, match=r"Expected `min_score` to be a float in \(0, 1\]"):
        C.label_leak_check(train, X, y, min_score=1.5)


# ---------------------------------------------------------------- check_reproducible


def _fit_once(seed_loader_from_clock: bool = False) -> nn.Module:
    X, y = make_classification(64, 2, seed=0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))
    loader_seed = int(torch.empty((), dtype=torch.int64).random_()) if not seed_loader_from_clock \
        else int.from_bytes(np.random.default_rng().bytes(4), "little")  # planted: unseeded source
    loader = make_loader(X, y, batch_size=8, seed=loader_seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    return model


def test_check_reproducible_passes_with_seeded_training():
    model = C.check_reproducible(_fit_once, seed=7)
    assert isinstance(model, nn.Module)


def test_check_reproducible_catches_unseeded_randomness():
    with pytest.raises(ModelCheckError, match=r"two runs with seed 7 differ by up to .*\n  Where: tensor `0.weight`"):
        C.check_reproducible(lambda: _fit_once(seed_loader_from_clock=True), seed=7)


def test_check_reproducible_compares_tensors_and_mappings():
    C.check_reproducible(lambda: {"w": torch.rand(3)}, seed=1)
    counter = iter(range(10))
    with pytest.raises(ModelCheckError, match="tensor `output`"):
        C.check_reproducible(lambda: torch.tensor([float(next(counter))]), seed=1)
    with pytest.raises(TypeError, match="Expected `train_fn's result` to be an nn.Module"):
        C.check_reproducible(lambda: "model", seed=1)


# ---------------------------------------------------------------- assert_finite


def test_assert_finite_passes_on_a_healthy_model():
    model = mlp()
    C.assert_finite(model, torch.randn(4, 3))
    C.assert_finite(torch.ones(3), name="weights")
    assert no_hooks(model)


def test_assert_finite_names_the_parameter_with_a_planted_nan():
    model = mlp()
    with torch.no_grad():
        model[2].weight[1, 5] = float("nan")
    with pytest.raises(ModelCheckError, match=r"parameter `2.weight` holds 1 NaN and 0 Inf among 32 values; "
                                               r"the first at index \(1, 5\)"):
        C.assert_finite(model)


def test_assert_finite_names_the_first_layer_output_with_inf():
    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    model = nn.Sequential(nn.Linear(3, 4), Exp(), nn.Linear(4, 1))
    with torch.no_grad():
        model[0].bias.fill_(1000.0)  # exp overflows to Inf
    x = torch.randn(2, 3)
    with pytest.raises(ModelCheckError, match=r"output of layer `1` \(Exp\) holds 0 NaN and 8 Inf"):
        C.assert_finite(model, x)
    assert no_hooks(model)  # removed after a failure too


def test_assert_finite_checks_gradients_and_tensors_and_inputs():
    model = mlp()
    model(torch.randn(2, 3)).sum().backward()
    model[0].bias.grad[0] = float("inf")
    with pytest.raises(ModelCheckError, match="gradient of `0.bias` holds 0 NaN and 1 Inf"):
        C.assert_finite(model)
    with pytest.raises(ModelCheckError, match="`activations` holds 1 NaN"):
        C.assert_finite(torch.tensor([0.0, float("nan")]), name="activations")
    with pytest.raises(ModelCheckError, match="the input holds"):
        C.assert_finite(mlp(), torch.tensor([[float("nan"), 0.0, 0.0]]))


# ---------------------------------------------------------------- alive


def test_alive_fraction_matches_a_manual_count():
    torch.manual_seed(0)
    model = mlp()
    x = torch.randn(32, 3)
    fractions = C.alive_fraction(model, x)
    assert list(fractions) == ["0", "1", "2"]
    expected = float((model[1](model[0](x)) != 0).any(dim=0).float().mean())  # units on for some input
    assert fractions["1"] == pytest.approx(expected)
    assert C.alive_fraction(model, x, layer_types=nn.ReLU) == {"1": pytest.approx(expected)}
    assert no_hooks(model)


def test_assert_alive_names_a_dead_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(64, 3)
    with torch.no_grad():
        model[0].bias.fill_(2.0)
        model[2].bias.fill_(2.0)
    assert C.assert_alive(model, x)["3"] > 0.5
    with torch.no_grad():
        model[2].bias.fill_(-50.0)  # planted: the second ReLU layer dies
    with pytest.raises(ModelCheckError, match=r"1 layer\(s\) have at most 50% non-zero outputs: `3` 0%"):
        C.assert_alive(model, x)
    with pytest.raises(ValueError, match=r"Expected `min_fraction` to be a float in \[0, 1\)"):
        C.assert_alive(model, x, min_fraction=1.0)
    with pytest.raises(TypeError, match="Expected `layer_types` to be a type or a tuple of types"):
        C.alive_fraction(model, x, layer_types="relu")


def test_alive_fraction_per_value_counts_every_output_value():
    torch.manual_seed(0)
    model = mlp()
    x = torch.randn(32, 3)
    relu_out = model[1](model[0](x))
    by_value = C.alive_fraction(model, x, layer_types=nn.ReLU, per="value")
    assert by_value == {"1": pytest.approx(float((relu_out != 0).float().mean()))}  # over (N, units)
    # A unit that is on for some inputs counts fully per unit, but only for its share per value.
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[:, 0] = 1.0
        model[0].bias.zero_()
    x = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [-3.0, 0.0, 0.0]])
    assert C.alive_fraction(model, x, layer_types=nn.ReLU) == {"1": 1.0}
    assert C.alive_fraction(model, x, layer_types=nn.ReLU, per="value") == {"1": 0.25}
    with pytest.raises(ModelCheckError, match=r"at most 50% non-zero output values: `1` 25%"):
        C.assert_alive(model, x, layer_types=nn.ReLU, per="value")
    assert C.assert_alive(model, x, layer_types=nn.ReLU, per="value", min_fraction=0.2) == {"1": 0.25}
    with pytest.raises(ValueError, match="Expected `per` to be 'unit' or 'value'"):
        C.alive_fraction(model, x, per="units")
    assert no_hooks(model)


# ---------------------------------------------------------------- skew


def test_psi_matches_the_formula():
    e, a = np.array([10, 30, 60]), np.array([20, 30, 50])
    ep, ap = e / e.sum(), a / a.sum()
    assert C.population_stability_index(e, a) == pytest.approx(np.sum((ap - ep) * np.log(ap / ep)))
    with pytest.raises(ValueError, match="Expected `expected/actual` to be two non-negative histograms"):
        C.population_stability_index([1, 2], [1, 2, 3])


def _frames(seed: int = 0, n: int = 3000):
    g = np.random.default_rng(seed)
    def draw(size):
        return pd.DataFrame({
            "income": g.lognormal(10, 0.5, size),
            "age": g.normal(40, 12, size),
            "plan": g.choice(["basic", "plus", "pro"], size, p=[0.6, 0.3, 0.1]),
        })
    return draw(n), draw(n // 3)


def test_skew_passes_when_serving_matches_training():
    train, serving = _frames()
    report = C.training_serving_skew(train, serving)
    assert report.ok and report.skewed == []
    report.check()
    assert (report.table["psi"] < 0.1).all()


def test_skew_ks_needs_significance_in_small_samples():
    g = np.random.default_rng(3)
    report = C.training_serving_skew({"a": g.normal(size=400)}, {"a": g.normal(size=30)}, psi_threshold=10.0)
    assert report.table.loc["a", "distance"] > 0.1 and report.table.loc["a", "p_value"] > 0.01
    assert report.ok  # a large KS gap from 30 rows is not evidence of skew


def test_skew_ks_distance_agrees_with_scipy_and_an_ecdf():
    train, serving = _frames()
    report = C.training_serving_skew(train, serving)
    ref = ks_2samp(train["age"], serving["age"])
    assert report.table.loc["age", "distance"] == pytest.approx(ref.statistic)
    grid = np.sort(np.concatenate([train["age"], serving["age"]]))
    ecdf = lambda v: np.searchsorted(np.sort(v), grid, side="right") / len(v)  # noqa: E731
    assert ref.statistic == pytest.approx(np.abs(ecdf(train["age"]) - ecdf(serving["age"])).max())


def test_skew_catches_a_planted_serving_transform_bug():
    train, serving = _frames()
    serving["income"] = serving["income"] / 1000  # planted: serving sends thousands
    report = C.training_serving_skew(train, serving)
    assert report.skewed == ["income"]
    assert report.table.loc["income", "psi"] > 0.2
    with pytest.raises(ModelCheckError, match=r"1 feature\(s\) differ.*`income`: PSI .* > 0.2; KS distance"):
        report.check()


def test_skew_schema_checks():
    train, serving = _frames()
    serving = serving.drop(columns="age").assign(
        plan=serving["plan"].str.upper(), promo=1.0)
    table = C.training_serving_skew(train, serving).table
    assert table.loc["age", "schema"] == "presence: missing in serving"
    assert table.loc["promo", "schema"] == "presence: missing in training"
    assert table.loc["plan", "schema"].startswith("domain: 100.0% of serving values never seen")
    train2, serving2 = _frames()
    serving2["age"] = serving2["age"].astype(str)
    assert C.training_serving_skew(train2, serving2).table.loc["age", "schema"].startswith("type:")
    serving3 = _frames()[1]
    serving3.loc[: len(serving3) // 5, "age"] = np.nan
    assert "missing values" in C.training_serving_skew(train2, serving3).table.loc["age", "schema"]


def test_skew_categorical_shift_and_tensor_input():
    train, serving = _frames()
    serving["plan"] = np.where(np.arange(len(serving)) % 2 == 0, "pro", serving["plan"])
    report = C.training_serving_skew(train, serving)
    assert report.skewed == ["plan"] and "L-inf distance" in report.table.loc["plan", "reason"]
    X = torch.randn(500, 2)
    report = C.training_serving_skew(X, X * torch.tensor([1.0, 3.0]), feature_names=["a", "b"])
    assert report.skewed == ["b"]
    with pytest.raises(ValueError, match="Expected `feature_names` to be 2 names"):
        C.training_serving_skew(X, X, feature_names=["a"])
    with pytest.raises(ValueError, match=r"Expected `psi_threshold` to be a float > 0"):
        C.training_serving_skew(X, X, psi_threshold=0)


# ---------------------------------------------------------------- model age

UTC = timezone.utc


def _card() -> C.ModelCard:
    return C.ModelCard("churn", datetime(2024, 3, 2, tzinfo=UTC), datetime(2023, 3, 1, tzinfo=UTC),
                       datetime(2024, 3, 1, tzinfo=UTC), {"auc": 0.91})


def test_model_card_round_trips_through_a_checkpoint(tmp_path):
    from companion.checkpoint import load_checkpoint, save_checkpoint

    model = nn.Linear(2, 1)
    save_checkpoint(tmp_path / "m.pt", model, extra={"card": _card().to_dict()})
    extra = load_checkpoint(tmp_path / "m.pt", nn.Linear(2, 1))["extra"]
    assert C.ModelCard.from_dict(extra["card"]) == _card()


def test_model_age_fresh_and_stale():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        age = C.model_age(_card(), now=datetime(2024, 3, 11, tzinfo=UTC))
    assert age.since_data == timedelta(days=10) and age.since_training == timedelta(days=9)
    assert not age.stale
    with pytest.warns(C.StaleModelWarning, match=r"model `churn` is stale: .* 45 days old, more than the allowed 30"):
        age = C.model_age(_card(), now=datetime(2024, 4, 15, tzinfo=UTC))
    assert age.stale


def test_model_card_validation():
    with pytest.raises(ValueError, match="Expected `trained_at` to be a timezone-aware datetime"):
        C.ModelCard("m", datetime(2024, 1, 1), datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 2, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="Expected `trained_at` to be on or after data_end"):
        C.ModelCard("m", datetime(2023, 1, 5, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC),
                    datetime(2023, 2, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="Expected `max_age` to be a positive timedelta"):
        C.model_age(_card(), max_age=timedelta(0))
    with pytest.raises(ValueError, match="Expected `now` to be on or after trained_at"):
        C.model_age(_card(), now=datetime(2024, 1, 1, tzinfo=UTC))


# ---------------------------------------------------------------- quality gate


def test_quality_gate_builds_on_compare_models():
    from companion.evaluation import compare_models

    X = torch.linspace(-2, 2, 40).unsqueeze(1)
    y = (X[:, 0] > 0).long()
    good, weak = (lambda x: x[:, 0]), (lambda x: x[:, 0] - 1.0)
    result = C.quality_gate(good, weak, (X, y), metric="accuracy", min_gain=0.05)
    assert result == compare_models(good, weak, (X, y), metric="accuracy", min_gain=0.05)
    with pytest.raises(ModelCheckError, match=r"quality_gate failed: keep the current model.*\n  Where: candidate"):
        C.quality_gate(weak, good, (X, y), metric="accuracy")
    with pytest.raises(ModelCheckError, match=r"accuracy 1 misses the floor 1.01"):
        C.quality_gate(good, weak, (X, y), metric="accuracy", min_score=1.01)


# ---------------------------------------------------------------- export


def test_export_roundtrip_passes_for_a_healthy_model(tmp_path):
    model = mlp().train()
    x = torch.randn(6, 3)
    served = C.check_export_roundtrip(model, x, path=tmp_path / "m.pt2")
    assert (tmp_path / "m.pt2").is_file() and model.training
    assert torch.allclose(served(x[:4]), model.eval()(x[:4]), atol=1e-6)


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x) if x.sum() > 0 else -self.linear(x)


class FixedBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x).reshape(6)  # planted: batch size hard-coded


class Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        out = self.linear(x)
        return out + 0.1 * torch.randn_like(out)  # planted: randomness at inference


@pytest.mark.parametrize(
    "model, pattern",
    [(DataDependent(), "torch.export could not capture the model"),
     (FixedBatch(), r"torch.export could not capture|fails on a batch of one row"),
     (Noisy(), r"differs from the original's by up to")],
)
def test_export_roundtrip_catches_infrastructure_incompatibility(model, pattern):
    with pytest.raises(ModelCheckError, match=pattern):
        C.check_export_roundtrip(model, torch.randn(6, 3))


def test_export_roundtrip_validates_input():
    with pytest.raises(ValueError, match="Expected `example_input` to be a batch of at least 2 rows"):
        C.check_export_roundtrip(mlp(), torch.randn(1, 3))


# ---------------------------------------------------------------- live quality


def test_monitor_live_quality_flags_windows_after_drift():
    accuracy = lambda t, p: float((t == p).float().mean())  # noqa: E731
    y = torch.zeros(100, dtype=torch.long)
    pred = torch.cat([torch.zeros(60, dtype=torch.long), torch.ones(40, dtype=torch.long)])
    table = C.monitor_live_quality(y, pred, metric=accuracy, window=20, min_value=0.8)
    assert table["alert"].tolist() == [False, False, False, True, True]
    assert table["value"].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"Expected `window` to be an int in \[1, 100\]"):
        C.monitor_live_quality(y, pred, metric=accuracy, window=0, min_value=0.8)


def test_plots_of_checks_draw():
    from companion.plots import plot_correlation_matrix, plot_live_quality

    ax = plot_correlation_matrix(torch.corrcoef(torch.randn(3, 50)), names=["a", "b", "c"])
    assert len(ax.texts) == 9
    table = pd.DataFrame({"start": [0, 10], "value": [0.9, 0.4], "alert": [False, True]})
    ax = plot_live_quality(table, min_value=0.5)
    assert len(ax.collections[0].get_offsets()) == 1  # one alert marked
