"""save_checkpoint / load_checkpoint: round trip, atomic writes, clear errors."""

import copy
import io
import os
import pickle
import stat
from collections import Counter, OrderedDict, defaultdict
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

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
    real_save = torch.save

    def crash(obj, f, *args, **kwargs):  # writes half a checkpoint where it was told to, then fails
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if isinstance(f, (str, os.PathLike)):
            Path(f).write_bytes(half)
        else:
            f.write(half)
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_checkpoint_rename_is_made_durable(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        events.append(("fsync", stat.S_ISDIR(info.st_mode), info.st_ino))
        real_fsync(fd)

    def replace(src, dst):
        real_replace(src, dst)
        events.append(("replace", Path(dst).name))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = save_checkpoint(tmp_path / "ck" / "m.pt", torch.nn.Linear(2, 1))
    renamed = events.index(("replace", "m.pt"))
    assert ("fsync", False) in [event[:2] for event in events[:renamed]]  # the file's data, before the rename
    assert ("fsync", True, path.parent.stat().st_ino) in events[renamed:]  # its folder, after the rename


REFUSED = {  # values torch.load(weights_only=True) refuses, with the key path save_checkpoint names
    "numpy scalar": ({"loss": np.float64(0.5)}, r"extra\['loss'\]", r"\.item\(\)"),
    "numpy array": ({"w": np.ones(2)}, r"extra\['w'\]", r"torch\.from_numpy"),
    "path": ({"data": Path("data.csv")}, r"extra\['data'\]", r"str\(x\)"),
    "datetime": ({"at": datetime(2024, 1, 1, tzinfo=timezone.utc)}, r"extra\['at'\]", r"isoformat"),
    "object": ({"x": object()}, r"extra\['x'\]", "convert it"),
    "nested": ({"run": {"losses": [0.5, np.float32(0.25)]}}, r"extra\['run'\]\['losses'\]\[1\]", r"\.item\(\)"),
    "in a tuple": ({"pair": (1, Path("x"))}, r"extra\['pair'\]\[1\]", r"str\(x\)"),
    "int enum": ({"status": HTTPStatus.OK}, r"extra\['status'\]", "convert it"),
    "defaultdict": ({"d": defaultdict(list)}, r"extra\['d'\]", "convert it"),
    "key": ({"d": {Path("k"): 1}}, r"extra\['d'\] \(a key\)", r"str\(x\)"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_save_refuses_extra_values_the_safe_load_would_refuse(tmp_path, case):
    extra, where, advice = REFUSED[case]
    buffer = io.BytesIO()
    torch.save(extra, buffer)
    with pytest.raises(pickle.UnpicklingError):  # the oracle: torch itself would refuse to load it
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    with pytest.raises(TypeError, match=f"Expected `{where}` to be a value torch.load.*{advice}"):
        save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 1), extra=extra)
    assert not list(tmp_path.iterdir())  # nothing written


def test_save_refuses_an_optimizer_state_the_safe_load_would_refuse(tmp_path):
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=np.float64(0.1))
    with pytest.raises(TypeError, match=r"`optimizer.state_dict\(\)\['param_groups'\]\[0\]\['lr'\]`"):
        save_checkpoint(tmp_path / "m.pt", model, optimizer)
    with pytest.raises(TypeError, match=r"`epoch` to be an int"):
        save_checkpoint(tmp_path / "m.pt", model, epoch=1.0)


ACCEPTED = {
    "scalars": {"none": None, "flag": True, "n": 3, "x": 0.5, "z": 1 + 2j, "s": "text", "b": b"raw"},
    "torch values": {"t": torch.arange(3), "dtype": torch.float16, "device": torch.device("cpu"),
                     "size": torch.Size([2, 3]), "p": nn.Parameter(torch.ones(2))},
    "containers": {"list": [1, (2.0, "3")], "dict": {1: "one", "two": {"deep": [None]}}, "set": {1, 2},
                   "ordered": OrderedDict(a=1), "counter": Counter("aab"), "bytes": bytearray(b"ab")},
    "numpy converted": {"loss": np.float64(0.5).item(), "w": torch.from_numpy(np.ones(2))},
}


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_save_accepts_what_the_safe_load_reads(tmp_path, case):
    path = save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 1), epoch=np.int64(4), extra=ACCEPTED[case])
    info = load_checkpoint(path, nn.Linear(2, 1))
    assert info["epoch"] == 4 and type(info["epoch"]) is int
    for key, value in ACCEPTED[case].items():
        loaded = info["extra"][key]
        assert type(loaded) is type(value)
        assert torch.equal(loaded, value) if isinstance(value, torch.Tensor) else loaded == value


def _net(hidden=4, out=2):
    return nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, out))


def _failing_loads(tmp_path):
    """(what is wrong, checkpoint path, model, optimizer, expected message) for loads that must fail."""
    torch.manual_seed(0)
    source = _net()
    no_optimizer = save_checkpoint(tmp_path / "no-opt.pt", source)
    one_group = save_checkpoint(tmp_path / "one-group.pt", source, torch.optim.SGD(source.parameters(), lr=0.1))
    torch.manual_seed(1)
    target = _net(out=5)  # the first layer matches, the last does not
    bigger = nn.Sequential(*_net(), nn.Linear(2, 2))
    plain, two_groups = _net(), _net()
    split = torch.optim.SGD([{"params": two_groups[0].parameters()}, {"params": two_groups[2].parameters()}],
                            lr=0.1, momentum=0.9)
    return {
        "shapes": (no_optimizer, target, None, r"2\.weight of shape \(2, 4\) in the checkpoint but \(5, 4\)"),
        "unexpected keys": (no_optimizer, nn.Sequential(nn.Linear(3, 4)), None, r"unexpected 2\.weight, 2\.bias"),
        "missing keys": (no_optimizer, bigger, None, r"missing 3\.weight, 3\.bias"),
        "no optimizer state": (no_optimizer, plain, torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9),
                               "saved without optimizer state"),
        "optimizer groups": (one_group, two_groups, split, r"parameter groups of sizes \[4\] in the checkpoint"),
    }


FAILING_LOADS = ["shapes", "unexpected keys", "missing keys", "no optimizer state", "optimizer groups"]


@pytest.mark.parametrize("case", FAILING_LOADS)
def test_failed_load_leaves_model_and_optimizer_untouched(tmp_path, case):
    path, model, optimizer, expected = _failing_loads(tmp_path)[case]
    if optimizer is not None:  # give the optimizer some state (momentum buffers) to keep
        model(torch.randn(2, 3)).sum().backward()
        optimizer.step()
        assert optimizer.state_dict()["state"]
    weights = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
    with pytest.raises(ValueError, match=expected):
        load_checkpoint(path, model, optimizer)
    after = model.state_dict()
    assert list(after) == list(weights)
    assert all(torch.equal(after[key], weights[key]) for key in weights)  # bit-identical
    if optimizer is not None:
        assert repr(optimizer.state_dict()) == repr(optimizer_state)


def _write_foreign(kind, path):
    good = io.BytesIO()
    torch.save({"model": nn.Linear(2, 1).state_dict(), "optimizer": None, "epoch": 1, "extra": {}}, good)
    data = good.getvalue()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(512))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain tensor":
        torch.save(torch.ones(3), path)
    elif kind == "other dict":
        torch.save({"state_dict": nn.Linear(2, 1).state_dict()}, path)
    elif kind == "our keys, wrong values":
        torch.save({"model": torch.ones(2), "optimizer": None, "epoch": "one", "extra": {}}, path)
    elif kind == "disallowed global":
        torch.save({"model": nn.Linear(2, 1).state_dict(), "optimizer": None, "epoch": 1,
                    "extra": {"data": Path("x")}}, path)
    elif kind == "plain pickle":
        path.write_bytes(pickle.dumps(Path("x"), protocol=2))


FOREIGN = ["truncated", "random bytes", "empty", "plain tensor", "other dict", "our keys, wrong values",
           "disallowed global", "plain pickle"]


@pytest.mark.parametrize("kind", FOREIGN)
def test_foreign_or_corrupt_files_get_one_clear_error(tmp_path, kind):
    path = tmp_path / "foreign.pt"
    _write_foreign(kind, path)
    model = nn.Linear(2, 1)
    weights = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"Expected `path` to be a checkpoint written by save_checkpoint, "
                                         r"but got '.*foreign\.pt': found "):
        load_checkpoint(path, model)
    assert all(torch.equal(model.state_dict()[key], weights[key]) for key in weights)


def test_load_checkpoint_errors(tmp_path):
    model = torch.nn.Linear(2, 1)
    with pytest.raises(FileNotFoundError, match="existing checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt", model)
    path = save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ValueError, match="saved without optimizer state"):
        load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="a torch.optim.Optimizer"):
        load_checkpoint(path, model, "adam")
