"""Tests for companion.plots.attributions: what each figure draws, and the template errors."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from companion.explain import top_fraction_mask
from companion.plots.attributions import (
    plot_attribution_overlay,
    plot_feature_attributions,
    plot_top_region,
)

# --- what each figure draws -----------------------------------------------------------


def test_overlay_draws_image_and_channel_summed_heat_map():
    attribution = torch.randn(3, 8, 8)
    ax = plot_attribution_overlay(torch.rand(3, 8, 8), attribution, title="IG")
    images = ax.get_images()
    assert len(images) == 2 and ax.get_title() == "IG" and not ax.axison
    np.testing.assert_allclose(images[1].get_array(), attribution.abs().sum(0).numpy(), rtol=1e-6)
    assert images[1].get_alpha() == 0.6


def test_overlay_of_a_grey_image_draws_its_values_scaled_to_0_1():
    image = torch.tensor([[0.0, 2.0], [4.0, 4.0]], requires_grad=True)
    ax = plot_attribution_overlay(image, torch.ones(2, 2), alpha=0.3)
    np.testing.assert_allclose(ax.get_images()[0].get_array(), [[0.0, 0.5], [1.0, 1.0]])
    assert ax.get_images()[1].get_alpha() == 0.3


def test_top_region_keeps_the_masked_pixels_bright():
    torch.manual_seed(0)
    image = torch.rand(3, 8, 8)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4] = True
    ax = plot_top_region(image, mask, title="top")
    shown = np.asarray(ax.get_images()[0].get_array())
    scaled = ((image - image.min()) / (image.max() - image.min())).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(shown[:4], scaled[:4], rtol=1e-6)
    np.testing.assert_allclose(shown[4:], 0.2 * scaled[4:], rtol=1e-6)
    assert len(ax.collections) == 1 and ax.get_title() == "top"  # the mask's outline


def test_top_region_takes_a_mask_from_top_fraction_mask():
    attribution = torch.arange(16.0).reshape(4, 4)
    mask = top_fraction_mask(attribution, 0.25)
    shown = np.asarray(plot_top_region(torch.ones(1, 4, 4) * attribution, mask).get_images()[0].get_array())
    assert (shown[3] > 0.75).all() and (shown[:3] <= 0.2).all()


def test_feature_bars_are_sorted_by_magnitude():
    ax = plot_feature_attributions(torch.tensor([0.1, -3.0, 1.0]), ["a", "b", "c"], title="mean")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["a", "c", "b"] and ax.get_title() == "mean"
    assert [p.get_width() for p in ax.patches] == [np.float64(0.10000000149011612), 1.0, -3.0]
    assert ax.patches[2].get_facecolor() != ax.patches[1].get_facecolor()  # negative in red


# --- the template errors ---------------------------------------------------------------

IMAGE = torch.rand(3, 8, 8)
MASK = torch.ones(8, 8, dtype=torch.bool)

BAD = [
    (lambda: plot_attribution_overlay(None, IMAGE), TypeError, r"Expected `image` to be a tensor, array"),
    (lambda: plot_attribution_overlay(torch.rand(1, 3, 8, 8), IMAGE), ValueError,
     r"Expected `image` to be a tensor with 2 or 3 dimensions, but got a tensor of shape \(1, 3, 8, 8\)"),
    (lambda: plot_attribution_overlay(IMAGE, torch.rand(3, 8, 7)), ValueError,
     r"Expected `attribution` to be of the image's height and width \(8, 8\), "
     r"but got an array of shape \(3, 8, 7\)"),
    (lambda: plot_attribution_overlay(IMAGE, IMAGE, alpha=1.5), ValueError,
     r"Expected `alpha` to be a float in \[0, 1\], but got 1.5\."),
    (lambda: plot_attribution_overlay(IMAGE, IMAGE, title=None), TypeError, r"`title` to be a str"),
    (lambda: plot_attribution_overlay(IMAGE * float("nan"), IMAGE), ValueError,
     r"Expected `image` to be a tensor of finite values"),
    (lambda: plot_top_region(IMAGE, torch.ones(4, 4, dtype=torch.bool)), ValueError,
     r"Expected `mask` to be of the image's height and width \(8, 8\)"),
    (lambda: plot_top_region(IMAGE, torch.full((8, 8), 0.5)), ValueError,
     r"Expected `mask` to be a mask of booleans \(or 0 and 1\), .*: found 0.5 at \[0, 0\]\."),
    (lambda: plot_top_region(IMAGE, "top"), TypeError, r"Expected `mask` to be a tensor, array"),
    (lambda: plot_top_region(IMAGE, MASK, title=3), TypeError, r"`title` to be a str, but got 3\."),
    (lambda: plot_feature_attributions([0.1, 0.2], ["a"]), ValueError,
     r"Expected `names` to be 2 names \(or none\), but got \['a'\]\."),
    (lambda: plot_feature_attributions([[0.1, 0.2]], ["a", "b"]), ValueError,
     r"Expected `values` to be a tensor with 1 dimensions"),
    (lambda: plot_feature_attributions({"a": 0.1}, ["a"]), TypeError, r"Expected `values` to be a tensor, array"),
    (lambda: plot_feature_attributions([0.1], None), TypeError,
     r"Expected `names` to be a sequence of names, but got None\."),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_raises_the_template_error_before_any_figure_opens(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert not plt.get_fignums()


VALID = {
    plot_attribution_overlay: lambda ax: plot_attribution_overlay(IMAGE, IMAGE, ax=ax),
    plot_top_region: lambda ax: plot_top_region(IMAGE, MASK, ax=ax),
    plot_feature_attributions: lambda ax: plot_feature_attributions([0.1], ["a"], ax=ax),
}


@pytest.mark.parametrize("plot", VALID, ids=lambda f: f.__name__)
def test_draws_on_the_given_axes_and_refuses_anything_else(plot):
    _, ax = plt.subplots()
    assert VALID[plot](ax) is ax and ax.has_data()
    with pytest.raises(TypeError, match=r"Expected `ax` to be a matplotlib Axes or None, but got 'left'"):
        VALID[plot]("left")
