"""Batched augmentation: shapes, dtype, scale, determinism, exactness of crop and flip, CUDA."""

from __future__ import annotations

import itertools

import pytest
import torch

from harness.data import BatchAugment, to_float
from harness.data.augment import _affine, _shift_flip
from harness.errors import ConfigError


def batch(
    n: int = 16, c: int = 1, h: int = 48, w: int = 48, seed: int = 0, device: str = "cpu"
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=generator, dtype=torch.uint8).to(device)


CONFIGS = {
    "all": dict(crop_padding=4, flip=True, max_rotate_deg=10.0, max_scale=0.1),
    "crop+flip": dict(crop_padding=4, flip=True, max_rotate_deg=0.0),
    "rotate": dict(crop_padding=0, flip=False, max_rotate_deg=15.0),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_shape_dtype_and_range(name):
    images = batch(c=3, h=40, w=44)
    out = BatchAugment(**CONFIGS[name], seed=1)(images)
    assert out.shape == images.shape and out.dtype == torch.float32 and out.device == images.device
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", CONFIGS)
def test_deterministic_under_a_seed(name):
    images = batch()
    a, b, c = (
        BatchAugment(**CONFIGS[name], seed=5),
        BatchAugment(**CONFIGS[name], seed=5),
        BatchAugment(**CONFIGS[name], seed=6),
    )
    first = a(images)
    assert torch.equal(first, b(images))
    assert not torch.equal(first, c(images))
    assert not torch.equal(a(images), first)  # the sequence moves on
    a.reseed(5)
    assert torch.equal(a(images), first)


def test_all_off_is_to_float():
    images = batch()
    identity = BatchAugment(crop_padding=0, flip=False, max_rotate_deg=0.0, max_scale=0.0)
    assert not identity.enabled
    assert torch.equal(identity(images), to_float(images))
    assert torch.equal(to_float(images), images.float() / 255)


def test_crop_with_padding_is_an_integer_shift_with_zero_fill():
    images = batch(n=32)
    out = BatchAugment(crop_padding=3, flip=False, max_rotate_deg=0.0, seed=2)(images)
    source = to_float(images)
    padded = torch.nn.functional.pad(source, (3, 3, 3, 3))
    shifts = set()
    for i in range(len(images)):
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if torch.equal(out[i], padded[i, :, dy : dy + 48, dx : dx + 48])
        ]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 10


@pytest.mark.parametrize(("mode", "pad_mode"), [("reflect", "reflect"), ("replicate", "replicate")])
def test_crop_with_reflect_or_replicate_padding_is_a_crop_of_the_padded_image(mode, pad_mode):
    # The plain loop of issue 17 pads with F.pad(mode="reflect"): the same crops, exactly.
    images = batch(n=32, h=20, w=24)
    out = BatchAugment(crop_padding=3, padding_mode=mode, flip=False, max_rotate_deg=0.0, seed=2)(
        images
    )
    padded = torch.nn.functional.pad(to_float(images), (3, 3, 3, 3), mode=pad_mode)
    shifts = set()
    for i in range(len(images)):
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if torch.equal(out[i], padded[i, :, dy : dy + 20, dx : dx + 24])
        ]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 10
    # No black bars: every output pixel is one of the image's own.
    assert out.min() >= to_float(images).min()


def test_reflect_padding_wider_than_the_image_folds_back_again():
    # F.pad refuses reflect padding >= the image size; the index fold does not.
    image = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4).expand(1, 1, 4, 4).contiguous()
    augment = BatchAugment(crop_padding=6, padding_mode="reflect", flip=False, max_rotate_deg=0.0)
    for _ in range(10):
        out = augment(image) * 255
        row = out[0, 0, 0].round().long().tolist()
        # Consecutive columns of a mirrored ramp 0 1 2 3 2 1 0 1 ... differ by exactly one.
        assert all(abs(a - b) == 1 for a, b in itertools.pairwise(row))


def test_padding_mode_reaches_the_rotation_path():
    images = torch.full((8, 1, 24, 24), 255, dtype=torch.uint8)
    kwargs = dict(crop_padding=4, flip=False, max_rotate_deg=30.0, seed=0)
    zeros = BatchAugment(**kwargs)(images)
    reflected = BatchAugment(**kwargs, padding_mode="reflect")(images)
    assert (zeros < 0.5).any()
    torch.testing.assert_close(reflected, torch.ones_like(reflected))


def test_flip_mirrors_about_half_of_the_images():
    images = batch(n=200)
    out = BatchAugment(crop_padding=0, flip=True, max_rotate_deg=0.0, seed=0)(images)
    source = to_float(images)
    flipped = [torch.equal(o, s.flip(-1)) for o, s in zip(out, source, strict=True)]
    kept = [torch.equal(o, s) for o, s in zip(out, source, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 70 < sum(flipped) < 130


def test_affine_path_agrees_with_the_exact_path_without_rotation():
    x = to_float(batch(n=8, h=32, w=40))
    shift = torch.tensor([[-3, 2], [0, 0], [4, -4], [1, 3], [-2, -1], [3, 0], [0, 4], [-4, -4]])
    flip = torch.tensor([True, False, True, False, True, True, False, False])
    exact = _shift_flip(x, shift, flip, padding=4)
    affine = _affine(x, shift.float(), flip, torch.zeros(8), torch.ones(8))
    torch.testing.assert_close(affine, exact, atol=1e-5, rtol=0)


def test_rotation_keeps_the_centre_and_fills_corners_with_zero():
    images = torch.full((4, 1, 48, 48), 255, dtype=torch.uint8)
    out = BatchAugment(crop_padding=0, flip=False, max_rotate_deg=45.0, seed=0)(images)
    assert torch.allclose(out[:, :, 20:28, 20:28], torch.ones(1))
    # At least one of the four draws rotates far enough to uncover a corner.
    assert (out[:, 0, 0, 0] < 0.5).any()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(crop_padding=-1),
        dict(crop_padding=1.5),
        dict(max_rotate_deg=-5),
        dict(max_scale=1.0),
        dict(padding_mode="circular"),
    ],
)
def test_bad_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        BatchAugment(**kwargs)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", CONFIGS)
def test_runs_on_cuda_tensors(name):
    images = batch(device="cuda")
    augment = BatchAugment(**CONFIGS[name], seed=3)
    out = augment(images)
    assert out.device.type == "cuda" and out.dtype == torch.float32 and out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 1
    augment.reseed(3)
    assert torch.equal(augment(images), out)
    # Same kinds of result as on the CPU: crop+flip stays exact.
    if name == "crop+flip":
        source = to_float(images)
        padded = torch.nn.functional.pad(source, (4, 4, 4, 4))
        for i in range(len(images)):
            assert any(
                torch.equal(out[i], candidate[:, dy : dy + 48, dx : dx + 48])
                for candidate in (padded[i], padded[i].flip(-1))
                for dy in range(9)
                for dx in range(9)
            )
