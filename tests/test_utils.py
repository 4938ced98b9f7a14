import pytest
import torch

from companion.utils import Timer, get_device, interleaved_medians, seed_everything


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

    times = interleaved_medians({"a": make("a"), "b": make("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4  # warm-up, then round-robin
    assert list(times) == ["a", "b"]
    assert 0.015 < times["a"] < 0.035  # the median ignores the one slow window
    assert times["b"] < 0.01


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
    ],
)
def test_interleaved_medians_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        interleaved_medians(**kwargs)
