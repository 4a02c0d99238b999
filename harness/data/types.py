"""What every source hands over: numpy arrays per split, before torch sees them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")

# Kaggle's emotion codes 0..6, in that order.
FER2013_CLASSES: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)

# How a source cut each picture before resizing it to the dataset's square size:
# "none" takes the whole picture (one that is not square is squashed), "centre-square"
# its largest centred square (the CK+ original release's 640x490 frames). `harness
# predict` must cut a picture the same way, so exports record it (config.json's
# input.crop, harness.export.preprocess).
CROP_MEANINGS: dict[str, str] = {
    "none": "each picture resized whole to the image size",
    "centre-square": "each picture cut to its largest centred square, then resized",
}
CROPS: tuple[str, ...] = tuple(CROP_MEANINGS)


@dataclass
class RawData:
    """A parsed dataset: per split, uint8 images (N, C, H, W) and labels.

    Labels are int64 (N,) class indices, or float32 (N, K) distributions for
    the soft FER+ modes. `notes` says what the source chose or dropped (frames
    used, images without a FER+ majority...), for `harness data show`. `crop` is how
    the pictures were cut before resizing (one of CROPS).
    """

    classes: tuple[str, ...]
    label_mode: str
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    notes: list[str] = field(default_factory=list)
    crop: str = "none"

    def __post_init__(self) -> None:
        # Set by our own sources, never by a user: another value is a bug.
        assert self.crop in CROPS, f"unknown crop {self.crop!r} (known: {CROPS})"


def raw_to_arrays(raw: RawData) -> dict[str, np.ndarray]:
    """Flatten for the .npz cache (plain arrays only: no pickles)."""
    arrays = {
        "classes": np.array(raw.classes, dtype=str),
        "label_mode": np.array(raw.label_mode, dtype=str),
        "notes": np.array(raw.notes, dtype=str),
        "crop": np.array(raw.crop, dtype=str),
    }
    for name, (images, labels) in raw.splits.items():
        arrays[f"{name}_images"] = images
        arrays[f"{name}_labels"] = labels
    return arrays


def raw_from_arrays(arrays: dict[str, np.ndarray]) -> RawData:
    return RawData(
        classes=tuple(str(c) for c in arrays["classes"]),
        label_mode=str(arrays["label_mode"]),
        splits={name: (arrays[f"{name}_images"], arrays[f"{name}_labels"]) for name in SPLITS},
        notes=[str(n) for n in arrays["notes"]],
        # Entries written before `crop` existed come from the synthetic source only (the
        # one source that caches a RawData), which draws its pictures and never crops.
        crop=str(arrays["crop"]) if "crop" in arrays else "none",
    )
