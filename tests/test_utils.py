import pytest
import torch

from companion.utils import Timer, get_device, seed_everything


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
