"""Tests for companion.sampled_softmax.

The limits tested: (1) when every class is in the sample with inclusion probability 1
(uniform sampler, many draws) the sampled loss and its gradient equal full cross-entropy;
(2) for ANY sample size the corrected denominator is an unbiased (Horvitz-Thompson)
estimate of the full softmax denominator, checked by Monte Carlo; (3) the expected
gradient converges to the full-softmax gradient as ``num_sampled`` grows.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from companion.sampled_softmax import SampledSoftmaxLoss, full_softmax_loss, step_times


def _setup(num_classes=20, dim=4, n=3, seed=0):
    torch.manual_seed(seed)
    layer = nn.Linear(dim, num_classes).double()
    hidden = torch.randn(n, dim, dtype=torch.float64)
    target = torch.randint(num_classes, (n,))
    return layer, hidden, target


def _grads(loss, layer):
    layer.zero_grad()
    loss.backward()
    return layer.weight.grad.clone(), layer.bias.grad.clone()


def test_every_class_sampled_equals_full_cross_entropy():
    layer, hidden, target = _setup(num_classes=10)
    loss_fn = SampledSoftmaxLoss(
        10, 2000, sampler="uniform", generator=torch.Generator().manual_seed(0)
    )
    candidates = loss_fn.sample()
    assert torch.equal(candidates, torch.arange(10))
    assert torch.equal(
        loss_fn.inclusion_log_probabilities(candidates), torch.zeros(10, dtype=torch.float64)
    )
    sampled = F.cross_entropy(
        loss_fn.sampled_logits(hidden, target, layer, candidates), torch.zeros_like(target)
    )
    full = full_softmax_loss(hidden, target, layer)
    torch.testing.assert_close(sampled, full, atol=1e-12, rtol=0)
    for g_s, g_f in zip(_grads(sampled, layer), _grads(full, layer)):
        torch.testing.assert_close(g_s, g_f, atol=1e-12, rtol=0)


@pytest.mark.parametrize("sampler", ["uniform", "log_uniform"])
def test_corrected_denominator_is_unbiased_for_small_samples(sampler):
    layer, hidden, target = _setup(num_classes=20)
    loss_fn = SampledSoftmaxLoss(20, 5, sampler=sampler, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = layer(hidden)
        exact = torch.exp(z).sum(1) - torch.exp(
            z.gather(1, target[:, None])[:, 0]
        )  # negatives only
        draws = torch.stack(
            [
                torch.exp(loss_fn.sampled_logits(hidden, target, layer)[:, 1:]).sum(1)
                for _ in range(4000)
            ]
        )
    mean, se = draws.mean(0), draws.std(0) / 4000**0.5
    assert bool(((mean - exact).abs() < 4 * se).all()), (mean, exact, se)


def test_planted_fault_without_logq_correction_is_biased():
    class NoCorrection(SampledSoftmaxLoss):
        def inclusion_log_probabilities(self, classes):
            return torch.zeros(len(classes), dtype=torch.float64)

    layer, hidden, target = _setup(num_classes=20)
    loss_fn = NoCorrection(20, 5, sampler="log_uniform", generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = layer(hidden)
        exact = torch.exp(z).sum(1) - torch.exp(z.gather(1, target[:, None])[:, 0])
        draws = torch.stack(
            [
                torch.exp(loss_fn.sampled_logits(hidden, target, layer)[:, 1:]).sum(1)
                for _ in range(2000)
            ]
        )
    mean, se = draws.mean(0), draws.std(0) / 2000**0.5
    assert bool(((mean - exact).abs() > 4 * se).any())


def test_expected_gradient_converges_to_full_gradient():
    layer, hidden, target = _setup(num_classes=30, n=4)
    full_w, _ = _grads(full_softmax_loss(hidden, target, layer), layer)
    errors = {}
    for num_sampled in (3, 300):
        loss_fn = SampledSoftmaxLoss(
            30, num_sampled, sampler="uniform", generator=torch.Generator().manual_seed(2)
        )
        total = torch.zeros_like(full_w)
        for _ in range(200):
            total += _grads(loss_fn(hidden, target, layer), layer)[0]
        errors[num_sampled] = float((total / 200 - full_w).norm() / full_w.norm())
    assert errors[300] < 0.02 < errors[3]


def test_log_uniform_draws_follow_class_probabilities():
    loss_fn = SampledSoftmaxLoss(
        50, 1, sampler="log_uniform", generator=torch.Generator().manual_seed(3)
    )
    q = loss_fn.class_probabilities()
    torch.testing.assert_close(q.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert bool((q[:-1] > q[1:]).all())  # Zipfian: decreasing
    counts = torch.bincount(
        torch.cat([loss_fn.sample() for _ in range(20000)]), minlength=50
    ).double()
    expected = 20000 * q
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 100  # 49 degrees of freedom: p < 1e-5 beyond ~100


def test_only_true_and_candidate_rows_get_gradient():
    layer, hidden, target = _setup(num_classes=1000, n=5)
    loss_fn = SampledSoftmaxLoss(
        1000, 20, sparse_grad=True, generator=torch.Generator().manual_seed(4)
    )
    candidates = loss_fn.sample()
    loss = F.cross_entropy(
        loss_fn.sampled_logits(hidden, target, layer, candidates), torch.zeros_like(target)
    )
    loss.backward()
    assert layer.weight.grad.is_sparse
    touched = set(layer.weight.grad.coalesce().indices()[0].tolist())
    assert touched == set(target.tolist()) | set(candidates.tolist())
    assert len(touched) <= 25


def test_accidental_hits_are_masked():
    layer, hidden, _ = _setup(num_classes=10, n=2)
    target = torch.tensor([3, 7])
    loss_fn = SampledSoftmaxLoss(10, 5)
    logits = loss_fn.sampled_logits(hidden, target, layer, torch.tensor([1, 3, 7]))
    assert logits.shape == (2, 4)
    assert torch.isinf(logits[0, 2]) and torch.isinf(logits[1, 3])
    assert torch.isfinite(logits[0, [0, 1, 3]]).all()


def test_training_with_sampled_loss_lowers_full_loss():
    torch.manual_seed(0)
    num_classes, dim = 200, 16
    prototypes = torch.randn(num_classes, dim)
    y = torch.randint(num_classes, (1000,))
    x = prototypes[y] + 0.1 * torch.randn(1000, dim)
    layer = nn.Linear(dim, num_classes)
    loss_fn = SampledSoftmaxLoss(num_classes, 50, sampler="uniform")
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    before = float(full_softmax_loss(x, y, layer).detach())
    for _ in range(60):
        optimizer.zero_grad()
        loss_fn(x, y, layer).backward()
        optimizer.step()
    assert float(full_softmax_loss(x, y, layer).detach()) < 0.5 * before


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda l, h, y: SampledSoftmaxLoss(1, 5),
            ValueError,
            r"Expected `num_classes` to be an int >= 2, but got 1\.",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(10, 0),
            ValueError,
            r"Expected `num_sampled` to be an int >= 1",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(10, 5, sampler="zipf"),
            ValueError,
            r"Expected `sampler` to be one of \('log_uniform', 'uniform'\)",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(20, 5)(h, y.float(), l),
            TypeError,
            r"Expected `target` to be an int64 tensor",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(20, 5)(h[:, :2], y, l),
            ValueError,
            r"Expected `hidden` to be a tensor with 4 columns",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(20, 5)(h, y[:2], l),
            ValueError,
            r"Expected `hidden` and `target` to have the same length",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(30, 5)(h, y, l),
            ValueError,
            r"Expected `output_layer` to be an nn.Linear with 30 outputs",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(20, 5)(h, y + 20, l),
            ValueError,
            r"^Expected `target` to be class indices in \[0, 19\], but got a tensor of shape \(3,\) "
            r"and dtype torch.int64: found values from 2\d to 3\d\.$",
        ),
        (
            lambda l, h, y: SampledSoftmaxLoss(20, 5)(h, y, "layer"),
            TypeError,
            r"Expected `output_layer` to be a torch.nn.Linear",
        ),
        (
            lambda l, h, y: full_softmax_loss(h.long(), y, l),
            TypeError,
            r"Expected `hidden` to be a floating-point tensor",
        ),
    ],
)
def test_bad_input(call, error, match):
    layer, hidden, target = _setup(num_classes=20)
    with pytest.raises(error, match=match):
        call(layer, hidden, target)


def test_step_times_interleaves_every_step_and_reports_medians(monkeypatch):
    # the contenders share one round-robin timing window, so load hits them alike
    import companion.sampled_softmax as module
    from companion.utils import interleaved_medians

    calls = []

    def spy(functions, **kwargs):
        calls.append((list(functions), kwargs, torch.get_num_threads()))
        return interleaved_medians(functions, **kwargs)

    monkeypatch.setattr(module, "interleaved_medians", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        times = step_times(
            [10, 200, 10], batch_size=8, hidden_dim=4, repeats=3, num_threads=1, device="cpu"
        )
        threads_after = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 1  # one interleaved window for the whole sweep
    names, kwargs, threads_inside = calls[0]
    assert names == ["0 full", "0 sampled", "1 full", "1 sampled", "2 full", "2 sampled"]
    assert kwargs["repeats"] == 3 and kwargs["warmup"] == 1
    assert threads_inside == 1 and threads_after == 2  # set, then restored
    assert times["classes"] == [10, 200, 10] and len(times["full"]) == len(times["sampled"]) == 3
    with pytest.raises(ValueError, match=r"Expected `num_threads` to be an int >= 1, but got 0\."):
        step_times([10], num_threads=0)
    with pytest.raises(ValueError, match=r"Expected `min_time` to be a float >= 0"):
        step_times([10], min_time=-1.0)


def test_step_times_orders_full_and_sampled_steps():
    times = step_times(
        [10, 50_000], num_sampled=16, batch_size=32, hidden_dim=16, repeats=3, device="cpu"
    )
    assert times["classes"] == [10, 50_000]
    assert all(t > 0 for t in times["full"] + times["sampled"])
    # 50,000 classes: the full step does ~3,000x the output-layer work of the sampled one
    assert times["full"][1] > 2 * times["sampled"][1]
    with pytest.raises(
        ValueError, match=r"Expected `class_counts\[0\]` to be an int >= 2, but got 1\."
    ):
        step_times([1])
