"""save_checkpoint / load_checkpoint: round trip, atomic writes, clear errors."""

import os

import pytest
import torch

from companion.checkpoint import load_checkpoint, save_checkpoint


def test_checkpoint_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "ck" / "model.pt", model, opt, epoch=7, extra={"note": "x"})
    clone = torch.nn.Linear(3, 2)
    clone_opt = torch.optim.Adam(clone.parameters(), lr=0.01)
    info = load_checkpoint(path, clone, clone_opt)
    assert info == {"epoch": 7, "extra": {"note": "x"}}
    assert torch.equal(clone.weight, model.weight)
    assert clone_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert os.listdir(tmp_path / "ck") == ["model.pt"]  # no temporary file left


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 1)
    path = save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_load_checkpoint_errors(tmp_path):
    model = torch.nn.Linear(2, 1)
    with pytest.raises(FileNotFoundError, match="existing checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt", model)
    path = save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ValueError, match="saved without optimizer state"):
        load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
