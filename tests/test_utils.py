import pytest
import torch

from companion.utils import (
    Timer,
    get_device,
    interleaved_medians,
    interleaved_times,
    seed_everything,
)


def test_seed_everything_repeats_bit_for_bit():
    def run():
        seed_everything(123)
        model = torch.nn.Linear(4, 2)
        x = torch.randn(8, 4)
        return model(x)

    assert torch.equal(run(), run())


def test_seed_everything_rejects_bad_seeds():
    with pytest.raises(ValueError, match=r"Expected `seed` to be an int in \[0, 4294967295\]"):
        seed_everything(-1)
    with pytest.raises(TypeError, match="`seed`"):
        seed_everything(1.5)


def test_get_device():
    assert get_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert get_device().type == expected
    with pytest.raises(ValueError, match="Expected `device` to be a device"):
        get_device("not-a-device")


def test_timer_measures_time():
    with Timer() as t:
        sum(range(10_000))
    assert 0 <= t.seconds < 5


def test_interleaved_medians_calls_in_turns_and_takes_the_median():
    calls = []
    # warm-up a, b; then a, b three times: "a" takes 0, 0.02 and 0.1 s (median 0.02, mean 0.04)
    durations = iter([0.0, 0.0, 0.0, 0.0, 0.02, 0.0, 0.1, 0.0])

    def make(name):
        def run():
            calls.append(name)
            import time
            time.sleep(next(durations))
        return run

    times = interleaved_medians({"a": make("a"), "b": make("b")}, repeats=3, warmup=1, shuffle=False)
    assert calls == ["a", "b"] * 4  # warm-up, then round-robin
    assert list(times) == ["a", "b"]
    assert 0.015 < times["a"] < 0.035  # the median ignores the one slow window
    assert times["b"] < 0.01


def test_interleaved_times_shuffles_each_round_reproducibly_and_returns_every_sample():
    def record(calls):
        return {name: (lambda name=name: calls.append(name)) for name in "abcd"}

    first, second = [], []
    times = interleaved_times(record(first), repeats=6, warmup=2, seed=3)
    interleaved_times(record(second), repeats=6, warmup=2, seed=3)
    assert first == second  # seeded
    rounds = [first[i:i + 4] for i in range(0, len(first), 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)  # every round calls each function once
    assert len({tuple(r) for r in rounds}) > 1  # in more than one order
    assert list(times) == list("abcd") and all(len(v) == 6 for v in times.values())


def test_interleaved_medians_orders_real_work():
    times = interleaved_medians({"small": lambda: torch.ones(10).sum(),
                                 "large": lambda: torch.ones(2_000, 2_000).sum()}, repeats=5)
    assert times["large"] > times["small"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"functions": {}}, ValueError, "at least one function"),
        ({"functions": [lambda: None]}, TypeError, "`functions`"),
        ({"functions": {"a": 1}}, TypeError, r"functions\['a'\]"),
        ({"functions": {"a": lambda: None}, "repeats": 0}, ValueError, "`repeats`"),
        ({"functions": {"a": lambda: None}, "warmup": -1}, ValueError, "`warmup`"),
        ({"functions": {"a": lambda: None}, "shuffle": 1}, TypeError, "`shuffle`"),
        ({"functions": {"a": lambda: None}, "seed": -1}, ValueError, "`seed`"),
    ],
)
def test_interleaved_medians_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        interleaved_medians(**kwargs)


def test_model_device_of_parameters_buffers_and_neither():
    from companion.utils import model_device

    assert model_device(torch.nn.Linear(2, 1)) == torch.device("cpu")
    assert model_device(torch.nn.BatchNorm1d(2, affine=False)) == torch.device("cpu")  # buffers only
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")  # no StopIteration
    assert model_device(torch.nn.ReLU(), default="meta") == torch.device("meta")
    with pytest.raises(TypeError, match="Expected `model` to be a torch.nn.Module"):
        model_device(lambda x: x)


def test_eval_mode_restores_every_submodule_even_after_an_error():
    from companion.utils import eval_mode

    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(2)).train()
    model[1].eval()
    with pytest.raises(KeyError):
        with eval_mode(model):
            assert not any(m.training for m in model.modules())
            raise KeyError("boom")
    assert model.training and model[0].training and not model[1].training
    with pytest.raises(TypeError, match="Expected `model` to be a torch.nn.Module"):
        with eval_mode("model"):
            pass


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    from companion.utils import atomic_write

    target = atomic_write(tmp_path / "sub" / "f.bin", lambda f: f.write(b"old"))
    assert target.read_bytes() == b"old"

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]  # no temporary file left
    with pytest.raises(TypeError, match="Expected `write` to be callable"):
        atomic_write(target, b"data")


def test_atomic_write_renames_a_finished_file_over_the_target(tmp_path, monkeypatch):
    import os

    from companion.utils import atomic_write

    calls = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append((a, b)), real_replace(a, b)))
    atomic_write(tmp_path / "f.bin", lambda f: f.write(b"new"))
    assert len(calls) == 1 and str(calls[0][1]).endswith("f.bin") and calls[0][0] != calls[0][1]


def test_free_port_can_be_bound():
    import socket

    from companion.utils import free_port

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
