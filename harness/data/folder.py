"""`folder:DIR`: DIR/train, DIR/val, DIR/test, each with one folder per class.

Classes are the union of the class folder names over the three splits,
sorted; a class missing from a split shows up as an empty-class warning.
Images are converted to grayscale and resized to `size` x `size`. Files
without an image suffix (and hidden files) are skipped; an image that does
not decode is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.cache import Cache, files_identity
from harness.data.images import image_files, read_all
from harness.data.spec import DataSpec
from harness.data.types import SPLITS, RawData
from harness.errors import DataError

__all__ = ["load"]

# Accepted folder names per split, first match wins.
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def load(spec: DataSpec, cache: Cache) -> RawData:
    root = spec.path
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (folder expects DIR with train/, val/ and test/)")
    split_dirs = {name: _split_dir(root, name) for name in SPLITS}
    classes = sorted(
        {
            p.name
            for d in split_dirs.values()
            for p in d.iterdir()
            if p.is_dir() and not p.name.startswith(".")
        }
    )
    if not classes:
        raise DataError(f"{root}: train/, val/ and test/ hold no class folders")
    listing = {
        name: [
            (path, label)
            for label, c in enumerate(classes)
            if (d / c).is_dir()
            for path in image_files(d / c)
        ]
        for name, d in split_dirs.items()
    }
    files = [path for entries in listing.values() for path, _ in entries]
    key = {"size": spec["size"], "classes": classes, "files": files_identity(files)}
    arrays = cache.get("folder", key, lambda: _read(listing, spec["size"]))
    splits = {name: (arrays[f"{name}_images"], arrays[f"{name}_labels"]) for name in SPLITS}
    return RawData(classes=tuple(classes), label_mode="hard", splits=splits)


def _split_dir(root: Path, split: str) -> Path:
    for name in SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    raise DataError(
        f"{root}: no {split}/ folder (folder expects train/, val/ and test/ with class folders)"
    )


def _read(listing: dict[str, list[tuple[Path, int]]], size: int) -> dict[str, np.ndarray]:
    arrays = {}
    for name, entries in listing.items():
        arrays[f"{name}_images"] = read_all([path for path, _ in entries], size)
        arrays[f"{name}_labels"] = np.array([label for _, label in entries], dtype=np.int64)
    return arrays
