"""aggregate_attributions, fraction_inside and top_fraction_mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.explain import aggregate_attributions, fraction_inside, top_fraction_mask


def test_aggregate_over_all_and_slices_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 4)).astype(np.float32)
    groups = np.array(["a", "b"] * 10)
    out = aggregate_attributions(torch.from_numpy(a), groups=list(groups))
    assert list(out) == ["all", "a", "b"]
    np.testing.assert_allclose(out["all"].numpy(), np.abs(a).mean(0), rtol=1e-6)
    np.testing.assert_allclose(out["b"].numpy(), np.abs(a[groups == "b"]).mean(0), rtol=1e-6)
    signed = aggregate_attributions(torch.from_numpy(a), groups=torch.tensor(groups == "a"), reduce="mean")
    np.testing.assert_allclose(signed[True].numpy(), a[groups == "a"].mean(0), rtol=1e-5, atol=1e-6)


def test_mean_abs_keeps_what_signed_means_cancel():
    a = torch.tensor([[1.0, 2.0], [-1.0, 2.0]])  # feature 0 matters in both rows, with opposite signs
    assert aggregate_attributions(a, reduce="mean")["all"].tolist() == [0.0, 2.0]
    assert aggregate_attributions(a)["all"].tolist() == [1.0, 2.0]


def test_image_attributions_keep_their_shape():
    out = aggregate_attributions(torch.rand(5, 3, 8, 8))
    assert out["all"].shape == (3, 8, 8)


def test_fraction_inside_per_image():
    selected = torch.zeros(2, 4, 4, dtype=torch.bool)
    selected[0, :2] = True  # 8 pixels, 4 inside
    truth = torch.zeros(2, 4, 4, dtype=torch.bool)
    truth[:, 0] = True
    torch.testing.assert_close(fraction_inside(selected, truth), torch.tensor([0.5, 0.0]))


def test_top_fraction_mask_matches_numpy_percentile():
    saliency = torch.from_numpy(np.random.default_rng(1).standard_normal((16, 16)))
    ours = top_fraction_mask(saliency, 0.1)
    expected = saliency.numpy() >= np.percentile(saliency.numpy(), 90, method="higher")
    assert np.array_equal(ours.numpy(), expected)
    assert abs(int(ours.sum()) - 26) <= 1


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: aggregate_attributions(torch.rand(4)), ValueError, r"Expected `attributions` to be a tensor of shape \(N, ...\)"),
        (lambda: aggregate_attributions(torch.rand(4, 2), reduce="max"), ValueError, r"Expected `reduce` to be one of"),
        (lambda: aggregate_attributions(torch.rand(4, 2), groups=[0, 1]), ValueError, r"Expected `groups` to be 4 slice labels"),
        (lambda: fraction_inside(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.bool)), ValueError, r"Expected `selected` to be a bool mask"),
        (lambda: fraction_inside(torch.ones(2, 2, dtype=torch.bool), torch.ones(3, 3, dtype=torch.bool)), ValueError, r"Expected `truth` to be a mask of shape \(2, 2\)"),
        (lambda: top_fraction_mask(torch.rand(4), 0.0), ValueError, r"Expected `fraction` to be a float in \(0, 1\]"),
    ],
)
def test_bad_arguments_are_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()
