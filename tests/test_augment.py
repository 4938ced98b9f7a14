"""Tests for companion.augment: per-image draws against torchvision, labels untouched, seeded, bad input."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from companion.augment import AugmentedBatches, RandomShiftRotate, shift_images
from companion.data import make_loader


def _images(n=6, channels=2, height=9, width=7, seed=0):
    return torch.rand(n, channels, height, width, generator=torch.Generator().manual_seed(seed))


def _torchvision(images, params, interpolation):
    """The reference: torchvision's affine, one call per image (its angle turns clockwise)."""
    mode = {"nearest": v2.InterpolationMode.NEAREST, "bilinear": v2.InterpolationMode.BILINEAR}[interpolation]
    out = []
    for i, image in enumerate(images):
        if params["hflip"][i]:
            image = image.flip(-1)
        if params["vflip"][i]:
            image = image.flip(-2)
        out.append(v2.functional.affine(image, angle=-float(params["angle"][i]),
                                        translate=[int(params["dx"][i]), int(params["dy"][i])], scale=1.0,
                                        shear=[0.0, 0.0], interpolation=mode))
    return torch.stack(out)


def test_whole_pixel_shifts_match_torchvision_exactly():
    images = _images()
    augment = RandomShiftRotate(max_shift=3, interpolation="nearest", seed=1)
    params = augment.draw(len(images))
    assert params["dx"].abs().max() <= 3 and params["dy"].abs().max() <= 3
    assert len(set(zip(params["dx"].tolist(), params["dy"].tolist()))) > 1  # each image its own shift
    out = augment.apply(images, params)
    torch.testing.assert_close(out, _torchvision(images, params, "nearest"), rtol=0, atol=1e-6)
    # bilinear interpolation at whole-pixel shifts reads pixel centres: the same values
    torch.testing.assert_close(RandomShiftRotate(interpolation="bilinear").apply(images, params), out,
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("flips", [(False, False), (True, False), (False, True), (True, True)])
def test_rotations_shifts_and_flips_match_torchvision(flips):
    hflip, vflip = flips
    images = _images()
    augment = RandomShiftRotate(max_shift=2, degrees=25.0, hflip=hflip, vflip=vflip, seed=3)
    params = augment.draw(len(images))
    if hflip:
        params["hflip"][:2] = torch.tensor([True, False])
    torch.testing.assert_close(augment.apply(images, params), _torchvision(images, params, "bilinear"),
                               rtol=0, atol=1e-5)


def test_a_quarter_turn_is_counter_clockwise_then_the_shift():
    image = torch.zeros(1, 1, 7, 7)
    image[0, 0, 1, 3] = 1.0  # above the centre
    params = {"dx": torch.tensor([2]), "dy": torch.tensor([0]), "angle": torch.tensor([90.0]),
              "hflip": torch.tensor([False]), "vflip": torch.tensor([False])}
    out = RandomShiftRotate(interpolation="nearest").apply(image, params)
    assert (out[0, 0] > 0.5).nonzero().tolist() == [[3, 3]]  # left of the centre, then 2 to the right


def test_shape_dtype_and_device_are_kept_for_batches_and_single_images():
    augment = RandomShiftRotate(max_shift=1, degrees=10.0, hflip=True, seed=0)
    for images in (_images(), _images()[0], _images().double()):
        out = augment(images)
        assert out.shape == images.shape and out.dtype == images.dtype and out.device == images.device
    assert augment(_images()[:0]).shape == (0, 2, 9, 7)


def test_seeded_reproducible_and_fresh_draws_each_call():
    images = _images()
    a, b = RandomShiftRotate(max_shift=2, degrees=15.0, seed=7), RandomShiftRotate(max_shift=2, degrees=15.0, seed=7)
    first = a(images)
    torch.testing.assert_close(first, b(images), rtol=0, atol=0)
    second = a(images)
    assert not torch.equal(first, second)  # the next call draws anew
    torch.testing.assert_close(a.reset()(images), first, rtol=0, atol=0)
    assert not torch.equal(RandomShiftRotate(max_shift=2, degrees=15.0, seed=8)(images), first)
    torch.manual_seed(0)
    global_state = torch.get_rng_state()
    a(images)
    assert torch.equal(torch.get_rng_state(), global_state)  # its own generator, not the global one


def test_identity_settings_return_the_input():
    images = _images()
    out = RandomShiftRotate(max_shift=0, degrees=0.0, seed=0)(images)
    torch.testing.assert_close(out, images, rtol=0, atol=1e-6)


def test_fill_is_the_value_of_pixels_that_enter():
    images = torch.ones(1, 1, 4, 4)
    params = {"dx": torch.tensor([1]), "dy": torch.tensor([0]), "angle": torch.tensor([0.0]),
              "hflip": torch.tensor([False]), "vflip": torch.tensor([False])}
    out = RandomShiftRotate(fill=0.25).apply(images, params)
    assert out[0, 0, :, 0].tolist() == [0.25] * 4 and bool((out[0, 0, :, 1:] == 1).all())


def test_augmented_batches_change_inputs_and_pass_labels_through():
    X, y = _images(10), torch.arange(10)
    batches = AugmentedBatches(make_loader(X, y, batch_size=4, shuffle=False), RandomShiftRotate(max_shift=2, seed=0))
    assert len(batches) == 3
    epoch1, epoch2 = list(batches), list(batches)
    assert torch.equal(torch.cat([yb for _, yb in epoch1]), y)
    assert all(xb.shape == (len(yb), 2, 9, 7) for xb, yb in epoch1)
    assert not torch.equal(torch.cat([xb for xb, _ in epoch1]), X)
    assert not torch.equal(epoch1[0][0], epoch2[0][0])  # a new variant each epoch
    same = AugmentedBatches([(X, y)], lambda x: x)
    assert torch.equal(next(iter(same))[0], X)


def test_shift_images_moves_without_wrapping():
    images = _images(3)
    out = shift_images(images, dx=2, dy=-1)
    expected = torch.zeros_like(images)
    expected[..., :-1, 2:] = images[..., 1:, :-2]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert shift_images(images[0], dx=0, dy=0).shape == images[0].shape
    assert float(shift_images(images, dx=9, dy=0, fill=0.5).unique()) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"max_shift": -1}, ValueError, "`max_shift` to be an int >= 0"),
        ({"max_shift": 1.5}, TypeError, "`max_shift` to be an int"),
        ({"degrees": -5.0}, ValueError, "`degrees`"),
        ({"degrees": 200.0}, ValueError, "`degrees`"),
        ({"hflip": 1}, TypeError, "`hflip` to be a bool"),
        ({"vflip": "yes"}, TypeError, "`vflip` to be a bool"),
        ({"interpolation": "cubic"}, ValueError, "`interpolation`"),
        ({"fill": float("nan")}, ValueError, "`fill`"),
        ({"seed": -1}, ValueError, "`seed`"),
    ],
)
def test_bad_settings_raise(kwargs, error, words):
    with pytest.raises(error, match=words):
        RandomShiftRotate(**kwargs)


def test_bad_input_raises():
    augment = RandomShiftRotate()
    with pytest.raises(ValueError, match="3 or 4 dimensions"):
        augment(torch.rand(8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        augment(torch.zeros(1, 1, 8, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        augment([[0.0]])
    with pytest.raises(ValueError, match="`n`"):
        augment.draw(0)
    with pytest.raises(TypeError, match="not an iterator"):
        AugmentedBatches(iter([(torch.rand(1, 1, 4, 4), torch.zeros(1))]), augment)
    with pytest.raises(TypeError, match="`transform` to be callable"):
        AugmentedBatches([], "shift")
    with pytest.raises(ValueError, match=r"`batches\[0\]` to be an \(x, y\) pair"):
        list(AugmentedBatches([torch.rand(2, 1, 4, 4)], augment))
    with pytest.raises(ValueError, match="the input's shape"):
        list(AugmentedBatches([(torch.rand(2, 1, 4, 4), torch.zeros(2))], lambda x: x[:1]))
    with pytest.raises(TypeError, match="`dx` to be an int"):
        shift_images(torch.rand(1, 1, 4, 4), dx=0.5, dy=0)
    with pytest.raises(ValueError, match="3 or 4 dimensions"):
        shift_images(torch.rand(4), dx=1, dy=0)
