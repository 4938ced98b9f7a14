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


def test_check_float_refuses_an_int_too_large_for_a_float():
    with pytest.raises(ValueError, match=r"Expected `x` to be a float, but got 1000000.*\(401 digits\)\."):
        check_float("x", 10**400)


@pytest.mark.parametrize("bad", [complex(float("nan"), 0), complex(0, float("inf"))])
def test_check_tensor_finite_covers_complex_tensors(bad):
    values = torch.tensor([1 + 1j, bad])
    with pytest.raises(ValueError, match=r"finite values .* dtype torch.complex64"):
        check_tensor("x", values, finite=True)
    with pytest.raises(TypeError, match="floating-point"):  # where a real tensor is needed, complex is refused
        check_tensor("x", values, floating=True)
    assert check_tensor("x", torch.tensor([1 + 1j]), finite=True).is_complex()


def test_check_same_length_explains_values_without_a_length():
    with pytest.raises(ValueError, match=r"Expected `a` to be a tensor with at least 1 dimension, but got a tensor "
                                         r"of shape \(\) and dtype torch.float32\."):
        check_same_length("a", torch.tensor(1.0), "b", [1])
    with pytest.raises(ValueError, match=r"Expected `b` to be an array with at least 1 dimension"):
        check_same_length("a", [1], "b", np.array(2.0))
    with pytest.raises(TypeError, match=r"Expected `b` to be a sequence with a length, but got 3\."):
        check_same_length("a", [1], "b", 3)


def test_check_same_length_message_goes_through_message(monkeypatch):
    import companion._validation as validation

    made = []
    monkeypatch.setattr(validation, "message", lambda *args, **kwargs: made.append(args) or "made by message")
    with pytest.raises(ValueError, match="made by message"):
        check_same_length("a", [1, 2], "b", [1, 2, 3])
    assert made == [(("a", "b"), "the same length", (2, 3))]


def test_message_names_several_arguments():
    assert (message(("X", "y"), "the same length", (3, 4), verb="have")
            == "Expected `X` and `y` to have the same length, but got 3 and 4.")


@pytest.mark.parametrize(("value", "length"), [("x" * 10_000, "10000 characters"), (b"x" * 10_000, "10000 bytes")])
def test_long_values_are_shortened_in_messages(value, length):
    text = message("name", "short", value)
    assert len(text) < 200
    assert "..." in text and f"({length})" in text  # an ellipsis and the full length


def test_long_values_keep_their_end():
    path = "/tmp/" + "deep/" * 30 + "model.pt"
    assert message("path", "a file", path).endswith(f"model.pt' ({len(path)} characters).")
    assert message("path", "a file", "/tmp/model.pt") == "Expected `path` to be a file, but got '/tmp/model.pt'."


def test_ints_too_long_to_print_are_described():
    text = message("n", "small", 10**5000)  # repr() refuses ints over sys.get_int_max_str_digits() digits
    assert text.startswith("Expected `n` to be small, but got ") and "digits" in text and len(text) < 200


def test_as_tensor_copies_read_only_arrays_without_a_warning():
    import warnings

    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    array = np.asarray(frame)
    assert not array.flags.writeable  # pandas hands out read-only views
    with warnings.catch_warnings():  # torch warns once per process, so the pointers below are checked too
        warnings.simplefilter("error")
        tensor = as_tensor("X", frame)
    assert torch.equal(tensor, torch.tensor([[1.0, 3.0], [2.0, 4.0]], dtype=torch.float64))
    assert not np.shares_memory(tensor.numpy(), array)  # a copy: writing to it cannot reach pandas' data
    writable = np.ones(3)
    assert np.shares_memory(as_tensor("x", writable).numpy(), writable)  # a writable array is not copied


def test_reprs_of_several_lines_give_way_to_the_type():
    text = message("model", "a linear model", torch.nn.Sequential(torch.nn.ReLU()))
    assert text == "Expected `model` to be a linear model, but got an object of type Sequential."


def test_paths_are_quoted_in_full_however_long():
    from pathlib import Path

    long_path = Path("/tmp") / ("folder-" * 30) / "model.pt"
    text = message("path", "an existing file", long_path)
    assert f"but got {str(long_path)!r}." in text
