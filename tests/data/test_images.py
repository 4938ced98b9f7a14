import pytest
import torch

from companion.data import SHAPE_CLASSES, make_shapes


def test_make_shapes_masks_match_the_pixels():
    images, labels, masks = make_shapes(30, size=24, noise=0.0, seed=0)
    assert images.shape == (30, 3, 24, 24) and masks.shape == (30, 24, 24)
    assert set(labels.tolist()) == {0, 1, 2}
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    for img, mask in zip(images, masks):
        inside, outside = img[:, mask], img[:, ~mask]
        assert mask.any() and (~mask).any()
        # without noise, the object is one colour and the background another
        assert torch.allclose(inside, inside[:, :1]) and torch.allclose(outside, outside[:, :1])


def test_make_shapes_is_seeded_and_labels_name_the_shape():
    first, second = make_shapes(9, size=16, seed=3), make_shapes(9, size=16, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert SHAPE_CLASSES == ("circle", "square", "triangle")
    _, labels, masks = make_shapes(60, size=32, noise=0.0, seed=1)
    # a square fills its bounding box, a circle about pi/4 of it, a triangle about half of it
    fill = []
    for mask in masks:
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        fill.append(float(mask.sum() / box))
    fill = torch.tensor(fill)
    assert fill[labels == SHAPE_CLASSES.index("square")].min() > 0.95
    assert fill[labels == SHAPE_CLASSES.index("circle")].mean() == pytest.approx(torch.pi / 4, abs=0.06)
    assert fill[labels == SHAPE_CLASSES.index("triangle")].mean() == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_samples": 0}, ValueError, r"Expected `n_samples` to be an int >= 1, but got 0\."),
        ({"size": 8}, ValueError, r"Expected `size` to be an int >= 16, but got 8\."),
        ({"noise": -0.1}, ValueError, r"Expected `noise` to be a float >= 0, but got -0\.1\."),
        ({"seed": -1}, ValueError, r"Expected `seed` to be an int >= 0, but got -1\."),
        ({"size": 16.0}, TypeError, r"Expected `size` to be an int >= 16"),
    ],
)
def test_bad_input_gets_the_template(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_shapes(**kwargs)
