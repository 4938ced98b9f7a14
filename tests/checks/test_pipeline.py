"""Tests for companion.checks.pipeline: each check passes on a healthy pipeline and fails,
with its message, on a planted fault."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from torch import nn

from companion.checks import (
    ModelCheckError,
    check_learns_leaked_label,
    check_overfits_small_batch,
    check_reproducible,
    check_training_step,
)
from companion.data import make_gaussian_blobs, make_loader, make_regression
from companion.utils import seed_everything


def mlp(in_features: int = 3, out_features: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, out_features))


# ---------------------------------------------------------------- check_training_step


def test_training_step_passes_and_leaves_model_untouched():
    torch.manual_seed(0)
    model = mlp()
    before = [p.clone() for p in model.parameters()]
    loss = check_training_step(model, nn.CrossEntropyLoss(), torch.randn(8, 3), torch.randint(0, 2, (8,)))
    assert loss > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_training_step_names_the_failing_stage():
    model = mlp()
    with pytest.raises(ModelCheckError, match=r"forward pass raised.*\n  Where: .*\(8, 5\)"):
        check_training_step(model, nn.CrossEntropyLoss(), torch.randn(8, 5), torch.randint(0, 2, (8,)))
    with pytest.raises(ModelCheckError, match="the loss raised"):
        check_training_step(model, nn.CrossEntropyLoss(), torch.randn(8, 3), torch.randn(8, 3, 3))
    with pytest.raises(ModelCheckError, match="not a scalar"):
        check_training_step(model, nn.MSELoss(reduction="none"), torch.randn(8, 3), torch.randn(8, 2))


class Detached(nn.Module):
    """Planted bug: the first layer's output leaves the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(3, 4), nn.Linear(4, 1)

    def forward(self, x):
        return self.second(self.first(x).detach())


def test_training_step_finds_parameters_without_gradient():
    with pytest.raises(ModelCheckError, match=r"no gradient.*\n  Where: parameters \['first.weight', 'first.bias'\]"):
        check_training_step(Detached(), nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1))


def test_training_step_finds_zero_gradients_of_a_dead_layer():
    model = mlp(out_features=1)
    with torch.no_grad():
        model[0].bias.fill_(-100.0)
    with pytest.raises(ModelCheckError, match=r"gradient of zero everywhere\n  Where: parameters \['0.weight', '0.bias', '2.weight'\]"):
        check_training_step(model, nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1))


def test_training_step_rejects_non_finite_loss_and_bad_arguments():
    model = mlp(out_features=1)
    with pytest.raises(ModelCheckError, match="the loss is nan"):
        check_training_step(model, nn.MSELoss(), torch.randn(8, 3), torch.full((8, 1), float("nan")))
    with pytest.raises(ValueError, match=r"Expected `lr` to be a float > 0, but got 0.0\."):
        check_training_step(model, nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1), lr=0.0)
    with pytest.raises(TypeError, match="Expected `model` to be a torch.nn.Module"):
        check_training_step("model", nn.MSELoss(), torch.randn(8, 3), torch.randn(8, 1))


# ---------------------------------------------------------------- check_overfits_small_batch


def test_overfits_small_batch_reaches_tiny_loss_with_plain_gradient_descent():
    seed_everything(0)
    x = torch.randn(10, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()  # not linearly separable
    final = check_overfits_small_batch(mlp(2, 2), x, y, steps=300, lr=0.5, max_loss=0.05)
    assert final < 0.05


def test_overfits_small_batch_fails_when_labels_are_scrambled_by_a_bug():
    seed_everything(0)
    x = torch.randn(10, 2)
    y = (x[:, 0] > 0).long()
    linear = nn.Linear(2, 2)
    final = check_overfits_small_batch(linear, x, y, steps=300, lr=0.5)
    assert final < 0.1
    scrambled = torch.tensor([0, 1] * 5)  # planted bug: labels no longer belong to their rows
    with pytest.raises(ModelCheckError, match=r"loss on 10 examples is .* \(must be <= 0.05\)"):
        check_overfits_small_batch(nn.Linear(2, 2), torch.ones(10, 2), scrambled, steps=100, lr=0.5,
                              max_loss=0.05)


def test_overfits_small_batch_reports_divergence():
    x, y = torch.randn(10, 2) * 100, torch.randn(10, 1) * 100
    with pytest.raises(ModelCheckError, match=r"loss became (inf|nan) at step \d+"):
        check_overfits_small_batch(nn.Linear(2, 1), x, y, steps=200, lr=10.0)


def test_overfits_small_batch_uses_plain_sgd_like_a_manual_loop():
    seed_everything(1)
    x, y = torch.randn(10, 3), torch.randn(10, 1)
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    check_overfits_small_batch(a, x, y, steps=5, lr=0.1)
    for _ in range(5):  # the reference: w <- w - lr * grad
        b.zero_grad()
        nn.functional.mse_loss(b(x), y).backward()
        with torch.no_grad():
            for p in b.parameters():
                p -= 0.1 * p.grad
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


# ---------------------------------------------------------------- check_learns_leaked_label


def _train(shuffle_bug: bool = False, num_classes: int = 3):
    def train(X, y):
        if shuffle_bug:  # planted pipeline bug: labels shuffled apart from their rows
            y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
        model = nn.Linear(X.shape[1], num_classes)
        check_overfits_small_batch(model, X, y, steps=300, lr=0.5)
        return model
    return train


def test_learns_leaked_label_passes_on_a_working_pipeline():
    X, y = make_gaussian_blobs(200, 5, 3, class_sep=0.1, seed=0)
    assert check_learns_leaked_label(_train(), X, y, num_classes=3) >= 0.99


def test_learns_leaked_label_catches_a_pipeline_bug():
    X, y = make_gaussian_blobs(200, 5, 3, class_sep=0.1, seed=0)
    with pytest.raises(ModelCheckError, match=r"only reached accuracy 0\.\d+ .*bug.*\n  Where: train_fn on 8 columns, the last 3"):
        check_learns_leaked_label(_train(shuffle_bug=True), X, y, num_classes=3)


def test_learns_leaked_label_takes_the_class_count_from_the_argument_not_the_batch():
    # A batch of a 3-class problem without class 2: the leaked one-hot block must still have 3
    # columns, the width the pipeline builds its model for (y.max() + 1 gave 2).
    X, y = make_gaussian_blobs(300, 5, 3, seed=0)
    X, y = X[y < 2], y[y < 2]
    widths = []

    def train(X_leaky, y):
        widths.append(X_leaky.shape[1])
        return _train(num_classes=3)(X_leaky, y)

    assert check_learns_leaked_label(train, X, y, num_classes=3) == 1.0
    assert widths == [5 + 3]


def test_learns_leaked_label_validates_the_class_count():
    X, y = make_gaussian_blobs(30, 2, 3, seed=0)
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be the number of classes \(an int >= 2\)"):
        check_learns_leaked_label(_train(), X, y)
    with pytest.raises(ValueError, match=r"Expected `y` to be class labels in \[0, 1\].*found labels from 0 to 2"):
        check_learns_leaked_label(_train(), X, y, num_classes=2)
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be None for real-valued targets"):
        check_learns_leaked_label(_train(), X, y.float(), num_classes=3)


def test_learns_leaked_label_regression_uses_r2():
    X, y = make_regression(100, 3, noise=5.0, seed=0)

    def train(X, y):
        model = nn.Linear(X.shape[1], 1)
        check_overfits_small_batch(model, X, y.unsqueeze(1), steps=300, lr=0.01)
        return lambda inputs: model(inputs).squeeze(1)

    assert check_learns_leaked_label(train, X, y) > 0.99
    with pytest.raises(ValueError, match=r"Expected `min_score` to be a float in \(0, 1\]"):
        check_learns_leaked_label(train, X, y, min_score=1.5)


def test_learns_leaked_label_r2_matches_scikit_learn():
    X, y = make_regression(100, 3, noise=5.0, seed=0)
    targets = torch.stack([y, 2 * y + 1], dim=1)  # two outputs of different variance

    def imperfect(X_leaky, y):  # copies the leaked columns with an error
        return lambda inputs: 0.9 * inputs[:, -2:] + 0.5

    output = 0.9 * targets + 0.5
    expected = r2_score(targets.numpy(), output.numpy(), multioutput="variance_weighted")
    assert check_learns_leaked_label(imperfect, X, targets, min_score=0.5) == pytest.approx(expected)
    with pytest.raises(ModelCheckError, match=r"only reached R² 0\.\d+ \(must be >= 0.999\)"):
        check_learns_leaked_label(imperfect, X, targets, min_score=0.999)


# ---------------------------------------------------------------- check_reproducible


def _fit_once(seed_loader_from_clock: bool = False) -> nn.Module:
    X, y = make_gaussian_blobs(64, 2, seed=0)
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
    model = check_reproducible(_fit_once, seed=7)
    assert isinstance(model, nn.Module)


def test_check_reproducible_catches_unseeded_randomness():
    with pytest.raises(ModelCheckError, match=r"two runs with seed 7 differ by up to .*\n  Where: tensor `0.weight`"):
        check_reproducible(lambda: _fit_once(seed_loader_from_clock=True), seed=7)


def test_check_reproducible_compares_tensors_and_mappings():
    check_reproducible(lambda: {"w": torch.rand(3)}, seed=1)
    counter = iter(range(10))
    with pytest.raises(ModelCheckError, match="tensor `output`"):
        check_reproducible(lambda: torch.tensor([float(next(counter))]), seed=1)
    with pytest.raises(TypeError, match="Expected `train_fn's result` to be an nn.Module"):
        check_reproducible(lambda: "model", seed=1)
