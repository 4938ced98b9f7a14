import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from companion.data import TensorData, make_loader, split, standardize


def test_tensor_data_unpacks_and_counts_rows():
    data = TensorData(torch.zeros(5, 3), torch.arange(5), ["a", "b", "c"])
    X, y = data
    assert X is data.X and y is data.y and len(data) == 5
    assert data.feature_names == ["a", "b", "c"] and data.target_names == []


def test_split_partitions_rows():
    X = torch.arange(100).float().unsqueeze(1)
    parts = split(X, X[:, 0], fractions=(0.7, 0.2, 0.1), seed=0)
    assert [len(p[0]) for p in parts] == [70, 20, 10]
    rows = torch.cat([p[0][:, 0] for p in parts]).sort().values
    assert torch.equal(rows, X[:, 0])
    for part_X, part_y in parts:
        assert torch.equal(part_X[:, 0], part_y)


def test_standardize_uses_training_statistics():
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    a, b = standardize(train, torch.tensor([[5.0, 6.0]]))
    assert torch.allclose(a, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(b, torch.tensor([[3.0, 1.0]]))


def test_standardize_matches_scikit_learn():
    g = torch.Generator().manual_seed(0)
    train, test = 3 * torch.randn(50, 4, generator=g) + 2, torch.randn(20, 4, generator=g)
    scaler = StandardScaler().fit(train.numpy())
    a, b = standardize(train, test)
    np.testing.assert_allclose(a.numpy(), scaler.transform(train.numpy()), atol=1e-5)
    np.testing.assert_allclose(b.numpy(), scaler.transform(test.numpy()), atol=1e-5)


def test_make_loader_is_seeded():
    X = torch.randn(20, 1)
    y = X[:, 0]
    first = [yb for _, yb in make_loader(X, y, batch_size=5, seed=3)]
    second = [yb for _, yb in make_loader(X, y, batch_size=5, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    in_order = torch.cat([yb for _, yb in make_loader(X, y, batch_size=5, shuffle=False)])
    assert torch.equal(in_order, y)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: TensorData(np.zeros((3, 2)), torch.zeros(3)), TypeError, r"Expected `X` to be a torch\.Tensor"),
        (lambda: TensorData(torch.zeros(3, 2), [0, 1, 2]), TypeError, r"Expected `y` to be a torch\.Tensor"),
        (lambda: TensorData(torch.zeros(3, 2), torch.zeros(4)), ValueError,
         r"Expected `X` and `y` to have the same length, but got 3 and 4\."),
        (lambda: TensorData(torch.tensor(1.0), torch.tensor(1.0)), ValueError,
         r"Expected `X` to be a tensor with one row per example"),
        (lambda: split(torch.ones(3), torch.ones(4)), ValueError, "same length"),
        (lambda: split(torch.ones(3), torch.ones(3), fractions=(0.5, 0.2)), ValueError, "summing to 1"),
        (lambda: split(torch.ones(3), torch.ones(3), fractions=()), ValueError, "summing to 1"),
        (lambda: split(torch.ones(3), torch.ones(3), fractions=0.5), TypeError,
         r"Expected `fractions` to be a sequence of fractions summing to 1, but got 0\.5\."),
        (lambda: split(torch.ones(3), torch.ones(3), fractions=(1.5, -0.5)), ValueError,
         r"Expected `fractions` to be a float in \(0, 1\]"),
        (lambda: split(torch.ones(3), torch.ones(3), seed=-1), ValueError, r"Expected `seed` to be an int >= 0"),
        (lambda: standardize(torch.ones(3, 2), torch.ones(3, 3)), ValueError, "with 2 columns"),
        (lambda: standardize(torch.ones(3)), ValueError, r"Expected `train` to be a tensor with 2 dimensions"),
        (lambda: standardize(torch.ones(3, 2, dtype=torch.long)), TypeError, "floating-point"),
        (lambda: standardize(torch.ones(3, 2), torch.ones(3, 2, dtype=torch.long)), TypeError,
         r"Expected `others\[0\]` to be a floating-point tensor"),
        (lambda: make_loader(torch.ones(3), torch.ones(3), batch_size=0), ValueError, "`batch_size`"),
        (lambda: make_loader([1, 2], [1, 2]), TypeError, "`X` to be a torch.Tensor"),
        (lambda: make_loader(torch.ones(3), torch.ones(2)), ValueError, "same length"),
        (lambda: make_loader(torch.ones(3), torch.ones(3), shuffle="no"), TypeError,
         r"Expected `shuffle` to be a bool, but got 'no'\."),
        (lambda: make_loader(torch.ones(3), torch.ones(3), shuffle=False, seed=-1), ValueError,
         r"Expected `seed` to be an int >= 0"),
    ],
)
def test_bad_input_gets_the_template(call, error, match):
    with pytest.raises(error, match=match):
        call()
