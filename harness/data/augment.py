"""Batched augmentation on device tensors: a few tensor ops per batch, no per-image code.

`BatchAugment` applies, per image, a random crop from the padded image (an
integer shift of up to `crop_padding` pixels each way, as torchvision's
RandomCrop(size, padding, padding_mode=...) does), a horizontal flip with
probability 1/2, a rotation up to `max_rotate_deg` and a zoom of up to
`max_scale` (relative). With rotation or zoom the whole transform is one
affine `grid_sample` (bilinear); with only crop and flip it is two exact gathers.

`padding_mode` says what the crop sees beyond the border: "zeros" (black
bars, torchvision's default), "reflect" (the image mirrored without repeating
its edge, torchvision's "reflect", `F.pad(mode="reflect")`) or "replicate"
(the edge pixel repeated). Under rotation or zoom grid_sample's own modes
stand in: zeros, "reflection" (which mirrors about the pixel edges, so the
edge pixel appears twice) and "border".

Input is uint8 (N, C, H, W), output float32 in [0, 1] on the same device:
the same scale as `to_float`, which evaluation uses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.config import CHOICES, TRAIN_LIMITS
from harness.limits import Limit, check

__all__ = ["PADDING_MODES", "BatchAugment", "to_float"]

PADDING_MODES = CHOICES["crop_padding_mode"]
# grid_sample's name for each padding mode (the rotation and zoom path).
_GRID_PADDING = {"zeros": "zeros", "reflect": "reflection", "replicate": "border"}
# Zoom of up to this fraction of the image (1 would shrink it to nothing).
_SCALE = Limit(float, 0, 1, open_high=True)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (evaluation: no augmentation)."""
    return images.to(torch.float32).div_(255.0)


class BatchAugment:
    """Seeded batch augmentation; all flags off is the identity (plus `to_float`).

    The random draws come from a generator owned by this object, one per
    device, seeded with `seed` when first used there: the same seed and the
    same sequence of batch shapes give the same augmentations.
    """

    def __init__(
        self,
        crop_padding: int = 4,
        flip: bool = True,
        max_rotate_deg: float = 10.0,
        max_scale: float = 0.0,
        seed: int = 0,
        padding_mode: str = "zeros",
    ) -> None:
        # TrainConfig has checked its settings; a direct caller meets the same limits.
        for where, value, limit in (
            ("crop_padding", crop_padding, TRAIN_LIMITS["crop_padding"]),
            ("max_rotate_deg", max_rotate_deg, TRAIN_LIMITS["rotate_deg"]),
            ("max_scale", max_scale, _SCALE),
            ("padding_mode", padding_mode, TRAIN_LIMITS["crop_padding_mode"]),
        ):
            check(where, value, limit)
        self.padding_mode = padding_mode
        self.crop_padding = int(crop_padding)
        self.flip = bool(flip)
        self.max_rotate_deg = float(max_rotate_deg)
        self.max_scale = float(max_scale)
        self.seed = int(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def __repr__(self) -> str:
        return (
            f"BatchAugment(crop_padding={self.crop_padding}, flip={self.flip}, "
            f"max_rotate_deg={self.max_rotate_deg}, max_scale={self.max_scale}, seed={self.seed}, "
            f"padding_mode={self.padding_mode!r})"
        )

    @property
    def enabled(self) -> bool:
        return bool(self.crop_padding or self.flip or self.max_rotate_deg or self.max_scale)

    def reseed(self, seed: int) -> None:
        """Start every device's random sequence again from `seed`."""
        self.seed = int(seed)
        self._generators.clear()

    def generator(self, device: torch.device) -> torch.Generator:
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
        x = to_float(images)
        if not self.enabled or len(x) == 0:
            return x
        n, _, h, w = x.shape
        # Always draw the same five numbers per image, so turning one flag
        # on or off does not change the draws of the others.
        u = torch.rand(n, 5, generator=self.generator(x.device), device=x.device)
        p = self.crop_padding
        shift = torch.floor(u[:, :2] * (2 * p + 1)).clamp_(max=2 * p) - p  # integers in [-p, p]
        flip = (u[:, 2] < 0.5) if self.flip else torch.zeros(n, dtype=torch.bool, device=x.device)
        if self.max_rotate_deg or self.max_scale:
            angle = (u[:, 3] * 2 - 1) * math.radians(self.max_rotate_deg)
            scale = 1 + (u[:, 4] * 2 - 1) * self.max_scale
            return _affine(x, shift, flip, angle, scale, _GRID_PADDING[self.padding_mode])
        if self.padding_mode != "zeros":
            return _shift_flip_edges(x, shift.long(), flip, self.padding_mode)
        return _shift_flip(x, shift.long(), flip, p)


def _shift_flip(
    x: torch.Tensor, shift: torch.Tensor, flip: torch.Tensor, padding: int
) -> torch.Tensor:
    """Crop-with-padding and flip as two gathers from the zero-padded batch (exact)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    rows = torch.arange(h, device=x.device) + (shift[:, 1:] + padding)  # (N, H)
    cols = torch.arange(w, device=x.device) + (shift[:, :1] + padding)  # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def _shift_flip_edges(
    x: torch.Tensor, shift: torch.Tensor, flip: torch.Tensor, mode: str
) -> torch.Tensor:
    """Crop and flip with reflected or replicated edges: the source index of each
    output row and column is folded back into the image, so no padded copy is
    made and any padding works (reflect padding as wide as the image too)."""
    n, c, h, w = x.shape
    rows = _fold(torch.arange(h, device=x.device) + shift[:, 1:], h, mode)  # (N, H)
    cols = _fold(torch.arange(w, device=x.device) + shift[:, :1], w, mode)  # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def _fold(index: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Map indices outside [0, size) back inside: mirrored without the edge (reflect),
    as F.pad(mode="reflect") does, or clamped to the edge (replicate)."""
    if mode == "replicate" or size == 1:
        return index.clamp(0, size - 1)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index < size, index, period - index)


def _affine(
    x: torch.Tensor,
    shift: torch.Tensor,
    flip: torch.Tensor,
    angle: torch.Tensor,
    scale: torch.Tensor,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """One grid_sample: output pixel p reads input pixel R(angle) F p / scale + shift (centred pixel units)."""
    n, _, h, w = x.shape
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    mirror = torch.where(flip, -1.0, 1.0)
    # M = R / scale @ diag(mirror, 1), then conjugated into grid_sample's
    # normalised coordinates (x in units of w/2, y in units of h/2).
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin * (h / w), shift[:, 0] * (2 / w)], dim=1),
            torch.stack([sin * mirror * (w / h), cos, shift[:, 1] * (2 / h)], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
