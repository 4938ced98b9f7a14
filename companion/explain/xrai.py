"""XRAI (Kapishnikov et al., 2019) for PyTorch: region attributions from integrated gradients.

This follows PAIR's reference implementation (``saliency.core.XRAI``, version
0.2.1) step for step and with its defaults, but computes with tensor operations:

1. **Segments.** PAIR's Felzenszwalb segments at six scales, each dilated by a
   disk of radius 5 (:mod:`companion.explain._segments`), read as (mask, pixel) pairs.
2. **Base attribution.** Integrated gradients from each baseline (by default a
   constant image at the input's minimum, "black", and at its maximum, "white"),
   averaged; all baselines run together through captum, ``batch_size`` path points
   per pass. Channels are merged by taking their maximum. The one departure from
   PAIR is the quadrature rule (``integration``, see below); ``integration="pair"``
   keeps PAIR's.
3. **Ranking.** ``mode="full"``: greedily add the region whose *newly added* pixels
   have the highest mean attribution (the gain), dropping regions that would add
   fewer than ``min_pixel_diff`` pixels, until ``area_threshold`` of the image is
   covered. Every region's gain is updated at once after each addition, from the
   pixels that addition covered. ``mode="fast"``: sort regions once by their own
   mean attribution and add them in that order, skipping those that add fewer than
   ``min_pixel_diff`` new pixels.

Each added region's pixels get its gain; pixels no region covered get the mean
attribution over them, so the map sums to the base attribution's sum. Regions are
ranked by gain (rank 1 = most important).

**Integration rule.** Integrated gradients is an integral along the path from the
baseline to the image, computed from the gradients at ``steps`` points on it; each
point is one forward and backward pass, which on a model of real size is nearly all
of XRAI's time. PAIR's rule puts equal weights ``1/steps`` on evenly spaced points,
both ends included: it gives the two ends the full weight where the trapezoid rule
gives them half, an error that shrinks only as ``1/steps``. Gauss-Legendre's ``steps`` points and weights
(captum's) integrate polynomials of degree up to ``2 * steps - 1`` exactly, so the
smooth part of the path costs few points. A ReLU or max-pooling network is
piecewise linear, though: each pixel's gradient *jumps* along the path, and there
no rule's error per pixel falls faster than ``~1/steps``. In ``benchmarks/xrai.py``
(224x224, against a 1,000-point reference), Gauss-Legendre with 17 points met the
completeness error of PAIR's 100 on two small ReLU CNNs, but its error per pixel was
about three times PAIR's (65 points matched it); on a ReLU ResNet-18 not even 129
points matched PAIR's completeness; with SiLU activations 17 points beat PAIR's 100
on completeness, per pixel and in the top-10% region (``benchmarks/RESULTS.md``).

``steps="auto"`` picks the number of points from the *completeness* error (the
attributions from baseline ``b`` should sum to ``F(x) - F(b)``): it tries 17, 33,
65, ... points per baseline until
``sum_b |sum(attr_b) - (F(x) - F(b))| / sum_b |F(x) - F(b)|`` is below
``max_error``, or the next try would pass ``max_steps``; every try starts afresh
(Gauss-Legendre's points are not nested), so the total is at most about twice the
last try's. Completeness is necessary, not sufficient: a rule can sum right and
still misplace attribution between pixels; the result reports the steps used and the
error reached.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from captum.attr import IntegratedGradients, Saliency

from companion._validation import (
    as_tensor,
    check_choice,
    check_float,
    check_int,
    check_tensor,
    message,
)
from companion.explain._common import check_model, top_fraction_mask
from companion.explain._segments import (
    Membership,
    check_image,
    check_segments,
    felzenszwalb_membership,
)
from companion.utils import model_device

__all__ = ["XRAIResult", "xrai", "INTEGRATIONS", "MIN_PIXEL_DIFF"]

INTEGRATIONS = ("gauss-legendre", "pair")
MIN_PIXEL_DIFF = 50
AUTO_FIRST_STEPS = 17  # points per baseline of the first try of steps="auto" (9 never sufficed at 224x224)
_TIE_TOLERANCE = 1e-10  # gains closer than this (relative to max |attr|) count as tied


@dataclass
class XRAIResult:
    """XRAI's output for one image.

    Attributes:
        attribution_map: ``(H, W)`` float64; each pixel holds the gain of the region
            that first covered it.
        ranks: ``(H, W)`` int64 region rank per pixel, 1 = most important.
        regions: ``(R, H, W)`` bool, the pixels each ranked region added, most
            important first; they partition the image.
        gains: ``(R,)`` float64, each region's gain (mean base attribution over it).
        base_attribution: the attribution XRAI ranked regions by, ``(C, H, W)`` (or
            ``(H, W)`` if one was given so).
        steps: integrated-gradients points per baseline that made ``base_attribution``
            (``None`` if it was given).
        completeness_error: ``sum_b |sum(attr_b) - (F(x) - F(b))| / sum_b |F(x) - F(b)|``
            over the baselines ``b`` (``None`` if ``base_attribution`` was given).
    """

    attribution_map: torch.Tensor
    ranks: torch.Tensor
    regions: torch.Tensor
    gains: torch.Tensor
    base_attribution: torch.Tensor
    steps: int | None = None
    completeness_error: float | None = None

    def top_mask(self, fraction: float) -> torch.Tensor:
        """The ``(H, W)`` bool mask of the most important ``fraction`` of the image."""
        return top_fraction_mask(self.attribution_map, fraction)


def xrai(
    model: torch.nn.Module,
    image: torch.Tensor,
    *,
    target: int,
    steps: int | str = 100,
    integration: str = "pair",
    max_error: float = 0.01,
    max_steps: int = 129,
    baselines: Sequence[str | torch.Tensor] = ("black", "white"),
    mode: str = "full",
    segments: Any = None,
    base_attribution: torch.Tensor | None = None,
    batch_size: int | None = 32,
    area_threshold: float = 1.0,
    min_pixel_diff: int = MIN_PIXEL_DIFF,
) -> XRAIResult:
    """XRAI: rank image regions by the integrated-gradients attribution they hold.

    Args:
        model: a differentiable image classifier ``(N, C, H, W) -> (N, K)``, in eval mode.
        image: one image ``(C, H, W)``, as the model takes it, on any device (it is
            moved to the model's device, where all the work happens).
        target: the class to explain, an int in ``[0, K)``.
        steps: integrated-gradients points per baseline, an int >= 2, or ``"auto"``:
            17, 33, 65, ... points until the completeness error is below ``max_error``
            (see the module's docstring).
        integration: the quadrature rule, one of ``INTEGRATIONS``: ``"gauss-legendre"``
            (captum's Gauss-Legendre points and weights) or ``"pair"`` (PAIR's rule:
            evenly spaced points, ends included, all at weight ``1/steps``, for parity
            with ``saliency.core.XRAI``, whose default is ``steps=100``).
        max_error: the completeness error ``steps="auto"`` stops under, a float > 0.
        max_steps: the most points per baseline ``steps="auto"`` may use, an int >= 17.
        baselines: ``"black"`` (a constant image at ``image.min()``), ``"white"``
            (at ``image.max()``) or ``(C, H, W)`` tensors; attributions are averaged
            over them.
        mode: ``"full"`` (greedy with overlaps, PAIR's default) or ``"fast"``.
        segments: ``None`` to segment with :func:`felzenszwalb_masks`, or masks
            ``(M, H, W)`` (bool tensor, array or list of arrays), used as given.
        base_attribution: ``None`` to compute integrated gradients, or a precomputed
            attribution ``(C, H, W)`` or ``(H, W)``.
        batch_size: path points per forward pass, an int >= 1 (``None``: all at once).
        area_threshold: ``"full"`` mode stops once this share of the image is covered,
            a float in ``[0, 1]``; ``"fast"`` ignores it, as PAIR does.
        min_pixel_diff: a region that would add fewer new pixels is dropped, an int >= 1.

    Returns:
        An :class:`XRAIResult`.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Tanh(),
        ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> image = torch.rand(3, 32, 32)
        >>> result = xrai(model, image, target=0, steps=16)  # PAIR's rule, 16 points
        >>> result.attribution_map.shape, int(result.ranks.min())
        (torch.Size([32, 32]), 1)
        >>> fast = xrai(model, image, target=0, integration="gauss-legendre", steps=4)
        >>> bool(fast.completeness_error < result.completeness_error / 100)  # a smooth model
        True
        >>> xrai(model, image, target=0, integration="gauss-legendre", steps="auto").steps
        17
    """
    model = check_model(model)
    device = model_device(model)
    image = check_image(image).to(device)
    target = check_int("target", target, low=0)
    mode = check_choice("mode", mode, ("full", "fast"))
    area_threshold = check_float("area_threshold", area_threshold, low=0, high=1)
    min_pixel_diff = check_int("min_pixel_diff", min_pixel_diff, low=1)
    height, width = image.shape[1:]

    if segments is not None:
        masks = check_segments(segments, (height, width), device).reshape(-1, height * width)
    used_steps: int | None = None
    error: float | None = None
    if base_attribution is None:
        integration = check_choice("integration", integration, INTEGRATIONS)
        if isinstance(steps, str):
            if steps != "auto":
                raise ValueError(message("steps", "an int >= 2 or 'auto'", steps))
        else:
            steps = check_int("steps", steps, low=2)
        max_error = check_float("max_error", max_error, low=0, low_open=True)
        max_steps = check_int("max_steps", max_steps, low=AUTO_FIRST_STEPS)
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size, low=1)
        starts = _make_baselines(baselines, image)
        attributions, used_steps, error = _integrate_paths(
            model, image, starts, target, integration=integration, steps=steps,
            max_error=max_error, max_steps=max_steps, batch_size=batch_size,
        )
        base_attribution = attributions.mean(0).contiguous()
    else:
        base_attribution = as_tensor("base_attribution", base_attribution).to(device)
        check_tensor("base_attribution", base_attribution, floating=True, finite=True)
        if base_attribution.shape not in (image.shape, image.shape[1:]):
            raise ValueError(message("base_attribution", f"a tensor of shape {tuple(image.shape)}", base_attribution))
    attr = base_attribution.double()
    if attr.ndim == 3:
        attr = attr.max(dim=0).values  # PAIR's channel aggregation

    with _one_cpu_thread(device):
        membership = felzenszwalb_membership(image) if segments is None else Membership.from_masks(masks)
        rank_masks = _rank_full if mode == "full" else _rank_fast
        order_map, gains = rank_masks(
            membership, attr.flatten(), area_threshold=area_threshold, min_pixel_diff=min_pixel_diff
        )
        attribution_map, ranks, regions, gains = _assemble(order_map, gains, attr.flatten())
    return XRAIResult(
        attribution_map.reshape(height, width),
        ranks.reshape(height, width),
        regions.reshape(-1, height, width),
        gains,
        base_attribution,
        used_steps,
        error,
    )


def _integrate_paths(
    model: torch.nn.Module,
    image: torch.Tensor,
    starts: torch.Tensor,
    target: int,
    *,
    integration: str,
    steps: int | str,
    max_error: float,
    max_steps: int,
    batch_size: int | None,
) -> tuple[torch.Tensor, int, float]:
    """Integrated gradients of ``image`` from each baseline in ``starts`` ``(B, C, H, W)``.

    Arguments are :func:`xrai`'s, already checked. Returns the attributions
    ``(B, C, H, W)``, the points per baseline used and their completeness error.
    """
    # channels-last is the faster layout for CPU convolutions (and what PAIR's NHWC arrays give)
    starts = starts.contiguous(memory_format=torch.channels_last)
    images = image.expand(len(starts), *image.shape).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        scores = model(torch.cat([images[:1], starts]))[:, target].double()
    changes = scores[0] - scores[1:]

    def completeness(attributions: torch.Tensor) -> float:
        leaks = attributions.double().flatten(1).sum(1) - changes
        return float(leaks.abs().sum() / changes.abs().sum().clamp_min(1e-12))

    def rule(n: int) -> torch.Tensor:
        if integration == "pair":
            return _pair_rule(model, images, starts, target, n, batch_size)
        return _captum_rule(model, images, starts, target, "gausslegendre", n, batch_size)

    if steps != "auto":
        attributions = rule(int(steps))
        return attributions, int(steps), completeness(attributions)
    n = AUTO_FIRST_STEPS
    attributions = rule(n)
    while (error := completeness(attributions)) >= max_error and 2 * n - 1 <= max_steps:
        n = 2 * n - 1
        attributions = rule(n)
    return attributions, n, error


def _captum_rule(
    model: torch.nn.Module,
    images: torch.Tensor,
    starts: torch.Tensor,
    target: int,
    method: str,
    n: int,
    batch_size: int | None,
) -> torch.Tensor:
    """captum's integrated gradients with ``method`` and ``n`` points, ``(B, C, H, W)``.

    (captum's ``"riemann_trapezoid"`` weighs its points ``1/n``, the ends ``1/(2n)``.)
    """
    internal = None if batch_size is None else max(batch_size, len(images))
    return IntegratedGradients(model).attribute(
        images, baselines=starts, target=target, n_steps=n, method=method, internal_batch_size=internal,
    ).detach()


def _pair_rule(
    model: torch.nn.Module,
    images: torch.Tensor,
    starts: torch.Tensor,
    target: int,
    steps: int,
    batch_size: int | None,
) -> torch.Tensor:
    """Integrated gradients from each baseline with PAIR's rule, ``(B, C, H, W)``.

    PAIR averages the gradients at ``steps`` evenly spaced points from the baseline
    to the image, ends included, each with weight ``1 / steps``. captum's trapezoid
    rule uses the same points and weights except at the two ends, where it halves
    them; adding the missing half weight times the end gradients gives PAIR's rule.
    """
    trapezoid = _captum_rule(model, images, starts, target, "riemann_trapezoid", steps, batch_size)
    ends = Saliency(model).attribute(torch.cat([starts, images]).requires_grad_(), target=target, abs=False)
    end_gradients = ends[: len(starts)] + ends[len(starts) :]
    return trapezoid + (images - starts) * end_gradients / (2 * steps)


def _make_baselines(baselines: Sequence[str | torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """Stack the baselines into ``(B, C, H, W)``; names become constant images (PAIR's min/max)."""
    if isinstance(baselines, (str, torch.Tensor)) or len(baselines) == 0:
        raise ValueError(message("baselines", "a non-empty sequence of 'black', 'white' or tensors", baselines))
    out = []
    for i, baseline in enumerate(baselines):
        if isinstance(baseline, str):
            value = {"black": image.min(), "white": image.max()}.get(baseline)
            if value is None:
                raise ValueError(message(f"baselines[{i}]", "'black', 'white' or a tensor", baseline))
            out.append(torch.full_like(image, float(value)))
        else:
            baseline = as_tensor(f"baselines[{i}]", baseline, dtype=image.dtype).to(image.device)
            if baseline.shape != image.shape:
                raise ValueError(message(f"baselines[{i}]", f"a tensor of shape {tuple(image.shape)}", baseline))
            out.append(baseline)
    return torch.stack(out)


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run on one CPU thread: the ranking is hundreds of small operations, for which
    waking a thread pool costs more than it saves (much more on a busy machine)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)







def _rank_full(
    membership: Membership, attr: torch.Tensor, *, area_threshold: float, min_pixel_diff: int
) -> tuple[torch.Tensor, list[float]]:
    """PAIR's greedy XRAI on the masks of ``membership`` and a ``(P,)`` float64 attribution.

    Returns the step at which each pixel was covered (``-1``: never) and each step's gain.
    """
    n_pixels = attr.numel()
    counts, sums = membership.counts_and_sums(attr)  # over each mask's not-yet-covered pixels
    alive = torch.ones(membership.n_masks, dtype=torch.bool, device=attr.device)
    order_map = torch.full((n_pixels,), -1, dtype=torch.long, device=attr.device)
    tolerance = _TIE_TOLERANCE * float(attr.abs().max())
    gains: list[float] = []
    covered = 0
    while covered / n_pixels <= area_threshold:
        alive &= counts >= min_pixel_diff
        if not bool(alive.any()):
            break
        gain = torch.where(alive, sums / counts.clamp_min(1), -torch.inf)
        # PAIR keeps the first mask with the highest gain; read ties within round-off as ties
        best = int(torch.argmax((gain >= gain.max() - tolerance).to(torch.uint8)))
        new = _add_mask(membership.pixels_of(best), order_map, len(gains))
        gains.append(float(attr[new].mean()))
        covered += len(new)
        alive[best] = False
        mask, pixel = membership.masks_of(new)  # every mask that held a newly covered pixel
        counts.index_add_(0, mask, torch.full_like(mask, -1))
        sums.index_add_(0, mask, -attr[pixel])
    return order_map, gains


def _rank_fast(
    membership: Membership, attr: torch.Tensor, *, area_threshold: float, min_pixel_diff: int
) -> tuple[torch.Tensor, list[float]]:
    """PAIR's fast XRAI: masks in order of their own gain, each adding its new pixels."""
    del area_threshold  # PAIR's fast algorithm ignores it
    counts, sums = membership.counts_and_sums(attr)
    own_gain = torch.where(counts > 0, sums / counts.clamp_min(1), -torch.inf)
    order = torch.sort(own_gain, descending=True, stable=True).indices
    order_map = torch.full((attr.numel(),), -1, dtype=torch.long, device=attr.device)
    gains: list[float] = []
    position = 0
    while True:
        # the next mask in order that still adds enough new pixels (counts only fall)
        eligible = torch.nonzero(counts[order[position:]] >= min_pixel_diff).flatten()
        if len(eligible) == 0:
            break
        position += int(eligible[0])
        new = _add_mask(membership.pixels_of(int(order[position])), order_map, len(gains))
        position += 1
        gains.append(float(attr[new].mean()))
        mask, _ = membership.masks_of(new)
        counts.index_add_(0, mask, torch.full_like(mask, -1))
    return order_map, gains


def _add_mask(pixels: torch.Tensor, order_map: torch.Tensor, step: int) -> torch.Tensor:
    """Mark the uncovered ones of ``pixels`` as covered at ``step``; return them."""
    new = pixels[order_map[pixels] < 0]
    order_map[new] = step
    return new


def _assemble(
    order_map: torch.Tensor, step_gains: list[float], attr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attribution map, rank map, ranked regions and their gains from the covering order."""
    device = attr.device
    gains = torch.tensor(step_gains, dtype=torch.float64, device=device)
    uncovered = order_map < 0
    if bool(uncovered.any()):  # PAIR gives the rest one value that keeps the sum
        gains = torch.cat([gains, attr[uncovered].mean()[None]])
        order_map = torch.where(uncovered, len(step_gains), order_map)
    ranked = torch.sort(-gains[: len(step_gains)], stable=True).indices  # the rest stays last
    ranked = torch.cat([ranked, torch.arange(len(step_gains), len(gains), device=device)])
    rank_of_step = torch.empty_like(ranked)
    rank_of_step[ranked] = torch.arange(1, len(ranked) + 1, device=device)
    regions = order_map[None, :] == ranked[:, None]
    return gains[order_map], rank_of_step[order_map], regions, gains[ranked]
