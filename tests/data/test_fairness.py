"""make_group_classification: groups, a proxy that agrees with them at the set rate, base rates per group."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from companion.data.fairness import make_group_classification


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _columns(data, prefix):
    return data.X[:, [i for i, name in enumerate(data.feature_names) if name.startswith(prefix)]]


def test_shapes_names_and_types():
    data, group = make_group_classification(50, groups=("p", "q", "r"), shares=(0.2, 0.3, 0.5),
                                            offsets=(0, 0, 0), n_features=4)
    assert tuple(data.X.shape) == (50, 4 + 2 * 3) and data.X.dtype == torch.float32
    assert data.y.dtype == torch.int64 and set(data.y.tolist()) <= {0, 1}
    assert data.feature_names == ["x0", "x1", "x2", "x3", "group=p", "group=q", "group=r",
                                  "neighbourhood=0", "neighbourhood=1", "neighbourhood=2"]
    assert group.shape == (50,) and set(group) <= {"p", "q", "r"}
    # the one-hot group columns encode the returned group of each row
    one_hot = _columns(data, "group=")
    assert torch.equal(one_hot.sum(1), torch.ones(50))
    assert (np.array(["p", "q", "r"])[one_hot.argmax(1).numpy()] == group).all()


def test_seeded():
    a, ga = make_group_classification(300, seed=3)
    b, gb = make_group_classification(300, seed=3)
    c, _ = make_group_classification(300, seed=4)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y) and (ga == gb).all()
    assert not torch.equal(a.X, c.X)


def test_group_shares_and_proxy_agreement_match_the_arguments():
    data, group = make_group_classification(60_000, groups=("A", "B", "C"), shares=(0.5, 0.3, 0.2),
                                            offsets=(0, 0, 0), proxy_agreement=0.7)
    for name, share in zip("ABC", (0.5, 0.3, 0.2), strict=True):
        assert (group == name).mean() == pytest.approx(share, abs=0.01)
    g = _columns(data, "group=").argmax(1)
    neighbourhood = _columns(data, "neighbourhood=").argmax(1)
    assert float((neighbourhood == g).float().mean()) == pytest.approx(0.7, abs=0.01)
    # a mismatched neighbourhood is any of the other groups' indices, uniformly
    for k in range(3):
        others = neighbourhood[(g == k) & (neighbourhood != g)]
        counts = torch.bincount(others, minlength=3).float() / len(others)
        assert counts[k] == 0 and torch.allclose(counts[torch.arange(3) != k], torch.tensor(0.5), atol=0.03)


def test_agreement_one_over_k_makes_the_proxy_independent_of_the_group():
    data, _ = make_group_classification(60_000, groups=("A", "B", "C"), shares=(0.5, 0.3, 0.2),
                                        offsets=(0, 0, 0), proxy_agreement=1 / 3)
    g = _columns(data, "group=").argmax(1)
    neighbourhood = _columns(data, "neighbourhood=").argmax(1)
    for k in range(3):  # P(neighbourhood | group) is 1/3 for every pair
        share = torch.bincount(neighbourhood[g == k], minlength=3).float() / int((g == k).sum())
        assert torch.allclose(share, torch.tensor(1 / 3), atol=0.015)


def test_each_groups_positive_rate_is_the_normal_cdf_of_its_offset():
    # Oracle: x @ w with a unit w is N(0, 1), so P(y = 1 | g) = Phi(offset / sqrt(1 + noise^2)).
    offsets, noise = (0.0, -1.5, 0.8), 0.7
    data, group = make_group_classification(90_000, groups=("A", "B", "C"), shares=(1 / 3, 1 / 3, 1 / 3),
                                            offsets=offsets, label_noise=noise, seed=1)
    for name, offset in zip("ABC", offsets, strict=True):
        rate = float(data.y[torch.as_tensor(group == name)].float().mean())
        assert rate == pytest.approx(_phi(offset / math.sqrt(1 + noise**2)), abs=0.01)


def test_equal_offsets_generate_the_groups_identically():
    data, group = make_group_classification(40_000, offsets=(0.4, 0.4), seed=2)
    rates = [float(data.y[torch.as_tensor(group == g)].float().mean()) for g in "AB"]
    assert rates[0] == pytest.approx(rates[1], abs=0.015)


def test_without_label_noise_the_label_is_linear_in_the_features_and_group():
    data, _ = make_group_classification(3000, offsets=(0.0, -1.0), label_noise=0.0, seed=5)
    X = data.X.numpy().astype(np.float64)
    model = LogisticRegression(C=1e4, max_iter=5000).fit(X, data.y.numpy())
    assert model.score(X, data.y.numpy()) > 0.995
    # and it needs the group: the numeric features alone miss the offset
    alone = LogisticRegression(C=1e4, max_iter=5000).fit(X[:, :3], data.y.numpy())
    assert alone.score(X[:, :3], data.y.numpy()) < 0.95


def test_one_rule_seed_one_rule():
    # The same rule_seed with different row seeds: a model fitted on one set predicts the other without noise.
    (a, _), (b, _) = (make_group_classification(3000, label_noise=0.0, seed=s, rule_seed=7) for s in (0, 1))
    model = LogisticRegression(C=1e4, max_iter=5000).fit(a.X.numpy().astype(np.float64), a.y.numpy())
    assert model.score(b.X.numpy().astype(np.float64), b.y.numpy()) > 0.98
    c, _ = make_group_classification(3000, label_noise=0.0, seed=1, rule_seed=8)
    assert model.score(c.X.numpy().astype(np.float64), c.y.numpy()) < 0.9


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"n_samples": 0}, ValueError, "`n_samples` to be an int >= 1"),
        ({"n_samples": 2.5}, TypeError, "`n_samples`"),
        ({"n_features": 0}, ValueError, "`n_features`"),
        ({"groups": ("A",), "shares": (1.0,), "offsets": (0.0,)}, ValueError, "at least two distinct"),
        ({"groups": ("A", "A")}, ValueError, "distinct group names"),
        ({"groups": "AB"}, TypeError, "`groups`"),
        ({"shares": (0.5, 0.6)}, ValueError, "summing to 1"),
        ({"shares": (1.0, 0.0)}, ValueError, "`shares` to be a float in (0, 1]"),
        ({"shares": (1.0,)}, ValueError, "one float per group (2)"),
        ({"shares": 0.5}, TypeError, "`shares`"),
        ({"offsets": (0.0, float("nan"))}, ValueError, "`offsets`"),
        ({"offsets": (0.0, "low")}, TypeError, "`offsets`"),
        ({"offsets": (0.0, 1.0, 2.0)}, ValueError, "one float per group"),
        ({"proxy_agreement": 0.4}, ValueError, "`proxy_agreement` to be a float in [0.5, 1]"),
        ({"proxy_agreement": 1.1}, ValueError, "`proxy_agreement`"),
        ({"label_noise": -0.1}, ValueError, "`label_noise` to be a float >= 0"),
        ({"seed": -1}, ValueError, "`seed`"),
        ({"rule_seed": -1}, ValueError, "`rule_seed`"),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        make_group_classification(**{"n_samples": 10, **kwargs})
    assert words in str(info.value)
