"""XRAI's segments: Felzenszwalb's segmentation at PAIR's scales, dilated masks, and who holds which pixel.

:func:`felzenszwalb_masks` reproduces the segments of PAIR's reference XRAI
(``saliency.core.XRAI``, version 0.2.1) mask for mask: Felzenszwalb's graph
segmentation (scikit-image, the same call as PAIR) of the image rescaled to
``[-1, 1]`` and resized to 224×224, at scales 50, 100, 150, 250, 500 and 1200,
sigma 0.8, minimum segment size 150; the label maps are resized back and each
segment becomes a mask, dilated by a disk of radius 5. Masks are packed as bits, so
the dilation of all masks of all scales is a few shifted ORs.

The ranking in :mod:`companion.explain.xrai` reads the masks as a :class:`Membership`:
(mask, pixel) pairs sorted two ways, built straight from the packed bits
(:func:`felzenszwalb_membership`) or from masks a caller gives (:func:`check_segments`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skimage.segmentation import felzenszwalb
from skimage.transform import resize

from companion._validation import as_tensor, check_int, message

__all__ = [
    "FELZENSZWALB_SCALES",
    "FELZENSZWALB_SIGMA",
    "FELZENSZWALB_MIN_SIZE",
    "SEGMENTATION_SIZE",
    "DILATION_RADIUS",
    "Membership",
    "check_image",
    "check_segments",
    "felzenszwalb_masks",
    "felzenszwalb_membership",
]

FELZENSZWALB_SCALES = (50, 100, 150, 250, 500, 1200)
FELZENSZWALB_SIGMA = 0.8
FELZENSZWALB_MIN_SIZE = 150
SEGMENTATION_SIZE = (224, 224)
DILATION_RADIUS = 5


def check_image(image: Any) -> torch.Tensor:
    """One float image ``(C, H, W)`` as a tensor, or a ValueError."""
    image = as_tensor("image", image)
    if image.ndim != 3 or not image.is_floating_point():
        raise ValueError(message("image", "a float tensor of shape (C, H, W)", image))
    return image


def check_segments(segments: Any, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """A caller's masks (a bool stack, an array or a list of arrays) as ``(M, H, W)`` bools on ``device``."""
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
    image = check_image(image)
    dilation_radius = check_int("dilation_radius", dilation_radius, low=0)
    planes, rows = _dilated_planes(_felzenszwalb_labels(image), dilation_radius)
    bits = (planes[:, None, :] >> _BITS.to(planes.device)[None, :, None]) & 1  # (Q, 8, P)
    return bits.reshape(-1, planes.shape[1])[rows].bool().reshape(len(rows), *image.shape[1:])


def felzenszwalb_membership(image: torch.Tensor) -> Membership:
    """PAIR's default segments of ``image`` (as :func:`felzenszwalb_masks`), ready for ranking."""
    return Membership.from_planes(*_dilated_planes(_felzenszwalb_labels(image), DILATION_RADIUS))


def _felzenszwalb_labels(image: torch.Tensor) -> torch.Tensor:
    """PAIR's six Felzenszwalb label maps of ``(C, H, W)`` ``image``, ``(S, H, W)`` int64 from 0."""
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
class Membership:
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
    def from_pairs(cls, pixel: torch.Tensor, mask: torch.Tensor, n_pixels: int, n_masks: int) -> Membership:
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
    def from_masks(cls, masks: torch.Tensor) -> Membership:
        """From a dense ``(M, P)`` bool stack."""
        pixel, mask = torch.nonzero(masks.t(), as_tuple=True)
        return cls.from_pairs(pixel, mask, masks.shape[1], len(masks))

    @classmethod
    def from_planes(cls, planes: torch.Tensor, rows: torch.Tensor) -> Membership:
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
