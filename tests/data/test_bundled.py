import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer as sk_breast_cancer
from sklearn.datasets import load_digits as sk_digits

from companion.data import load_breast_cancer, load_digits


def test_bundled_data_match_scikit_learn():
    X, y = load_digits()
    assert np.allclose(X.numpy() * 16, sk_digits().data)
    assert np.array_equal(y.numpy(), sk_digits().target)
    assert load_digits(as_images=True).X.shape == (1797, 1, 8, 8)
    bc = load_breast_cancer()
    assert np.allclose(bc.X.numpy(), sk_breast_cancer().data, rtol=1e-6)
    assert np.array_equal(bc.y.numpy(), sk_breast_cancer().target)
    assert len(bc.feature_names) == 30


def test_load_digits_images_are_the_rows_reshaped():
    rows, images = load_digits().X, load_digits(as_images=True).X
    assert np.array_equal(images.reshape(len(images), -1).numpy(), rows.numpy())
    assert load_digits().target_names == [str(d) for d in range(10)]


def test_bad_input_gets_the_template():
    with pytest.raises(TypeError, match=r"Expected `as_images` to be a bool, but got 'yes'\."):
        load_digits(as_images="yes")
