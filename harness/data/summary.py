"""Human-readable views of a loaded dataset: the `data show` table and the `data preview` grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.data.dataset import Dataset
from harness.data.types import CROP_MEANINGS, SPLITS
from harness.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["format_table", "preview_grid"]


def format_table(ds: Dataset) -> str:
    counts = ds.counts()
    sizes = {name: len(ds.splits[name]) for name in SPLITS}
    c, h, w = ds.image_shape
    width = max([len("class"), len("total"), *(len(name) for name in ds.classes)])
    lines = [
        f"dataset      {ds.spec}",
        f"images       {c}x{h}x{w} uint8; " + " / ".join(f"{sizes[s]} {s}" for s in SPLITS),
        f"labels       {ds.label_mode}, {ds.num_classes} classes"
        + (" (soft: counted by the most voted class)" if ds.splits["train"].soft else ""),
        f"fingerprint  {ds.fingerprint}",
        f"crop         {ds.crop}: {CROP_MEANINGS[ds.crop]}",
        f"duplicates   {ds.duplicates.get('val', 0)} val and {ds.duplicates.get('test', 0)} test images "
        f"also in an earlier split{' (dropped: dedup=1)' if ds.dedup else ''}",
        "",
        f"{'class':<{width}}  " + "  ".join(f"{s:>6}" for s in SPLITS),
    ]
    for index, name in enumerate(ds.classes):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{counts[s][index]:>6}" for s in SPLITS))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{sizes[s]:>6}" for s in SPLITS))
    if ds.notes:
        lines += ["", "notes:", *(f"  {note}" for note in ds.notes)]
    if ds.warnings:
        lines += ["", "warnings:", *(f"  - {warning}" for warning in ds.warnings)]
    return "\n".join(lines)


def preview_size(
    ds: Dataset, split: str, per_class: int, scale: int, text_w: int = 0
) -> tuple[int, int]:
    """Width and height of `preview_grid`'s image: as many columns as the largest class has
    images, up to `per_class`. DataError above PIL's own limit on an image's pixels
    (`Image.MAX_IMAGE_PIXELS`, its decompression-bomb guard): `--per-class 1000 --scale 32`
    asked for 16 gigapixels and died of MemoryError."""
    from PIL import Image

    labels = ds.splits[split].hard_labels().cpu().numpy()
    largest = int(np.bincount(labels, minlength=1).max()) if len(labels) else 0
    _, h, w = ds.image_shape
    gap = 2
    columns = min(per_class, largest)
    size = (text_w + columns * (w * scale + gap), len(ds.classes) * (h * scale + gap) + gap)
    limit = Image.MAX_IMAGE_PIXELS or 0
    if limit and size[0] * size[1] > limit:
        raise DataError(
            f"a preview of {columns} images per class at scale {scale} would be "
            f"{size[0]:,}x{size[1]:,} pixels, more than PIL opens ({limit:,}); ask for fewer "
            "images per class or a smaller scale"
        )
    return size


def preview_grid(
    ds: Dataset, split: str = "train", per_class: int = 8, scale: int = 2
) -> Image.Image:
    """One row per class: its label, then its first `per_class` images of `split`, enlarged
    `scale` times. DataError if that image would be larger than PIL opens (`preview_size`)."""
    from PIL import Image, ImageDraw

    data = ds.splits[split]
    images = data.images.cpu().numpy()
    labels = data.hard_labels().cpu().numpy()
    channels, h, w = ds.image_shape
    cell_h, cell_w, gap = h * scale, w * scale, 2
    captions = [f"{i} {name} ({int((labels == i).sum())})" for i, name in enumerate(ds.classes)]
    draw_probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    text_w = max(int(draw_probe.textlength(caption)) for caption in captions) + 8
    grid = Image.new("L", preview_size(ds, split, per_class, scale, text_w), color=255)
    draw = ImageDraw.Draw(grid)
    for row, caption in enumerate(captions):
        top = gap + row * (cell_h + gap)
        draw.text((4, top + cell_h // 2 - 6), caption, fill=0)
        for col, index in enumerate(np.flatnonzero(labels == row)[:per_class]):
            pixels = images[index]
            # Grayscale shows as is; colour images show their channel mean.
            gray = pixels[0] if channels == 1 else pixels.mean(0).astype(np.uint8)
            tile = Image.fromarray(gray, mode="L").resize(
                (cell_w, cell_h), Image.Resampling.NEAREST
            )
            grid.paste(tile, (text_w + col * (cell_w + gap), top))
    return grid
