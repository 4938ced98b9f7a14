import numpy as np
import pytest
import torch

from companion._validation import (
    as_tensor,
    check_callable,
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)


def test_message_follows_the_template():
    assert message("lr", "a float > 0", -0.1) == "Expected `lr` to be a float > 0, but got -0.1."


def test_check_float_bounds_and_messages():
    assert check_float("lr", 0.1, low=0, low_open=True) == 0.1
    with pytest.raises(ValueError, match=r"Expected `lr` to be a float > 0, but got -0.1\."):
        check_float("lr", -0.1, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"a float in \[0, 1\], but got 1.5"):
        check_float("p", 1.5, low=0, high=1)
    with pytest.raises(ValueError, match="but got nan"):
        check_float("x", float("nan"))
    with pytest.raises(TypeError, match="but got 'a'"):
        check_float("x", "a")
    with pytest.raises(TypeError):
        check_float("x", True)


def test_check_int():
    assert check_int("n", np.int64(3), low=1) == 3
    with pytest.raises(ValueError, match=r"Expected `n` to be an int >= 1, but got 0\."):
        check_int("n", 0, low=1)
    with pytest.raises(TypeError, match="an int"):
        check_int("n", 2.0)
    with pytest.raises(TypeError):
        check_int("n", False)


def test_check_choice_instance_callable():
    assert check_choice("mode", "fast", ("full", "fast")) == "fast"
    with pytest.raises(ValueError, match=r"one of \('full', 'fast'\), but got 'slow'"):
        check_choice("mode", "slow", ("full", "fast"))
    with pytest.raises(TypeError, match="a torch.nn.Module"):
        check_instance("model", 3, torch.nn.Module, "a torch.nn.Module")
    with pytest.raises(TypeError, match="callable"):
        check_callable("fn", 3)


def test_check_tensor():
    t = torch.ones(2, 3)
    assert check_tensor("x", t, ndim=2, floating=True, finite=True) is t
    with pytest.raises(ValueError, match=r"a tensor with 1 dimensions, but got a tensor of shape \(2, 3\)"):
        check_tensor("x", t, ndim=1)
    with pytest.raises(TypeError, match="floating-point"):
        check_tensor("x", torch.ones(2, dtype=torch.long), floating=True)
    with pytest.raises(ValueError, match="finite"):
        check_tensor("x", torch.tensor([1.0, float("inf")]), finite=True)
    with pytest.raises(ValueError, match="non-empty"):
        check_tensor("x", torch.ones(0))
    with pytest.raises(TypeError, match="a torch.Tensor, but got an array"):
        check_tensor("x", np.ones(2))


def test_as_tensor_and_same_length():
    assert torch.equal(as_tensor("y", [1, 2]), torch.tensor([1, 2]))
    assert as_tensor("y", np.ones(2), dtype=torch.float32).dtype == torch.float32
    with pytest.raises(TypeError, match="sequence of numbers"):
        as_tensor("y", ["a", object()])
    with pytest.raises(ValueError, match="same length, but got 2 and 3"):
        check_same_length("a", [1, 2], "b", [1, 2, 3])
