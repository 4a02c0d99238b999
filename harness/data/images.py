"""Reading image files into grayscale uint8 arrays (load time only, never per batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "image_files", "read_gray", "read_all"]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".webp"}
)


def image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted; hidden files and other suffixes are skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def read_gray(path: Path, size: int, center_crop: bool = False) -> np.ndarray:
    """uint8 (size, size): converted to grayscale, optionally cropped to a centred square, resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            gray = image.convert("L")
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    if center_crop and gray.width != gray.height:
        side = min(gray.width, gray.height)
        left, top = (gray.width - side) // 2, (gray.height - side) // 2
        gray = gray.crop((left, top, left + side, top + side))
    if gray.size != (size, size):
        gray = gray.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(gray, dtype=np.uint8)


def read_all(paths: list[Path], size: int, center_crop: bool = False) -> np.ndarray:
    """uint8 (N, 1, size, size) for the given files, in order."""
    out = np.empty((len(paths), 1, size, size), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i, 0] = read_gray(path, size, center_crop)
    return out
