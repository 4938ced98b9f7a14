"""The attribution plots in companion.plots draw what they are given."""

from __future__ import annotations

import numpy as np
import torch

from companion.plots import plot_attribution_overlay, plot_feature_attributions, plot_top_region


def test_overlay_draws_image_and_channel_summed_heat_map():
    attribution = torch.randn(3, 8, 8)
    ax = plot_attribution_overlay(torch.rand(3, 8, 8), attribution, title="IG")
    images = ax.get_images()
    assert len(images) == 2 and ax.get_title() == "IG"
    np.testing.assert_allclose(images[1].get_array(), attribution.abs().sum(0).numpy(), rtol=1e-6)


def test_top_region_keeps_the_masked_pixels_bright():
    torch.manual_seed(0)
    image = torch.rand(3, 8, 8)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4] = True
    shown = np.asarray(plot_top_region(image, mask).get_images()[0].get_array())
    scaled = ((image - image.min()) / (image.max() - image.min())).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(shown[:4], scaled[:4], rtol=1e-6)
    np.testing.assert_allclose(shown[4:], 0.2 * scaled[4:], rtol=1e-6)


def test_feature_bars_are_sorted_by_magnitude():
    ax = plot_feature_attributions(torch.tensor([0.1, -3.0, 1.0]), ["a", "b", "c"])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["a", "c", "b"]
    assert [p.get_width() for p in ax.patches] == [np.float64(0.10000000149011612), 1.0, -3.0]
