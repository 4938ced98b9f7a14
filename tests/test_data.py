import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer as sk_breast_cancer
from sklearn.datasets import load_digits as sk_digits

from companion import data


def test_generators_are_seeded_and_shaped():
    a, b = data.make_regression(50, 3, seed=1), data.make_regression(50, 3, seed=1)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    assert a.X.shape == (50, 3) and a.y.shape == (50,)
    X, y = data.make_classification(30, 4, 3, seed=0)
    assert X.shape == (30, 4) and torch.bincount(y).tolist() == [10, 10, 10]


def test_make_regression_is_linear_with_small_noise():
    X, y = data.make_regression(500, 2, noise=0.01, seed=0)
    design = np.c_[X.numpy(), np.ones(len(X))]
    _, residual, *_ = np.linalg.lstsq(design, y.numpy(), rcond=None)
    assert residual[0] / len(X) < 1e-3


def test_make_counts_follows_its_rate():
    X, y = data.make_counts(20_000, (0.5, -0.3), intercept=1.0, seed=0)
    assert (y >= 0).all() and torch.equal(y, y.round())
    assert abs(float(y.mean()) - float(torch.exp(1.0 + X @ torch.tensor([0.5, -0.3])).mean())) < 0.1


def test_make_shapes_masks_match_the_pixels():
    images, labels, masks = data.make_shapes(30, size=24, noise=0.0, seed=0)
    assert images.shape == (30, 3, 24, 24) and masks.shape == (30, 24, 24)
    assert set(labels.tolist()) == {0, 1, 2}
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    for img, mask in zip(images, masks):
        inside, outside = img[:, mask], img[:, ~mask]
        assert mask.any() and (~mask).any()
        # without noise, the object is one colour and the background another
        assert torch.allclose(inside, inside[:, :1]) and torch.allclose(outside, outside[:, :1])


def test_bundled_data_match_scikit_learn():
    X, y = data.load_digits()
    assert np.allclose(X.numpy() * 16, sk_digits().data)
    assert data.load_digits(as_images=True).X.shape == (1797, 1, 8, 8)
    bc = data.load_breast_cancer()
    assert np.allclose(bc.X.numpy(), sk_breast_cancer().data, rtol=1e-6)
    assert np.array_equal(bc.y.numpy(), sk_breast_cancer().target)
    assert len(bc.feature_names) == 30


def test_split_partitions_rows():
    X = torch.arange(100).float().unsqueeze(1)
    parts = data.split(X, X[:, 0], fractions=(0.7, 0.2, 0.1), seed=0)
    assert [len(p[0]) for p in parts] == [70, 20, 10]
    rows = torch.cat([p[0][:, 0] for p in parts]).sort().values
    assert torch.equal(rows, X[:, 0])
    for part_X, part_y in parts:
        assert torch.equal(part_X[:, 0], part_y)


def test_standardize_uses_training_statistics():
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    a, b = data.standardize(train, torch.tensor([[5.0, 6.0]]))
    assert torch.allclose(a, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(b, torch.tensor([[3.0, 1.0]]))


def test_make_loader_is_seeded():
    X, y = data.make_regression(20, 1)
    first = [yb for _, yb in data.make_loader(X, y, batch_size=5, seed=3)]
    second = [yb for _, yb in data.make_loader(X, y, batch_size=5, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: data.make_regression(0), ValueError, "Expected `n_samples` to be an int >= 1"),
        (lambda: data.make_regression(5, noise=-1), ValueError, "`noise` to be a float >= 0"),
        (lambda: data.make_classification(10, n_classes=1), ValueError, "`n_classes` to be an int >= 2"),
        (lambda: data.make_classification(10, class_sep=0), ValueError, "`class_sep` to be a float > 0"),
        (lambda: data.make_counts(10, ()), ValueError, "`coef` to be a non-empty sequence"),
        (lambda: data.make_shapes(3, size=8), ValueError, "`size` to be an int >= 16"),
        (lambda: data.split(torch.ones(3), torch.ones(4)), ValueError, "same length"),
        (lambda: data.split(torch.ones(3), torch.ones(3), fractions=(0.5, 0.2)), ValueError, "summing to 1"),
        (lambda: data.make_loader(torch.ones(3), torch.ones(3), batch_size=0), ValueError, "`batch_size`"),
        (lambda: data.standardize(torch.ones(3, 2), torch.ones(3, 3)), ValueError, "with 2 columns"),
        (lambda: data.make_loader([1, 2], [1, 2]), TypeError, "`X` to be a torch.Tensor"),
    ],
)
def test_bad_input_gets_the_template(call, error, match):
    with pytest.raises(error, match=match):
        call()
