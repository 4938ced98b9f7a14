"""Tests for companion.models.networks: layer structure, shapes, bad input, and one
output-width name across every model of companion.models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import make_gaussian_blobs, make_loader
from companion.models import (
    MLP,
    CategoryEmbeddingModel,
    MultiLabelClassifier,
    SmallCNN,
    SoftmaxClassifier,
)
from companion.training import fit


# ---------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_mlp_layers_in_order(activation):
    model = MLP(5, (8, 4), 3, activation=activation, batch_norm=True, dropout=0.2)
    kinds = [type(m).__name__ for m in model.layers]
    act = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}[activation]
    assert kinds == ["Linear", "BatchNorm1d", act, "Dropout"] * 2 + ["Linear"]
    assert model.output_layer is model.layers[-1]
    assert model.output_layer.out_features == 3
    assert model(torch.randn(6, 5)).shape == (6, 3)
    assert model.body(torch.randn(6, 5)).shape == (6, 4)


def test_mlp_without_hidden_is_linear_and_flattens_images():
    model = MLP(12, (), 2)
    assert len(model.layers) == 1 and isinstance(model.layers[0], nn.Linear)
    x = torch.randn(3, 3, 2, 2)
    torch.testing.assert_close(model(x), model.output_layer(x.reshape(3, 12)))


def test_mlp_hooks_see_every_linear_layer():
    model = MLP(4, (8, 8), 2)
    seen = []
    handles = [
        m.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
        for m in model.layers
        if isinstance(m, nn.Linear)
    ]
    model(torch.randn(2, 4))
    for h in handles:
        h.remove()
    assert seen == [8, 8, 2]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0}, ValueError, r"Expected `in_features` to be an int >= 1, but got 0\."),
        ({"out_features": 0}, ValueError, r"Expected `out_features` to be an int >= 1, but got 0\."),
        ({"out_features": 2.0}, TypeError, r"Expected `out_features` to be an int >= 1, but got 2.0\."),
        ({"hidden": 8}, TypeError, r"Expected `hidden` to be a sequence of ints >= 1"),
        ({"hidden": "88"}, TypeError, r"Expected `hidden` to be a sequence of ints >= 1"),
        ({"hidden": (8, 0)}, ValueError, r"Expected `hidden\[1\]` to be an int >= 1, but got 0\."),
        ({"activation": "gelu"}, ValueError, r"Expected `activation` to be one of \('relu'"),
        ({"dropout": 1.0}, ValueError, r"Expected `dropout` to be a float in \[0, 1\)"),
        ({"dropout": -0.1}, ValueError, r"Expected `dropout` to be a float in \[0, 1\)"),
        ({"batch_norm": 1}, TypeError, r"Expected `batch_norm` to be a bool, but got 1\."),
    ],
)
def test_mlp_bad_input(kwargs, error, match):
    args = {"in_features": 4, "hidden": (8,), "out_features": 2} | kwargs
    extra = {k: args.pop(k) for k in ("activation", "batch_norm", "dropout") if k in args}
    with pytest.raises(error, match=match):
        MLP(args["in_features"], args["hidden"], args["out_features"], **extra)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.randn(3, 5), ValueError, r"Expected `x` to be a tensor of shape \(N, 4\)"),
        (torch.randn(4), ValueError, r"Expected `x` to be a tensor of shape \(N, 4\)"),
        (torch.ones(3, 4, dtype=torch.long), TypeError, r"Expected `x` to be a floating-point tensor"),
        ([[0.0] * 4], TypeError, r"Expected `x` to be a torch.Tensor"),
    ],
)
def test_mlp_forward_bad_input(x, error, match):
    """Misuse raises ValueError/TypeError in the template, not torch's RuntimeError."""
    model = MLP(4, (8,), 2)
    with pytest.raises(error, match=match):
        model(x)
    with pytest.raises(error, match=match):
        model.body(x)


def test_mlp_takes_an_empty_batch():
    assert MLP(4, (8,), 2)(torch.randn(0, 4)).shape == (0, 2)


def test_mlp_exports_with_a_dynamic_batch():
    model = MLP(4, (8,), 3).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (torch.randn(2, 4),), dynamic_shapes=({0: batch},))
    x = torch.randn(5, 4)
    torch.testing.assert_close(program.module()(x), model(x))


def test_mlp_trains_with_fit():
    torch.manual_seed(0)
    X, y = make_gaussian_blobs(128, 4, n_classes=3, seed=0)
    model = MLP(4, (16,), 3)
    history = fit(
        model,
        make_loader(X, y, batch_size=64, seed=0),
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        epochs=20,
        progress=False,
        device="cpu",
    )
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]


# ---------------------------------------------------------------------------- SmallCNN
def test_small_cnn_features_and_head():
    model = SmallCNN(3, 4, channels=(4, 8), batch_norm=True, dropout=0.1)
    x = torch.rand(2, 3, 16, 16)
    assert model.features(x).shape == (2, 8)
    assert isinstance(model.head, nn.Linear) and model.head.in_features == 8
    assert model(x).shape == (2, 4)
    assert model(torch.rand(2, 3, 8, 12)).shape == (2, 4)  # any size >= 4 a side


def test_small_cnn_bad_input():
    model = SmallCNN(1, 3, channels=(4, 8))
    with pytest.raises(ValueError, match=r"Expected `x` to be images of shape \(N, 1, H, W\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"with H, W >= 4"):
        model(torch.rand(2, 1, 2, 8))
    with pytest.raises(ValueError, match=r"Expected `x` to be a tensor with 4 dimensions"):
        model(torch.rand(2, 64))
    with pytest.raises(TypeError, match=r"Expected `x` to be a floating-point tensor"):
        model(torch.ones(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"Expected `channels` to be a non-empty sequence"):
        SmallCNN(1, 3, channels=())
    with pytest.raises(ValueError, match=r"Expected `out_features` to be an int >= 1, but got 0\."):
        SmallCNN(1, 0)
    with pytest.raises(ValueError, match=r"Expected `activation` to be one of"):
        SmallCNN(1, 3, activation="elu")
    with pytest.raises(TypeError, match=r"Expected `batch_norm` to be a bool"):
        SmallCNN(1, 3, batch_norm="yes")
    with pytest.raises(TypeError, match=r"Expected `channels\[0\]` to be an int >= 1"):
        SmallCNN(1, 3, channels=(4.0,))


# ---------------------------------------------------------------------------- one output-width name
@pytest.mark.parametrize(
    ("make", "x"),
    [
        (lambda: MLP(4, (8,), 3), torch.randn(2, 4)),
        (lambda: SmallCNN(1, 3, channels=(4,)), torch.randn(2, 1, 4, 4)),
        (lambda: SoftmaxClassifier(4, 3), torch.randn(2, 4)),
        (lambda: MultiLabelClassifier(4, 3), torch.randn(2, 4)),
        (lambda: CategoryEmbeddingModel(10, 3), torch.tensor([0, 9])),
    ],
)
def test_every_model_names_its_output_width_out_features(make, x):
    model = make()
    assert model.out_features == 3 == model(x).shape[1]
    assert not hasattr(model, "num_classes") and not hasattr(model, "num_labels")
    with pytest.raises(TypeError):  # the old keywords are gone
        type(model)(4, num_classes=3)
