"""`Dataset` and `Split`: the in-memory tensors the trainer works on, and how they are finished.

Finishing a source's arrays means: find images that appear in more than one
split (exact pixel match), drop them from val/test if the spec says
`dedup=1`, warn about them otherwise, warn about classes with no image in a
split, fingerprint the result, and wrap everything as torch tensors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from harness.data.spec import DataSpec
from harness.data.types import SPLITS, RawData
from harness.errors import DataError

__all__ = ["Dataset", "Split", "finish"]

FINGERPRINT_VERSION = b"harness-data-fingerprint-1"


@dataclass(frozen=True)
class Split:
    """One split as tensors: uint8 images (N, C, H, W) and labels.

    Labels are int64 (N,) class indices, or float32 (N, K) label
    distributions when `soft` (FER+ probability / crossentropy). For
    `label_mode == "probability"` the trainer draws a hard label per image
    each time it is seen: `sample_hard_labels(labels, generator)`.
    """

    images: torch.Tensor
    labels: torch.Tensor
    label_mode: str = "hard"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def soft(self) -> bool:
        return self.labels.dim() == 2

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Split:
        return replace(
            self,
            images=self.images.to(device, non_blocking=non_blocking),
            labels=self.labels.to(device, non_blocking=non_blocking),
        )

    def hard_labels(self) -> torch.Tensor:
        """int64 (N,): the labels, or the most voted class of each distribution."""
        return self.labels.argmax(1) if self.soft else self.labels

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.hard_labels().cpu(), minlength=num_classes).tolist()


@dataclass
class Dataset:
    """A loaded dataset spec. `spec` is the normalised string to record with results."""

    spec: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    splits: dict[str, Split]
    fingerprint: str
    label_mode: str
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # val/test images whose pixels also appear in an earlier split, found
    # before dedup (so the numbers stay visible when dedup dropped them).
    duplicates: dict[str, int] = field(default_factory=dict)
    dedup: bool = False
    # How the source cut each picture before resizing it (types.CROPS): an export
    # records it so that `harness predict` reads pictures as the source did.
    crop: str = "none"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> Dataset:
        return replace(self, splits={name: split.to(device) for name, split in self.splits.items()})

    def counts(self) -> dict[str, list[int]]:
        """Images per class (by most-voted class for soft labels), per split."""
        return {name: split.class_counts(self.num_classes) for name, split in self.splits.items()}

    def summary(self) -> dict[str, Any]:
        """Plain data for `harness data show --json` and for records."""
        return {
            "spec": self.spec,
            "classes": list(self.classes),
            "image_shape": list(self.image_shape),
            "label_mode": self.label_mode,
            "fingerprint": self.fingerprint,
            "sizes": {name: len(split) for name, split in self.splits.items()},
            "counts": self.counts(),
            "duplicates": dict(self.duplicates),
            "dedup": self.dedup,
            "crop": self.crop,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def finish(raw: RawData, spec: DataSpec) -> Dataset:
    images = {name: np.ascontiguousarray(raw.splits[name][0]) for name in SPLITS}
    labels = {name: np.ascontiguousarray(raw.splits[name][1]) for name in SPLITS}
    shape = _image_shape(images)
    digests = {name: _digests(images[name]) for name in SPLITS}
    seen = set(digests["train"])
    duplicates: dict[str, int] = {}
    repeated: dict[str, np.ndarray] = {}
    for name in ("val", "test"):
        repeated[name] = np.array([d in seen for d in digests[name]], dtype=bool)
        duplicates[name] = int(repeated[name].sum())
        seen.update(digests[name])
    dedup = bool(spec["dedup"])
    warnings: list[str] = []
    if dedup:
        for name in ("val", "test"):
            images[name] = images[name][~repeated[name]]
            labels[name] = labels[name][~repeated[name]]
    elif duplicates["val"] or duplicates["test"]:
        warnings.append(
            f"{duplicates['val']} val and {duplicates['test']} test images also appear in an earlier split "
            "(exact pixel match); results on them overstate accuracy. Add dedup=1 to the spec to drop them"
        )
    notes = list(raw.notes)
    if dedup:
        notes.append(
            f"dedup: dropped {duplicates['val']} val and {duplicates['test']} test images seen in an earlier split"
        )
    warnings.extend(_empty_class_warnings(raw.classes, labels))
    splits = {
        name: Split(torch.from_numpy(images[name]), torch.from_numpy(labels[name]), raw.label_mode)
        for name in SPLITS
    }
    return Dataset(
        spec=str(spec),
        classes=tuple(raw.classes),
        image_shape=shape,
        splits=splits,
        fingerprint=fingerprint(raw.classes, raw.label_mode, shape, images, labels),
        label_mode=raw.label_mode,
        warnings=warnings,
        notes=notes,
        duplicates=duplicates,
        dedup=dedup,
        crop=raw.crop,
    )


def require_trainable(ds: Dataset) -> Dataset:
    """`ds` if a network can be trained and measured on it, else DataError: every split
    holds images (an accuracy over none was recorded as a complete 0.00%) and training
    at least two (batch normalisation, the paper head's BatchNorm1d or a 1x1 final map,
    has no statistics over a batch of one: refused, not padded or skipped). Every
    training path loads its data through this (harness.trial.load_trial_dataset);
    `harness data show` does not, so that it can show what such data holds."""
    sizes = {name: len(ds.splits[name]) for name in SPLITS}
    for name, size in sizes.items():
        if size == 0 or (name == "train" and size < 2):
            after = " after dedup dropped the images seen in an earlier split" if ds.dedup else ""
            raise DataError(
                f"{ds.spec}: the {name} split holds {size} image{'s' * (size != 1)}{after} "
                f"(splits: {', '.join(f'{n} {s}' for n, s in sizes.items())}); every split "
                "needs images, and training at least 2 (batch normalisation takes statistics "
                "over the batch)"
            )
    return ds


def _image_shape(images: dict[str, np.ndarray]) -> tuple[int, int, int]:
    shapes = {tuple(array.shape[1:]) for array in images.values() if array.ndim == 4 and len(array)}
    if not shapes:
        shapes = {tuple(array.shape[1:]) for array in images.values() if array.ndim == 4}
    # Sources build every split with one shape; more than one is a bug, not bad input.
    assert len(shapes) == 1, f"splits differ in image shape: {shapes}"
    return shapes.pop()  # type: ignore[return-value]


def _digests(images: np.ndarray) -> list[bytes]:
    flat = images.reshape(len(images), int(np.prod(images.shape[1:])))
    return [hashlib.blake2b(row, digest_size=16).digest() for row in flat]


def _empty_class_warnings(classes: tuple[str, ...], labels: dict[str, np.ndarray]) -> list[str]:
    warnings = []
    for name in SPLITS:
        split_labels = labels[name]
        if len(split_labels) == 0:
            warnings.append(f"split {name} is empty")
            continue
        hard = split_labels.argmax(1) if split_labels.ndim == 2 else split_labels
        counts = np.bincount(hard, minlength=len(classes))
        empty = [classes[i] for i in np.flatnonzero(counts == 0)]
        if empty:
            warnings.append(f"split {name} has no image of class {', '.join(empty)}")
    return warnings


def fingerprint(
    classes: tuple[str, ...],
    label_mode: str,
    shape: tuple[int, int, int],
    images: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
) -> str:
    """sha256 (first 16 hex digits) of what a model sees: pixels, labels, class names, label mode."""
    digest = hashlib.sha256(FINGERPRINT_VERSION)
    digest.update(repr((tuple(classes), label_mode, tuple(shape))).encode())
    for name in SPLITS:
        digest.update(f"{name}:{len(images[name])}:{labels[name].dtype.str}".encode())
        digest.update(_as_bytes(images[name]))
        digest.update(_as_bytes(labels[name]))
    return digest.hexdigest()[:16]


def _as_bytes(array: np.ndarray) -> memoryview:
    """The array's bytes without a copy (also for empty arrays, which memoryview.cast refuses)."""
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
