"""Tests for companion.adapt: linear probe, LoRA through peft, full fine-tuning, and their costs."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import PeftModel
from torch import nn

from companion.adapt import (
    add_lora,
    full_finetune,
    linear_probe,
    parameter_counts,
    trainable_parameters,
    training_state_bytes,
)
from companion.data import make_loader
from companion.models.tiny_transformer import SequenceClassifier, TinyTransformer
from companion.training import fit


def _classifier(seed: int = 0) -> SequenceClassifier:
    torch.manual_seed(seed)
    encoder = TinyTransformer(12, max_length=6, d_model=16, n_heads=2, n_layers=2, d_ff=32)
    return SequenceClassifier(encoder, 3)


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    X = torch.randint(2, 12, (n, 6), generator=g)
    return X, (X[:, 0] % 3)  # the class is a function of the first token


def _train(model: nn.Module, *, lr: float = 1e-2, epochs: int = 3) -> torch.optim.Optimizer:
    X, y = _data()
    optimizer = torch.optim.Adam(trainable_parameters(model), lr=lr)
    fit(model, make_loader(X, y, batch_size=16), loss_fn=nn.CrossEntropyLoss(), optimizer=optimizer,
        epochs=epochs, progress=False, device="cpu")
    return optimizer


def test_lora_starts_as_the_base_model_and_trains_only_adapters_and_head():
    base = _classifier()
    X, _ = _data(8)
    with torch.no_grad():
        expected = base(X)
    lora = add_lora(base, rank=2, target_modules=["query", "value"], alpha=4)
    assert isinstance(lora, PeftModel)
    with torch.no_grad():
        torch.testing.assert_close(lora(X), expected, rtol=0, atol=0)  # B = 0: the update starts at exactly 0
    trainable = [name for name, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or "modules_to_save" in name for name in trainable), trainable
    # 2 blocks x (query, value), each rank * (in + out), plus the head (16 * 3 + 3)
    assert parameter_counts(lora)["trainable"] == 2 * 2 * 2 * (16 + 16) + 16 * 3 + 3
    trainable_count, total = lora.get_nb_trainable_parameters()  # peft's own count as the oracle
    assert parameter_counts(lora)["trainable"] == trainable_count
    assert parameter_counts(lora)["total"] == total


def test_lora_training_leaves_every_base_weight_bit_identical():
    model = _classifier()
    lora = add_lora(model, rank=2, target_modules=["query", "value"])
    frozen = {name: p.detach().clone() for name, p in lora.named_parameters() if not p.requires_grad}
    adapters = {name: p.detach().clone() for name, p in lora.named_parameters() if p.requires_grad}
    _train(lora)
    for name, p in lora.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
        else:
            assert not torch.equal(p, adapters[name]), f"{name} did not train"
    with lora.disable_adapter(), torch.no_grad():  # without the adapters the encoder is the pretrained one
        original = _classifier()
        X, _ = _data(8)
        torch.testing.assert_close(model.encoder(X), original.encoder(X), rtol=0, atol=0)


def test_linear_probe_trains_only_the_head():
    model = linear_probe(_classifier(), head="head")
    assert {name for name, p in model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    encoder_before = copy.deepcopy(model.encoder.state_dict())
    head_before = copy.deepcopy(model.head.state_dict())
    _train(model)
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())
    assert not torch.equal(model.head.weight, head_before["weight"])
    assert parameter_counts(model)["trainable"] == 16 * 3 + 3


def test_full_finetune_trains_everything():
    model = full_finetune(linear_probe(_classifier()))
    counts = parameter_counts(model)
    assert counts["trainable"] == counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["fraction"] == 1.0


def test_training_state_grows_with_what_is_trained():
    probe, full = linear_probe(_classifier()), full_finetune(_classifier())
    probe_state = training_state_bytes(probe, _train(probe, epochs=1))
    full_state = training_state_bytes(full, _train(full, epochs=1))
    n_probe, n_full = parameter_counts(probe)["trainable"], parameter_counts(full)["trainable"]
    n_params = sum(1 for _ in full.parameters())
    # Adam: two float32 moments per trained value, and one float32 step counter per trained tensor
    assert probe_state["optimizer"] == 2 * 4 * n_probe + 4 * 2
    assert full_state["optimizer"] == 2 * 4 * n_full + 4 * n_params
    assert probe_state["gradients"] == 4 * n_probe and full_state["gradients"] == 4 * n_full
    assert probe_state["weights"] == full_state["weights"] == 4 * parameter_counts(full)["total"]
    assert full_state["total"] == sum(v for k, v in full_state.items() if k != "total")


def test_lora_learns_what_the_probe_cannot():
    # The class depends on the first token, which mean pooling of a random encoder blurs; adapting
    # the attention lets the model reach it. Loose bounds: a smoke test, not a benchmark.
    X, y = _data()
    probe = linear_probe(_classifier())
    lora = add_lora(_classifier(), rank=4, target_modules=["query", "key", "value", "output"])
    _train(probe, epochs=30)
    _train(lora, epochs=30)
    with torch.no_grad():
        probe_acc = float((probe(X).argmax(1) == y).float().mean())
        lora_acc = float((lora(X).argmax(1) == y).float().mean())
    assert lora_acc > probe_acc


def test_bad_input():
    model = _classifier()
    with pytest.raises(ValueError, match=r"Expected `head` to be the name of a submodule of the model"):
        linear_probe(model, head="classifier")
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module, but got"):
        linear_probe("model")
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module"):
        full_finetune(None)
    with pytest.raises(ValueError, match=r"Expected `rank` to be an int >= 1, but got 0\."):
        add_lora(model, rank=0, target_modules=["query"])
    with pytest.raises(TypeError, match=r"Expected `target_modules` to be a non-empty list of layer names"):
        add_lora(model, rank=1, target_modules="query")
    with pytest.raises(TypeError, match=r"Expected `target_modules` to be a non-empty list of layer names"):
        add_lora(model, rank=1, target_modules=[])
    with pytest.raises(ValueError, match=r"Expected `target_modules` to be names of nn.Linear layers.*'query'"):
        add_lora(model, rank=1, target_modules=["in_proj"])
    with pytest.raises(ValueError, match=r"Expected `alpha` to be a float > 0, but got 0\."):
        add_lora(model, rank=1, target_modules=["query"], alpha=0)
    with pytest.raises(ValueError, match=r"Expected `dropout` to be a float in \[0, 1\), but got 1\.0\."):
        add_lora(model, rank=1, target_modules=["query"], dropout=1.0)
    with pytest.raises(ValueError, match=r"Expected `head` to be the name of a submodule"):
        add_lora(model, rank=1, target_modules=["query"], head="fc")
    lora = add_lora(_classifier(), rank=1, target_modules=["query"])
    with pytest.raises(TypeError, match=r"Expected `model` to be a model without adapters"):
        add_lora(lora, rank=1, target_modules=["query"])
    with pytest.raises(TypeError, match=r"Expected `optimizer` to be a torch.optim.Optimizer"):
        training_state_bytes(model, "adam")
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module"):
        parameter_counts([1, 2])
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module"):
        trainable_parameters(3)
