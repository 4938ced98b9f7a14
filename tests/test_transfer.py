"""Tests for companion.transfer: freezing, heads, the shipped backbone and torchvision loading
(offline, weights=None)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from torch import nn

import companion.transfer as transfer
from companion.data import make_loader, make_related_tasks
from companion.models import MLP
from companion.training import fit
from companion.transfer import (
    BACKBONE_FILE,
    count_trainable,
    freeze,
    load_pretrained_backbone,
    load_pretrained_model,
    new_head,
    pretrain_backbone,
    torchvision_backbone,
    unfreeze,
)


def test_freeze_unfreeze_and_count_trainable():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    total = sum(p.numel() for p in model.parameters())
    assert count_trainable(model) == total == 4 * 3 + 3 + 3 * 2 + 2
    assert freeze(model[0]) is model[0]
    assert count_trainable(model) == 3 * 2 + 2
    assert all(not p.requires_grad for p in model[0].parameters())
    unfreeze(model)
    assert count_trainable(model) == total


def test_frozen_weights_are_bit_identical_after_training_and_the_head_changes():
    X, y = make_related_tasks(128, task="target")
    backbone = freeze(load_pretrained_backbone())
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    head = new_head(32, 4)
    head_before = [p.clone() for p in head.parameters()]
    model = nn.Sequential(backbone, head)
    # even an optimizer over *all* parameters, with weight decay, leaves frozen ones alone
    fit(model, make_loader(X, y), loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1), epochs=3,
        progress=False, device="cpu")
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(not torch.equal(a, b) for a, b in zip(head_before, head.parameters()))


def test_new_head_is_linear_or_mlp():
    head = new_head(32, 4)
    assert isinstance(head, MLP) and count_trainable(head) == 32 * 4 + 4
    deeper = new_head(32, 4, hidden=(16,), dropout=0.2)
    assert count_trainable(deeper) == 32 * 16 + 16 + 16 * 4 + 4
    assert deeper(torch.zeros(3, 32)).shape == (3, 4)
    with pytest.raises(ValueError, match=r"Expected `out_features` to be an int >= 1, but got 0\."):
        new_head(32, 0)


def test_shipped_backbone_is_small_and_really_pretrained():
    from importlib import resources

    asset = resources.files("companion") / "assets" / BACKBONE_FILE
    assert asset.is_file() and len(asset.read_bytes()) < 2 * 1024**2
    model, info = load_pretrained_model()
    X, y = make_related_tasks(3000, task="source", seed=99)  # rows it never saw
    with torch.no_grad():
        accuracy = float((model(X).argmax(1) == y).float().mean())
    assert accuracy > 0.75  # chance is about 0.1 to 0.3 (the classes are unbalanced)
    assert accuracy == pytest.approx(info["source_accuracy"], abs=0.03)
    assert "source" in info["source_task"] and "target" in info["target_task"]
    backbone = load_pretrained_backbone()
    torch.testing.assert_close(backbone(X), model.body(X))
    assert backbone(X).shape == (3000, 32)


def test_pretrain_backbone_learns_the_source_task():
    model, accuracy = pretrain_backbone(n_samples=3000, epochs=3, device="cpu")
    assert accuracy > 0.5 and isinstance(model, MLP)
    with pytest.raises(ValueError, match=r"Expected `epochs` to be an int >= 1, but got 0\."):
        pretrain_backbone(epochs=0)


@pytest.mark.parametrize(("name", "width"), [("resnet18", 512), ("mobilenet_v3_small", 1024)])
def test_torchvision_backbone_offline(name, width):
    backbone, num_features = torchvision_backbone(name, weights=None)
    assert num_features == width
    backbone.eval()
    with torch.no_grad():
        features = backbone(torch.rand(2, 3, 64, 64))
    assert features.shape == (2, width)
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000 for m in backbone.modules())


def test_torchvision_backbone_bad_names():
    with pytest.raises(ValueError, match=r"Expected `name` to be a torchvision model name"):
        torchvision_backbone("resnet_nine_thousand")
    with pytest.raises(TypeError, match=r"Expected `name` to be a string, but got 18\."):
        torchvision_backbone(18)


def test_freeze_rejects_non_modules():
    for fn in (freeze, unfreeze, count_trainable):
        with pytest.raises(TypeError, match=r"Expected `module` to be a torch.nn.Module"):
            fn([torch.zeros(2)])


def test_main_rewrites_the_backbone_file_atomically(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(transfer, "__file__", str(tmp_path / "transfer.py"))  # write under tmp_path
    monkeypatch.setattr(transfer, "pretrain_backbone", lambda **settings: (MLP(32, (64, 32), 10), 0.5))
    path = transfer.main()
    assert path == tmp_path / "assets" / BACKBONE_FILE
    assert torch.load(path, weights_only=True)["info"]["source_accuracy"] == 0.5
    before = path.read_bytes()

    def save_that_dies_halfway(obj, file):  # like torch.save, takes a path or a file
        with open(file, "wb") if isinstance(file, Path) else nullcontext(file) as out:
            out.write(before[:100])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_that_dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        transfer.main()
    assert path.read_bytes() == before  # the old file, whole
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
