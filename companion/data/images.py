"""Generated images with exact object masks, for scoring attributions against ground truth."""

from __future__ import annotations

import numpy as np
import torch

from companion._validation import check_float, check_int

__all__ = ["SHAPE_CLASSES", "make_shapes"]

SHAPE_CLASSES = ("circle", "square", "triangle")
"""The classes of :func:`make_shapes`, in label order."""


def make_shapes(
    n_samples: int = 300,
    *,
    size: int = 32,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Colour images of one shape each (circle, square or triangle) with exact object masks.

    Each image has a random background colour, one shape of another random colour at
    a random position and scale, and Gaussian pixel noise. The mask marks the
    object's pixels, so attributions can be scored against ground truth.

    Args:
        n_samples: number of images, an int >= 1.
        size: height and width in pixels, an int >= 16.
        noise: standard deviation of the pixel noise, a float >= 0.
        seed: random seed, an int >= 0.

    Returns:
        ``(images, labels, masks)``: float32 images ``(N, 3, size, size)`` in
        ``[0, 1]``, int64 labels ``(N,)`` indexing :data:`SHAPE_CLASSES`, and bool
        masks ``(N, size, size)``.

    Example:
        >>> images, labels, masks = make_shapes(6, size=16)
        >>> tuple(images.shape), tuple(masks.shape)
        ((6, 3, 16, 16), (6, 16, 16))
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    size = check_int("size", size, low=16)
    noise = check_float("noise", noise, low=0)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    images = np.empty((n_samples, 3, size, size), dtype=np.float32)
    masks = np.empty((n_samples, size, size), dtype=bool)
    labels = np.arange(n_samples) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    for i, label in enumerate(labels):
        radius = rng.uniform(0.18, 0.32) * size
        cy, cx = rng.uniform(radius + 1, size - radius - 1, size=2)
        dy, dx = rows - cy, cols - cx
        if SHAPE_CLASSES[label] == "circle":
            mask = dy**2 + dx**2 <= radius**2
        elif SHAPE_CLASSES[label] == "square":
            half = radius * 0.85
            mask = (np.abs(dy) <= half) & (np.abs(dx) <= half)
        else:  # an upward triangle: below the two slanted edges, above the base
            mask = (dy <= radius * 0.8) & (2 * np.abs(dx) <= dy + radius)
        background, foreground = rng.uniform(0, 1, size=(2, 3))
        while np.abs(background - foreground).sum() < 0.9:  # keep the object visible
            foreground = rng.uniform(0, 1, size=3)
        image = np.where(mask, foreground[:, None, None], background[:, None, None])
        image = image + noise * rng.standard_normal(image.shape)
        images[i] = np.clip(image, 0.0, 1.0)
        masks[i] = mask
    return torch.from_numpy(images), torch.from_numpy(labels).long(), torch.from_numpy(masks)
