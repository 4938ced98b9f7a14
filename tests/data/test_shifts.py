import math

import numpy as np
import pandas as pd
import pytest
import torch

from companion.data import make_drifting_stream, make_sliced_chunks, make_sliced_classification


def test_drifting_stream_rotates_its_boundary():
    stream = make_drifting_stream(2, 4000, drift=math.pi / 2, noise=0.05)
    # batch 0 is decided by x0, batch 1 (turned 90 degrees) by x1
    for batch, column in zip(stream, (0, 1), strict=True):
        agree = ((batch.X[:, column] > 0).float() == batch.y).float().mean()
        assert agree > 0.9
    assert stream[0].y.dtype == torch.float32


def test_drifting_stream_without_drift_keeps_one_concept():
    a, b = make_drifting_stream(2, 3000, drift=0.0, noise=0.25, seed=1)
    # the positive rate given x0 is sigmoid(x0 / noise) in every batch
    for batch in (a, b):
        expected = torch.sigmoid(batch.X[:, 0] / 0.25).mean()
        assert float(batch.y.mean()) == pytest.approx(float(expected), abs=0.03)
    again = make_drifting_stream(2, 3000, drift=0.0, noise=0.25, seed=1)
    assert torch.equal(again[1].X, b.X) and torch.equal(again[1].y, b.y)


def test_make_sliced_chunks_is_lazy_and_seeded():
    a = [c[1] for c in make_sliced_chunks(2, 10, seed=3)]
    b = [c[1] for c in make_sliced_chunks(2, 10, seed=3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=False))


def test_make_sliced_chunks_flips_each_slices_share_of_labels():
    noise = (0.0, 0.1, 0.3)
    chunks = list(make_sliced_chunks(2, 20_000, n_features=3, slices=("a", "b", "c"), label_noise=noise))
    X = torch.cat([c[0] for c in chunks])
    y = torch.cat([c[1] for c in chunks])
    where = np.concatenate([c[2]["slice"] for c in chunks])
    # the rule is the clean slice's: least squares on slice a recovers its direction
    clean = torch.from_numpy(where == "a")
    w = torch.linalg.lstsq(X[clean], y[clean] * 2 - 1).solution
    for name, share in zip("abc", noise):
        rows = torch.from_numpy(where == name)
        flipped = float(((X[rows] @ w > 0).float() != y[rows]).float().mean())
        assert flipped == pytest.approx(share, abs=0.03)


def test_make_sliced_classification_plants_size_noise_rule_and_offset():
    kw = dict(shares=(0.5, 0.3, 0.2), label_noise=(0.0, 0.3, 0.0), flip_rule=(False, False, True),
              offsets=(0.0, 0.0, 0.0))
    data, where = make_sliced_classification(6000, seed=0, **kw)
    again, _ = make_sliced_classification(6000, seed=0, **kw)
    assert torch.equal(data.X, again.X) and torch.equal(data.y, again.y)
    shares = {s: float((where == s).mean()) for s in "ABC"}
    assert shares == pytest.approx({"A": 0.5, "B": 0.3, "C": 0.2}, abs=0.03)
    one_hot = data.X[:, 4:]
    assert torch.equal(one_hot.argmax(1), torch.tensor(pd.factorize(where, sort=True)[0]))
    # The rule of A, read from a different seed with the same rule_seed, labels A perfectly ...
    other, other_where = make_sliced_classification(6000, seed=1, **kw)
    w = torch.linalg.lstsq(other.X[other_where == "A", :4], other.y[other_where == "A"].float() * 2 - 1).solution
    agree = lambda s: float(((data.X[where == s, :4] @ w > 0).long() == data.y[where == s]).float().mean())
    assert agree("A") > 0.95
    assert 0.6 < agree("B") < 0.8  # ... B's labels are 30% flipped ...
    assert agree("C") < 0.05       # ... and C follows the opposite rule.
    shifted, shifted_where = make_sliced_classification(6000, offsets=(0.0, 2.0, -2.0), seed=0)
    rates = [float(shifted.y[shifted_where == s].float().mean()) for s in "ABC"]
    assert rates[2] + 0.2 < rates[0] < rates[1] - 0.2


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: make_drifting_stream(drift=-1.0), ValueError, r"Expected `drift` to be a float >= 0"),
        (lambda: make_drifting_stream(noise=0.0), ValueError, r"Expected `noise` to be a float > 0"),
        (lambda: make_drifting_stream(0), ValueError, r"Expected `n_batches` to be an int >= 1"),
        (lambda: make_drifting_stream(seed=-2), ValueError, r"Expected `seed` to be an int >= 0"),
        (lambda: make_sliced_chunks(0, 5), ValueError, r"Expected `n_chunks` to be an int >= 1"),
        (lambda: make_sliced_chunks(1, 5, label_noise=(0.1,)), ValueError,
         r"Expected `label_noise` to be one value per slice \(4\)"),
        (lambda: make_sliced_chunks(1, 5, label_noise=0.1), TypeError,
         r"Expected `label_noise` to be a sequence with one value per slice \(4\), but got 0\.1\."),
        (lambda: make_sliced_chunks(1, 5, slices=(), label_noise=()), ValueError,
         r"Expected `slices` to be a non-empty sequence of distinct slice names, but got \(\)\."),
        (lambda: make_sliced_chunks(1, 5, slices=("a", "a"), label_noise=(0.0, 0.1)), ValueError,
         r"Expected `slices` to be a non-empty sequence of distinct slice names"),
        (lambda: make_sliced_chunks(1, 5, slices="ab", label_noise=(0.0, 0.1)), TypeError,
         r"Expected `slices` to be a non-empty sequence of distinct slice names, but got 'ab'\."),
        (lambda: make_sliced_classification(10, shares=(0.5, 0.2, 0.2)), ValueError,
         r"Expected `shares` to be shares summing to 1"),
        (lambda: make_sliced_classification(10, label_noise=(0.1,)), ValueError,
         r"Expected `label_noise` to be one value per slice \(3\)"),
        (lambda: make_sliced_classification(10, label_noise=(0.0, 0.9, 0.0)), ValueError,
         r"Expected `label_noise` to be a float in \[0, 0.5\]"),
        (lambda: make_sliced_classification(10, shares=1.0), TypeError,
         r"Expected `shares` to be a sequence with one value per slice \(3\), but got 1\.0\."),
        (lambda: make_sliced_classification(10, slices=(), shares=(), label_noise=(), flip_rule=(), offsets=()),
         ValueError, r"Expected `slices` to be a non-empty sequence of distinct slice names, but got \(\)\."),
        (lambda: make_sliced_classification(10, slices=("A", "A", "B")), ValueError,
         r"Expected `slices` to be a non-empty sequence of distinct slice names"),
        (lambda: make_sliced_classification(10, flip_rule=(False, "yes", False)), TypeError,
         r"Expected `flip_rule` to be a bool, but got 'yes'\."),
        (lambda: make_sliced_classification(10, offsets=(0.0, float("inf"), 0.0)), ValueError,
         r"Expected `offsets` to be a float, but got inf\."),
        (lambda: make_sliced_classification(10, rule_seed=-1), ValueError,
         r"Expected `rule_seed` to be an int >= 0"),
    ],
)
def test_bad_input_gets_the_template(call, error, match):
    with pytest.raises(error, match=match):
        call()
