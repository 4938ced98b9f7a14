"""XRAI's segments: PAIR's Felzenszwalb masks exactly, and the two ways to the ranking's membership agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.transform import resize

from companion.explain._segments import Membership, felzenszwalb_masks, felzenszwalb_membership


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """scikit-image's coffee photograph as a float32 (64, 64, 3) array in [0, 1]."""
    return resize(data.coffee(), (64, 64), anti_aliasing=True).astype(np.float32)


def chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("radius", [0, 2, 5])
def test_segments_equal_pairs(image, radius):
    saliency_xrai = pytest.importorskip("saliency.core.xrai")
    ours = felzenszwalb_masks(chw(image), dilation_radius=radius)
    theirs = np.stack(saliency_xrai._get_segments_felzenszwalb(image, dilation_rad=radius))
    assert ours.shape == theirs.shape
    assert np.array_equal(ours.numpy(), theirs)


def test_membership_from_packed_bits_equals_membership_from_the_masks(image):
    fast = felzenszwalb_membership(chw(image))
    dense = Membership.from_masks(felzenszwalb_masks(chw(image)).reshape(-1, 64 * 64))
    assert fast.n_masks == dense.n_masks
    for name in ("mask_of_pair", "pixel_start", "pixel_of_pair", "mask_start"):
        assert torch.equal(getattr(fast, name), getattr(dense, name)), name
    mask = dense.n_masks // 2
    assert torch.equal(fast.pixels_of(mask), felzenszwalb_masks(chw(image))[mask].flatten().nonzero()[:, 0])


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Expected `image` to be a float tensor of shape \(C, H, W\)"):
        felzenszwalb_masks(torch.rand(16, 16))
    with pytest.raises(ValueError, match=r"Expected `dilation_radius` to be an int >= 0, but got -1\."):
        felzenszwalb_masks(torch.rand(3, 16, 16), dilation_radius=-1)
