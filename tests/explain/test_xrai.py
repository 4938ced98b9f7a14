"""xrai: parity with PAIR's saliency.core.XRAI (map, ranking, end to end), the Gauss-Legendre rule and invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

saliency_xrai = pytest.importorskip("saliency.core.xrai")
from captum.attr import IntegratedGradients  # noqa: E402
from saliency.core import INPUT_OUTPUT_GRADIENTS  # noqa: E402
from skimage import data  # noqa: E402
from skimage.transform import resize  # noqa: E402

from companion.explain import XRAIResult, top_fraction_mask, xrai  # noqa: E402

PAIR = saliency_xrai.XRAI


def photo(size: int = 64) -> np.ndarray:
    """scikit-image's coffee photograph as a float32 (size, size, 3) array in [0, 1]."""
    return resize(data.coffee(), (size, size), anti_aliasing=True).astype(np.float32)


def chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


def tiny_cnn(activation: type = torch.nn.ReLU, pool: type = torch.nn.MaxPool2d) -> torch.nn.Module:
    """ReLU and max pooling (piecewise linear) by default; Tanh and AvgPool2d make it smooth."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 5, padding=2), activation(), pool(2),
        torch.nn.Conv2d(6, 6, 3, padding=1), activation(),
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(96, 3),
    ).eval()


def smooth_attribution(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A float64 attribution with blobs (like a real one) plus noise that breaks ties."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((*shape[:-2], 8, 8))
    out = resize(coarse, shape, order=1) + 0.05 * rng.standard_normal(shape)
    return out.astype(np.float64)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return photo()


@pytest.fixture(scope="module")
def pair_segments(image) -> list[np.ndarray]:
    return saliency_xrai._get_segments_felzenszwalb(image)


def pair_ranking(attr: np.ndarray, segments, mode: str, area_threshold: float = 1.0):
    if mode == "full":
        return PAIR._xrai(attr, segments, area_perc_th=area_threshold)
    return PAIR._xrai_fast(attr, segments)


@pytest.mark.parametrize(("mode", "area_threshold"), [("full", 1.0), ("full", 0.3), ("fast", 1.0)])
def test_same_segments_and_attribution_give_pairs_map_and_ranking(image, pair_segments, mode, area_threshold):
    attr3 = smooth_attribution((3, 64, 64))  # channels are merged by their maximum, as PAIR does
    theirs_map, theirs_ranks = pair_ranking(attr3.max(axis=0), pair_segments, mode, area_threshold)
    ours = xrai(
        tiny_cnn(), chw(image), target=0, mode=mode, segments=pair_segments,
        base_attribution=torch.from_numpy(attr3), area_threshold=area_threshold,
    )
    np.testing.assert_allclose(ours.attribution_map.numpy(), theirs_map, rtol=0, atol=1e-12)
    assert np.array_equal(ours.ranks.numpy(), theirs_ranks)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_ties_are_broken_like_pair(image, pair_segments, mode):
    """Duplicate masks and a piecewise-constant attribution make exact ties."""
    segments = [pair_segments[3], *pair_segments, pair_segments[3]]
    attr = np.round(smooth_attribution((64, 64), seed=1), 0)
    theirs_map, theirs_ranks = pair_ranking(attr, segments, mode)
    ours = xrai(tiny_cnn(), chw(image), target=0, mode=mode, segments=segments, base_attribution=torch.from_numpy(attr))
    np.testing.assert_allclose(ours.attribution_map.numpy(), theirs_map, rtol=0, atol=1e-12)
    assert np.array_equal(ours.ranks.numpy(), theirs_ranks)


def pair_call_model(model: torch.nn.Module, target: int):
    def call(batch, call_model_args=None, expected_keys=None):
        x = torch.tensor(np.asarray(batch), dtype=torch.float32).permute(0, 3, 1, 2).requires_grad_(True)
        grads = torch.autograd.grad(model(x)[:, target].sum(), x)[0]
        return {INPUT_OUTPUT_GRADIENTS: grads.permute(0, 2, 3, 1).numpy()}

    return call


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("target", [0, 2])
def test_end_to_end_agrees_with_pair(image, mode, target):
    model, steps = tiny_cnn(), 20
    params = saliency_xrai.XRAIParameters(steps=steps, algorithm=mode, return_ig_attributions=True)
    theirs = PAIR().GetMaskWithDetails(image, pair_call_model(model, target), batch_size=steps, extra_parameters=params)
    ours = xrai(model, chw(image), target=target, integration="pair", steps=steps, mode=mode)
    # the base attribution is PAIR's integrated gradients averaged over black and white
    pair_ig = np.mean(theirs.ig_attribution, axis=0).transpose(2, 0, 1)
    np.testing.assert_allclose(ours.base_attribution.numpy(), pair_ig, rtol=1e-3, atol=1e-6 * np.abs(pair_ig).max())
    top_theirs = top_fraction_mask(torch.from_numpy(theirs.attribution_mask), 0.1)
    top_ours = ours.top_mask(0.1)
    iou = (top_ours & top_theirs).sum() / (top_ours | top_theirs).sum()
    assert float(iou) >= 0.9


def pixel_error(result: XRAIResult, reference: XRAIResult) -> float:
    return float((result.base_attribution - reference.base_attribution).norm() / reference.base_attribution.norm())


def top_iou(result: XRAIResult, reference: XRAIResult) -> float:
    a, b = result.top_mask(0.1), reference.top_mask(0.1)
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def reference(image) -> XRAIResult:
    """A high-step estimate: PAIR's rule with 1,000 points per baseline (its bias ~ 1/1000)."""
    return xrai(tiny_cnn(), chw(image), target=2, integration="pair", steps=1000, batch_size=500)


@pytest.mark.parametrize("steps", [8, 16])
def test_gauss_legendre_is_closer_to_the_reference_than_pairs_rule_at_equal_steps(image, reference, steps):
    """On a ReLU + max-pooling network (gradients jump along the path), per pixel."""
    pair_rule = xrai(tiny_cnn(), chw(image), target=2, integration="pair", steps=steps)
    gauss = xrai(tiny_cnn(), chw(image), target=2, integration="gauss-legendre", steps=steps)
    assert pixel_error(gauss, reference) < 0.6 * pixel_error(pair_rule, reference)  # measured: 0.45


@pytest.mark.parametrize("steps", [4, 16])
def test_gauss_legendre_completeness_error_is_far_below_pairs_rule_on_a_smooth_model(image, steps):
    model = tiny_cnn(torch.nn.Tanh, torch.nn.AvgPool2d)
    pair_rule = xrai(model, chw(image), target=2, integration="pair", steps=steps)
    gauss = xrai(model, chw(image), target=2, integration="gauss-legendre", steps=steps)
    assert gauss.completeness_error < pair_rule.completeness_error / 100  # measured: / 10,000 or more


def test_completeness_error_is_the_sum_rule_of_captums_gauss_legendre(image):
    model, x = tiny_cnn(), chw(image)
    result = xrai(model, x, target=1, integration="gauss-legendre", steps=8)
    starts = torch.stack([torch.full_like(x, float(x.min())), torch.full_like(x, float(x.max()))])
    attributions = IntegratedGradients(model).attribute(
        x.expand(2, *x.shape), baselines=starts, target=1, n_steps=8, method="gausslegendre"
    )
    torch.testing.assert_close(result.base_attribution, attributions.mean(0), rtol=1e-4, atol=1e-7)
    with torch.no_grad():
        changes = (model(x[None])[0, 1] - model(starts)[:, 1]).double()
    expected = (attributions.double().sum((1, 2, 3)) - changes).abs().sum() / changes.abs().sum()
    assert result.steps == 8
    assert result.completeness_error == pytest.approx(float(expected), rel=1e-3)


def test_auto_takes_the_first_order_under_the_tolerance(image):
    model, x = tiny_cnn(), chw(image)
    result = xrai(model, x, target=2, integration="gauss-legendre", steps="auto", max_error=0.006)
    assert result.steps == 33  # measured errors: 8.3e-3 at 17 points, 5.3e-3 at 33
    assert result.completeness_error < 0.006
    before = xrai(model, x, target=2, integration="gauss-legendre", steps=17)
    assert before.completeness_error >= 0.006
    same = xrai(model, x, target=2, integration="gauss-legendre", steps=33)
    assert torch.equal(same.attribution_map, result.attribution_map)


def test_auto_stops_at_max_steps(image):
    result = xrai(tiny_cnn(), chw(image), target=2, integration="gauss-legendre", steps="auto",
                  max_error=1e-9, max_steps=20)
    assert result.steps == 17  # 33 would pass 20
    assert result.completeness_error >= 1e-9


def test_auto_map_matches_the_reference(image, reference):
    result = xrai(tiny_cnn(), chw(image), target=2, integration="gauss-legendre", steps="auto", max_error=2e-3)
    assert result.steps == 129  # measured error 1.3e-3
    assert top_iou(result, reference) >= 0.95  # measured: 1.00
    assert pixel_error(result, reference) < 0.02  # measured: 0.005


@pytest.fixture(scope="module")
def result(image) -> XRAIResult:
    return xrai(tiny_cnn(), chw(image), target=2, steps=10)


def test_invariants(result):
    attr = result.base_attribution.double().max(dim=0).values
    torch.testing.assert_close(result.attribution_map.sum(), attr.sum(), rtol=1e-9, atol=1e-9)
    n_regions = len(result.regions)
    assert result.ranks.min() == 1 and result.ranks.max() == n_regions
    assert torch.equal(result.regions.sum(dim=0), torch.ones(64, 64, dtype=torch.long))  # a partition
    for rank, (region, gain) in enumerate(zip(result.regions, result.gains), start=1):
        assert torch.all(result.ranks[region] == rank)
        assert torch.all(result.attribution_map[region] == gain)  # constant over each region
        torch.testing.assert_close(gain, attr[region].mean())  # gain = mean attribution over it
    greedy = result.gains[:-1]  # the last region may be the uncovered rest, ranked last whatever its gain
    assert torch.all(greedy[:-1] >= greedy[1:])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_equals_cpu(image):
    attr = torch.from_numpy(smooth_attribution((3, 64, 64)))
    cpu = xrai(tiny_cnn(), chw(image), target=0, base_attribution=attr)
    gpu = xrai(tiny_cnn().cuda(), chw(image), target=0, base_attribution=attr)
    assert gpu.attribution_map.device.type == "cuda"
    assert torch.equal(cpu.ranks, gpu.ranks.cpu())
    torch.testing.assert_close(cpu.attribution_map, gpu.attribution_map.cpu())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "greedy"}, ValueError, r"Expected `mode` to be one of \('full', 'fast'\)"),
        ({"target": -1}, ValueError, r"Expected `target` to be an int >= 0, but got -1\."),
        ({"steps": 1}, ValueError, r"Expected `steps` to be an int >= 2, but got 1\."),
        ({"steps": "many"}, ValueError, r"Expected `steps` to be an int >= 2 or 'auto', but got 'many'\."),
        ({"steps": 2.5}, TypeError, r"Expected `steps` to be an int >= 2, but got 2\.5\."),
        ({"integration": "simpson"}, ValueError, r"Expected `integration` to be one of \('gauss-legendre', 'pair'\)"),
        ({"max_error": 0.0}, ValueError, r"Expected `max_error` to be a float > 0, but got 0\.0\."),
        ({"max_steps": 16}, ValueError, r"Expected `max_steps` to be an int >= 17, but got 16\."),
        ({"batch_size": 0}, ValueError, r"Expected `batch_size` to be an int >= 1, but got 0\."),
        ({"baselines": ("grey",)}, ValueError, r"Expected `baselines\[0\]` to be 'black', 'white' or a tensor"),
        ({"baselines": torch.zeros(3, 16, 16)}, ValueError, r"Expected `baselines` to be a non-empty sequence"),
        ({"base_attribution": torch.zeros(3, 8, 8)}, ValueError, r"Expected `base_attribution` to be a tensor of shape \(3, 16, 16\)"),
        ({"segments": np.zeros((2, 8, 8), dtype=bool)}, ValueError, r"Expected `segments` to be a non-empty bool stack"),
        ({"area_threshold": 1.5}, ValueError, r"Expected `area_threshold` to be a float in \[0, 1\]"),
        ({"min_pixel_diff": 0}, ValueError, r"Expected `min_pixel_diff` to be an int >= 1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    args = {"target": 0, **kwargs}
    with pytest.raises(error, match=match):
        xrai(tiny_cnn(), torch.rand(3, 16, 16), **args)


def test_bad_image_is_rejected():
    with pytest.raises(ValueError, match=r"Expected `image` to be a float tensor of shape \(C, H, W\)"):
        xrai(tiny_cnn(), torch.rand(1, 3, 16, 16), target=0)
