"""Tests for companion.scratch.backprop: the hand-written chain rule against autograd."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import scratch
from companion.scratch.backprop import ACTIVATION_FUNCTIONS, ScratchMLP


def _autograd_gradients(net: ScratchMLP, x, y):
    params = [p.clone().requires_grad_(True) for p in net.parameters]
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[net.activation]
    a = x
    for i in range(0, len(params), 2):
        z = a @ params[i] + params[i + 1]
        a = z if i == len(params) - 2 else act(z)
    loss = ((a - y) ** 2).mean()
    loss.backward()
    return loss.item(), [p.grad for p in params]


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    n=st.integers(1, 7),
    activation=st.sampled_from(["tanh", "sigmoid", "relu"]),
    seed=st.integers(0, 1000),
)
def test_gradients_match_autograd(sizes, n, activation, seed):
    net = ScratchMLP(sizes, activation=activation, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, sizes[0], generator=g, dtype=torch.float64)
    y = torch.randn(n, sizes[-1], generator=g, dtype=torch.float64)
    loss, grads = net.loss_and_gradients(x, y)
    expected_loss, expected = _autograd_gradients(net, x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-12)


def test_descent_on_scratch_gradients_fits():
    x = torch.linspace(-1, 1, 32, dtype=torch.float64).unsqueeze(1)
    y = x**2
    net = ScratchMLP((1, 8, 1), seed=0)
    first = net.step(x, y, lr=0.1)
    for _ in range(500):
        last = net.step(x, y, lr=0.1)
    assert last < 0.1 * first
    assert torch.allclose(net.forward(x), net._forward(x)[0])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: ScratchMLP((3,)), ValueError, "at least two layer widths"),
        (lambda: ScratchMLP((3, 0, 1)), ValueError, r"`sizes\[1\]` to be an int >= 1"),
        (lambda: ScratchMLP((3, 1), activation="gelu"), ValueError, "`activation` to be one of"),
        (lambda: ScratchMLP((3, 1)).forward(torch.ones(2, 4)), ValueError, "with 3 columns"),
        (lambda: ScratchMLP((3, 1)).loss_and_gradients(torch.ones(2, 3), torch.ones(3, 1)),
         ValueError, r"shape \(2, 1\)"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("name", sorted(ACTIVATION_FUNCTIONS))
def test_each_activation_derivative_matches_autograd(name):
    function, derivative = ACTIVATION_FUNCTIONS[name]
    z = torch.linspace(-4, 4, 81, dtype=torch.float64).requires_grad_(True)
    (expected,) = torch.autograd.grad(function(z).sum(), z)
    torch.testing.assert_close(derivative(z.detach()), expected)


def test_scratch_package_reexports_the_teaching_code():
    assert scratch.ScratchMLP is ScratchMLP
    assert set(scratch.__all__) >= {"ScratchMLP", "ACTIVATION_FUNCTIONS", "minibatch_descent"}
