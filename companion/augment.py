"""Image augmentation: random label-preserving changes to training images, drawn per image.

Augmentation shows the model more variants of each labelled image than the data set holds:
the same digit moved a pixel, turned a few degrees, or (where that keeps the label, as for a
photo of a cat but never for a digit) mirrored. The label is never touched.

* :class:`RandomShiftRotate`: per-image random shifts (whole pixels), small rotations and
  optional flips, as one transform for a ``(C, H, W)`` image in a ``Dataset`` or for a whole
  ``(N, C, H, W)`` batch at once (one ``grid_sample`` call, each image with its own draw).
  torchvision's ``v2.RandomAffine`` draws one set of parameters per call, so a batch would
  move as one and a per-image call costs about a millisecond: this class exists for that.
* :class:`AugmentedBatches`: wraps any iterable of ``(x, y)`` batches (a ``DataLoader``, a list)
  and applies a transform to each ``x``, so :func:`companion.training.fit` sees fresh variants
  every epoch.
* :func:`shift_images`: a deterministic shift of every image by the same whole-pixel offset
  (torchvision's ``v2.functional.affine``), for testing a model on moved objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from companion._validation import (
    check_callable,
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_tensor,
    message,
)

__all__ = ["AugmentedBatches", "RandomShiftRotate", "shift_images"]


def _check_images(name: str, images: Any) -> torch.Tensor:
    check_tensor(name, images, ndim=(3, 4), floating=True, non_empty=False)
    return images


class RandomShiftRotate(nn.Module):
    """Random whole-pixel shifts, small rotations and optional flips, drawn anew for each image.

    Each image gets its own horizontal and vertical shift, whole pixels drawn uniformly from
    ``-max_shift`` to ``max_shift``, its own angle drawn uniformly from ``[-degrees, degrees]``
    (counter-clockwise, about the image centre, as ``torchvision``'s ``rotate``), and, where
    asked, a mirror image with probability 1/2. Pixels that come from outside the image are
    ``fill``. With ``degrees=0`` and no flips the output is the input moved by whole pixels,
    exactly. The draws come from the transform's own generator, seeded with ``seed``, so
    two transforms built with the same seed produce the same images call after call.

    Flips change the meaning of many images (a mirrored 2 is no digit; a mirrored road sign
    points the other way): turn them on only where the label survives them.

    Args:
        max_shift: the largest shift in pixels, an int >= 0.
        degrees: the largest rotation in degrees, a float in ``[0, 180]``.
        hflip: mirror left-right with probability 1/2.
        vflip: mirror top-bottom with probability 1/2.
        interpolation: ``"bilinear"`` or ``"nearest"`` (only matters when rotating).
        fill: the value of pixels that enter from outside the image, a float.
        seed: seed of the transform's generator, an int >= 0.

    Shapes:
        input ``(C, H, W)`` or ``(N, C, H, W)`` floating point; output the same shape and dtype,
        on the same device.

    Example:
        >>> augment = RandomShiftRotate(max_shift=1, seed=0)
        >>> images = torch.rand(5, 1, 8, 8)
        >>> out = augment(images)
        >>> out.shape, out.dtype
        (torch.Size([5, 1, 8, 8]), torch.float32)
        >>> torch.equal(out, RandomShiftRotate(max_shift=1, seed=0)(images))  # seeded
        True
    """

    def __init__(
        self,
        *,
        max_shift: int = 1,
        degrees: float = 0.0,
        hflip: bool = False,
        vflip: bool = False,
        interpolation: str = "bilinear",
        fill: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.max_shift = check_int("max_shift", max_shift, low=0)
        self.degrees = check_float("degrees", degrees, low=0, high=180)
        self.hflip = check_instance("hflip", hflip, bool, "a bool")
        self.vflip = check_instance("vflip", vflip, bool, "a bool")
        self.interpolation = check_choice("interpolation", interpolation, ("bilinear", "nearest"))
        self.fill = check_float("fill", fill)
        self.seed = check_int("seed", seed, low=0)
        self.generator = torch.Generator().manual_seed(self.seed)

    def reset(self) -> RandomShiftRotate:
        """Restart the draws from ``seed`` (the next call repeats the first call's draws)."""
        self.generator.manual_seed(self.seed)
        return self

    def draw(self, n: int) -> dict[str, torch.Tensor]:
        """Draw the parameters of ``n`` images: ``dx``, ``dy`` (pixels), ``angle`` (degrees), flips.

        Example:
            >>> sorted(RandomShiftRotate(seed=0).draw(3))
            ['angle', 'dx', 'dy', 'hflip', 'vflip']
        """
        n = check_int("n", n, low=1)
        g = self.generator
        shifts = torch.randint(-self.max_shift, self.max_shift + 1, (2, n), generator=g)
        angle = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * self.degrees
        hflip = (torch.rand(n, generator=g) < 0.5) if self.hflip else torch.zeros(n, dtype=torch.bool)
        vflip = (torch.rand(n, generator=g) < 0.5) if self.vflip else torch.zeros(n, dtype=torch.bool)
        return {"dx": shifts[0], "dy": shifts[1], "angle": angle, "hflip": hflip, "vflip": vflip}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images("images", images)
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        out = self.apply(batch, self.draw(len(batch))) if len(batch) else batch.clone()
        return out if images.ndim == 4 else out.squeeze(0)

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply given parameters (as :meth:`draw` returns them) to a batch ``(N, C, H, W)``.

        Output pixel ``p`` (relative to the image centre) takes the input at
        ``flip(rotate(p - shift, -angle))``: the content moves by ``(dx, dy)`` pixels (right and
        down) after turning by ``angle`` degrees counter-clockwise about the centre: the map of
        torchvision's ``v2.functional.affine(image, angle=-angle, translate=[dx, dy], scale=1,
        shear=[0, 0])`` (whose angle turns clockwise), for every image in one call.
        """
        check_tensor("images", images, ndim=4, floating=True, non_empty=False)
        n, _, height, width = images.shape
        rad = torch.deg2rad(params["angle"].to(torch.float64))
        cos, sin = torch.cos(rad), torch.sin(rad)
        fx = 1.0 - 2.0 * params["hflip"].to(torch.float64)
        fy = 1.0 - 2.0 * params["vflip"].to(torch.float64)
        # Inverse map in pixel units (x right, y down): q = Flip @ Rot(-angle) @ (p - t). With y pointing
        # down, a counter-clockwise turn on screen is Rot(a) = [[cos, sin], [-sin, cos]].
        inv = torch.stack([
            torch.stack([fx * cos, -fx * sin], dim=1),
            torch.stack([fy * sin, fy * cos], dim=1),
        ], dim=1)  # (N, 2, 2)
        t = torch.stack([params["dx"], params["dy"]], dim=1).to(torch.float64)  # (N, 2)
        offset = -(inv @ t.unsqueeze(2)).squeeze(2)  # (N, 2)
        # Pixel units -> the [-1, 1] units of affine_grid (align_corners=False): x_n = 2 x / W.
        scale = torch.tensor([2.0 / width, 2.0 / height], dtype=torch.float64)
        theta = torch.cat([
            inv * scale[:, None] / scale[None, :],
            (offset * scale).unsqueeze(2),
        ], dim=2)  # (N, 2, 3)
        theta = theta.to(device=images.device, dtype=images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        shifted = images - self.fill  # grid_sample fills with zeros: shift so that zero means `fill`
        out = F.grid_sample(shifted, grid, mode=self.interpolation, padding_mode="zeros",
                            align_corners=False)
        return out + self.fill

    def extra_repr(self) -> str:
        return (f"max_shift={self.max_shift}, degrees={self.degrees}, hflip={self.hflip}, "
                f"vflip={self.vflip}, seed={self.seed}")


class AugmentedBatches:
    """Apply ``transform`` to the inputs of every batch of ``batches``; the targets pass unchanged.

    Each pass over it (each epoch of :func:`companion.training.fit`) draws new variants, so the
    model never sees the same augmented image twice.

    Args:
        batches: an iterable of ``(x, y)`` batches that can be iterated more than once: a
            ``DataLoader``, a list of tuples.
        transform: a callable ``x -> x'`` of the same shape, e.g. :class:`RandomShiftRotate`.

    Example:
        >>> X, y = torch.rand(6, 1, 8, 8), torch.arange(6)
        >>> batches = AugmentedBatches([(X[:4], y[:4]), (X[4:], y[4:])], RandomShiftRotate(seed=0))
        >>> [(tuple(xb.shape), yb.tolist()) for xb, yb in batches]
        [((4, 1, 8, 8), [0, 1, 2, 3]), ((2, 1, 8, 8), [4, 5])]
    """

    def __init__(self, batches: Iterable, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if isinstance(batches, Iterator) or not isinstance(batches, Iterable):
            raise TypeError(message("batches", "an iterable of (x, y) batches that can be iterated "
                                               "again every epoch (a DataLoader or a list), not an iterator",
                                    batches))
        self.batches = batches
        self.transform = check_callable("transform", transform)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i, batch in enumerate(self.batches):
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(message(f"batches[{i}]", "an (x, y) pair", batch))
            x, y = batch
            out = self.transform(x)
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                raise ValueError(message("transform(x)", f"a tensor of the input's shape {tuple(x.shape)}",
                                         out))
            yield out, y

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def shift_images(images: torch.Tensor, *, dx: int, dy: int, fill: float = 0.0) -> torch.Tensor:
    """Move every image by the same whole-pixel offset: ``dx`` right, ``dy`` down (negative: left, up).

    Pixels that enter from outside are ``fill``; what leaves the frame is lost (no wrap-around,
    unlike ``torch.roll``). Uses torchvision's ``v2.functional.affine``.

    Args:
        images: ``(C, H, W)`` or ``(N, C, H, W)`` floating point.
        dx: pixels to the right, an int.
        dy: pixels down, an int.
        fill: value of the pixels that enter, a float.

    Returns:
        The moved images, same shape and dtype.

    Example:
        >>> shift_images(torch.arange(4.0).reshape(1, 1, 4), dx=1, dy=0).tolist()
        [[[0.0, 0.0, 1.0, 2.0]]]
    """
    _check_images("images", images)
    dx, dy = check_int("dx", dx), check_int("dy", dy)
    fill = check_float("fill", fill)
    return v2.functional.affine(images, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0],
                                fill=[fill])

