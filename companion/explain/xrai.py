"""XRAI (Kapishnikov et al., 2019) for PyTorch: region attributions from integrated gradients.

This follows PAIR's reference implementation (``saliency.core.XRAI``, version
0.2.1) step for step and with its defaults, but computes with tensor operations:

1. **Segments.** Felzenszwalb's graph segmentation (scikit-image, the same call as
   PAIR) of the image rescaled to ``[-1, 1]`` and resized to 224×224, at scales 50,
   100, 150, 250, 500 and 1200, sigma 0.8, minimum segment size 150; the label maps
   are resized back and each segment becomes a mask, dilated by a disk of radius 5.
   Masks are packed as bits, so the dilation of all masks of all scales is a few
   shifted ORs; they are then stored as (mask, pixel) pairs.
2. **Base attribution.** Integrated gradients from each baseline (by default a
   constant image at the input's minimum, "black", and at its maximum, "white"),
   with PAIR's quadrature rule, averaged; all baselines and path steps run as one
   batch through captum.
   Channels are merged by taking their maximum.
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
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from captum.attr import Saliency

from companion._validation import (
    as_tensor,
    check_choice,
    check_float,
    check_int,
    check_tensor,
    message,
)
from companion.explain._common import check_model, model_device, top_fraction_mask
from companion.explain.integrated_gradients import integrated_gradients

FELZENSZWALB_SCALES = (50, 100, 150, 250, 500, 1200)
FELZENSZWALB_SIGMA = 0.8
FELZENSZWALB_MIN_SIZE = 150
SEGMENTATION_SIZE = (224, 224)
DILATION_RADIUS = 5
MIN_PIXEL_DIFF = 50
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
    """

    attribution_map: torch.Tensor
    ranks: torch.Tensor
    regions: torch.Tensor
    gains: torch.Tensor
    base_attribution: torch.Tensor

    def top_mask(self, fraction: float) -> torch.Tensor:
        """The ``(H, W)`` bool mask of the most important ``fraction`` of the image."""
        return top_fraction_mask(self.attribution_map, fraction)


def xrai(
    model: torch.nn.Module,
    image: torch.Tensor,
    *,
    target: int,
    steps: int = 100,
    baselines: Sequence[str | torch.Tensor] = ("black", "white"),
    mode: str = "full",
    segments: Any = None,
    base_attribution: torch.Tensor | None = None,
    batch_size: int | None = None,
    area_threshold: float = 1.0,
    min_pixel_diff: int = MIN_PIXEL_DIFF,
) -> XRAIResult:
    """XRAI: rank image regions by the integrated-gradients attribution they hold.

    Args:
        model: a differentiable image classifier ``(N, C, H, W) -> (N, K)``, in eval mode.
        image: one image ``(C, H, W)``, as the model takes it, on any device (it is
            moved to the model's device, where all the work happens).
        target: the class to explain, an int in ``[0, K)``.
        steps: integrated-gradients points per baseline (PAIR's rule: equal weights on
            evenly spaced points, ends included), an int >= 2.
        baselines: ``"black"`` (a constant image at ``image.min()``), ``"white"``
            (at ``image.max()``) or ``(C, H, W)`` tensors; attributions are averaged
            over them.
        mode: ``"full"`` (greedy with overlaps, PAIR's default) or ``"fast"``.
        segments: ``None`` to segment with :func:`felzenszwalb_masks`, or masks
            ``(M, H, W)`` (bool tensor, array or list of arrays), used as given.
        base_attribution: ``None`` to compute integrated gradients, or a precomputed
            attribution ``(C, H, W)`` or ``(H, W)``.
        batch_size: path points per forward pass (``None``: all at once).
        area_threshold: ``"full"`` mode stops once this share of the image is covered,
            a float in ``[0, 1]``; ``"fast"`` ignores it, as PAIR does.
        min_pixel_diff: a region that would add fewer new pixels is dropped, an int >= 1.

    Returns:
        An :class:`XRAIResult`.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1),
        ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> result = xrai(model, torch.rand(3, 32, 32), target=0, steps=8)
        >>> result.attribution_map.shape, int(result.ranks.min())
        (torch.Size([32, 32]), 1)
    """
    model = check_model(model)
    device = model_device(model)
    image = _check_image(image).to(device)
    target = check_int("target", target, low=0)
    mode = check_choice("mode", mode, ("full", "fast"))
    area_threshold = check_float("area_threshold", area_threshold, low=0, high=1)
    min_pixel_diff = check_int("min_pixel_diff", min_pixel_diff, low=1)
    height, width = image.shape[1:]

    if segments is not None:
        masks = _check_segments(segments, (height, width), device).reshape(-1, height * width)
    if base_attribution is None:
        steps = check_int("steps", steps, low=2)
        starts = _make_baselines(baselines, image)
        base_attribution = _pair_integrated_gradients(model, image, starts, target, steps, batch_size).mean(0).contiguous()
    else:
        base_attribution = as_tensor("base_attribution", base_attribution).to(device)
        check_tensor("base_attribution", base_attribution, floating=True, finite=True)
        if base_attribution.shape not in (image.shape, image.shape[1:]):
            raise ValueError(message("base_attribution", f"a tensor of shape {tuple(image.shape)}", base_attribution))
    attr = base_attribution.double()
    if attr.ndim == 3:
        attr = attr.max(dim=0).values  # PAIR's channel aggregation

    with _one_cpu_thread(device):
        membership = _segment(image) if segments is None else _Membership.from_masks(masks)
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
    )


def _pair_integrated_gradients(
    model: torch.nn.Module,
    image: torch.Tensor,
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
    All baselines and steps run as one batch (split by ``batch_size``).
    """
    # channels-last is the faster layout for CPU convolutions (and what PAIR's NHWC arrays give)
    starts = starts.contiguous(memory_format=torch.channels_last)
    images = image.expand(len(starts), *image.shape).contiguous(memory_format=torch.channels_last)
    trapezoid = integrated_gradients(
        model, images, target=target, baselines=starts, n_steps=steps,
        method="riemann_trapezoid", internal_batch_size=batch_size,
    ).attributions
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


def _check_segments(segments: Any, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    if isinstance(segments, (list, tuple)):
        segments = np.stack([np.asarray(s) for s in segments]) if len(segments) else np.zeros((0, *shape))
    masks = as_tensor("segments", segments)
    if masks.ndim != 3 or tuple(masks.shape[1:]) != shape or len(masks) == 0 or masks.dtype != torch.bool:
        raise ValueError(message("segments", f"a non-empty bool stack of masks (M, {shape[0]}, {shape[1]})", segments))
    return masks.to(device)


def felzenszwalb_masks(image: torch.Tensor, *, dilation_radius: int = DILATION_RADIUS) -> torch.Tensor:
    """PAIR's XRAI segments: Felzenszwalb at six scales, one dilated mask per segment.

    The image is rescaled to ``[-1, 1]``, resized to 224×224 (bicubic, anti-aliased)
    and segmented by :func:`skimage.segmentation.felzenszwalb` at each of
    ``FELZENSZWALB_SCALES`` (sigma 0.8, minimum size 150); each label map is resized
    back (nearest) and every label from its minimum to its maximum becomes a mask (a
    label lost in the resize gives an empty mask, as in PAIR). Masks are dilated by a
    disk of radius ``dilation_radius``.

    Args:
        image: ``(C, H, W)`` float tensor (any value range).
        dilation_radius: disk radius in pixels, an int >= 0 (0: no dilation).

    Returns:
        Bool masks ``(M, H, W)`` on ``image``'s device, in PAIR's order (by scale,
        then label).

    Example:
        >>> masks = felzenszwalb_masks(torch.rand(3, 32, 32))
        >>> masks.dtype, masks.shape[1:]
        (torch.bool, torch.Size([32, 32]))
    """
    image = _check_image(image)
    dilation_radius = check_int("dilation_radius", dilation_radius, low=0)
    planes, rows = _dilated_planes(_felzenszwalb_labels(image), dilation_radius)
    bits = (planes[:, None, :] >> _BITS.to(planes.device)[None, :, None]) & 1  # (Q, 8, P)
    return bits.reshape(-1, planes.shape[1])[rows].bool().reshape(len(rows), *image.shape[1:])


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


def _segment(image: torch.Tensor) -> _Membership:
    """PAIR's default segments of ``image`` (as :func:`felzenszwalb_masks`), ready for ranking."""
    return _Membership.from_planes(*_dilated_planes(_felzenszwalb_labels(image), DILATION_RADIUS))


def _check_image(image: Any) -> torch.Tensor:
    image = as_tensor("image", image)
    if image.ndim != 3 or not image.is_floating_point():
        raise ValueError(message("image", "a float tensor of shape (C, H, W)", image))
    return image


def _felzenszwalb_labels(image: torch.Tensor) -> torch.Tensor:
    """PAIR's six Felzenszwalb label maps of ``(C, H, W)`` ``image``, ``(S, H, W)`` int64 from 0."""
    from skimage.segmentation import felzenszwalb
    from skimage.transform import resize

    pixels = image.detach().permute(1, 2, 0).cpu().numpy()
    shape = pixels.shape[:2]
    low, high = pixels.min(), pixels.max()
    pixels = (pixels - low) / (high - low) * 2.0 - 1.0
    pixels = resize(pixels, SEGMENTATION_SIZE, order=3, mode="constant", preserve_range=True, anti_aliasing=True)

    def segment(scale: int) -> torch.Tensor:
        seg = felzenszwalb(pixels, scale=scale, sigma=FELZENSZWALB_SIGMA, min_size=FELZENSZWALB_MIN_SIZE)
        seg = resize(seg, shape, order=0, preserve_range=True, mode="constant", anti_aliasing=False).astype(int)
        return torch.from_numpy(seg - seg.min())

    # The scales are independent and scikit-image's Felzenszwalb releases the GIL: one thread
    # per core segments them side by side (results in scale order, identical to a loop).
    with ThreadPoolExecutor(max_workers=min(len(FELZENSZWALB_SCALES), os.cpu_count() or 1)) as pool:
        labels = list(pool.map(segment, FELZENSZWALB_SCALES))
    return torch.stack(labels).to(image.device)


_BITS = torch.arange(8, dtype=torch.uint8)


def _dilated_planes(labels: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All masks of ``(S, H, W)`` label maps, dilated by a disk, as packed bits.

    Each scale's labels ``0..max`` are one-hot bits packed eight to a byte, so a
    pixel's byte planes hold its label set. A dilation by a disk is the OR of the
    planes shifted by every offset in the disk; it is done as horizontal ORs of
    growing width followed by one vertical OR per row of the disk, each shift a
    single operation over every mask of every scale.

    Returns:
        ``planes`` ``(Q, H*W)`` uint8 and ``rows`` ``(M,)``: mask ``m`` is bit
        ``rows[m] % 8`` of plane ``rows[m] // 8``.
    """
    n_scales, height, width = labels.shape
    n_labels = labels.flatten(1).max(dim=1).values + 1  # (S,)
    n_planes = (n_labels + 7) // 8
    first_plane = torch.cumsum(n_planes, 0) - n_planes
    plane_of = (labels // 8 + first_plane[:, None, None]).reshape(n_scales, -1)
    bit_of = (1 << (labels % 8)).to(torch.uint8).reshape(n_scales, -1)
    planes = torch.zeros(int(n_planes.sum()), height * width, dtype=torch.uint8, device=labels.device)
    planes.scatter_(0, plane_of, bit_of)  # each scale writes its own planes, one label per pixel
    planes = planes.reshape(-1, height, width)
    if radius:
        padded = torch.nn.functional.pad(planes, (radius,) * 4)
        rows = padded[:, :, radius : radius + width]
        by_width = [rows]  # by_width[w]: OR over horizontal offsets -w..w
        for w in range(1, radius + 1):
            rows = rows | padded[:, :, radius + w : radius + w + width] | padded[:, :, radius - w : radius - w + width]
            by_width.append(rows)
        dilated = torch.zeros_like(planes)
        for dy in range(-radius, radius + 1):
            dilated |= by_width[math.isqrt(radius * radius - dy * dy)][:, radius + dy : radius + dy + height]
        planes = dilated
    mask_rows = torch.cat([8 * first + torch.arange(int(n), device=labels.device) for first, n in zip(first_plane, n_labels)])
    return planes.reshape(len(planes), -1), mask_rows


@dataclass
class _Membership:
    """Which masks hold which pixels, as (mask, pixel) pairs sorted two ways.

    XRAI's masks overlap little (each pixel lies in about one dilated segment per
    scale), so the pairs are far fewer than the ``M * P`` entries of a dense stack,
    and every update below touches only the pairs of the pixels it covers.

    Attributes:
        n_masks: ``M``.
        mask_of_pair: ``(nnz,)`` mask ids of the pairs sorted by pixel (then mask).
        pixel_start: ``(P + 1,)`` where each pixel's pairs begin in ``mask_of_pair``.
        pixel_of_pair: ``(nnz,)`` pixel ids of the pairs sorted by mask (then pixel).
        mask_start: ``(M + 1,)`` where each mask's pairs begin in ``pixel_of_pair``.
    """

    n_masks: int
    mask_of_pair: torch.Tensor
    pixel_start: torch.Tensor
    pixel_of_pair: torch.Tensor
    mask_start: torch.Tensor

    @classmethod
    def from_pairs(cls, pixel: torch.Tensor, mask: torch.Tensor, n_pixels: int, n_masks: int) -> _Membership:
        """From pairs sorted by pixel, then mask."""
        by_mask = torch.sort(mask, stable=True).indices
        zero = torch.zeros(1, dtype=torch.long, device=mask.device)
        return cls(
            n_masks,
            mask,
            torch.cat([zero, torch.cumsum(torch.bincount(pixel, minlength=n_pixels), 0)]),
            pixel[by_mask],
            torch.cat([zero, torch.cumsum(torch.bincount(mask, minlength=n_masks), 0)]),
        )

    @classmethod
    def from_masks(cls, masks: torch.Tensor) -> _Membership:
        """From a dense ``(M, P)`` bool stack."""
        pixel, mask = torch.nonzero(masks.t(), as_tuple=True)
        return cls.from_pairs(pixel, mask, masks.shape[1], len(masks))

    @classmethod
    def from_planes(cls, planes: torch.Tensor, rows: torch.Tensor) -> _Membership:
        """From the packed bits of :func:`_dilated_planes` (read pixel by pixel)."""
        pixel, plane = torch.nonzero(planes.t(), as_tuple=True)
        values = planes[plane, pixel]
        pair, bit = torch.nonzero((values[:, None] >> _BITS.to(planes.device)) & 1, as_tuple=True)
        mask_of_bit = torch.full((8 * len(planes),), -1, dtype=torch.long, device=planes.device)
        mask_of_bit[rows] = torch.arange(len(rows), device=planes.device)
        mask = mask_of_bit[8 * plane[pair] + bit]  # mask ids grow with (plane, bit): still sorted
        return cls.from_pairs(pixel[pair], mask, planes.shape[1], len(rows))

    def pixels_of(self, mask: int) -> torch.Tensor:
        """The pixels of one mask, ``(n,)`` increasing."""
        return self.pixel_of_pair[self.mask_start[mask] : self.mask_start[mask + 1]]

    def masks_of(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every (mask, pixel) pair of ``pixels``: mask ids and pixel ids, ``(k,)`` each."""
        starts = self.pixel_start[pixels]
        lengths = self.pixel_start[pixels + 1] - starts
        first = torch.repeat_interleave(starts - (torch.cumsum(lengths, 0) - lengths), lengths)
        pair = first + torch.arange(int(lengths.sum()), device=pixels.device)
        return self.mask_of_pair[pair], torch.repeat_interleave(pixels, lengths)

    def counts_and_sums(self, attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels per mask ``(M,)`` int64 and attribution summed over each mask ``(M,)``."""
        n_pixels = len(self.pixel_start) - 1
        mask, pixel = self.masks_of(torch.arange(n_pixels, device=attr.device))
        counts = torch.bincount(mask, minlength=self.n_masks)
        sums = torch.zeros(self.n_masks, dtype=attr.dtype, device=attr.device).index_add_(0, mask, attr[pixel])
        return counts, sums


def _rank_full(
    membership: _Membership, attr: torch.Tensor, *, area_threshold: float, min_pixel_diff: int
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
    membership: _Membership, attr: torch.Tensor, *, area_threshold: float, min_pixel_diff: int
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
