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


@dataclass
class RawData:
    """A parsed dataset: per split, uint8 images (N, C, H, W) and labels.

    Labels are int64 (N,) class indices, or float32 (N, K) distributions for
    the soft FER+ modes. `notes` says what the source chose or dropped (frames
    used, images without a FER+ majority...), for `harness data show`.
    """

    classes: tuple[str, ...]
    label_mode: str
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    notes: list[str] = field(default_factory=list)


def raw_to_arrays(raw: RawData) -> dict[str, np.ndarray]:
    """Flatten for the .npz cache (plain arrays only: no pickles)."""
    arrays = {
        "classes": np.array(raw.classes, dtype=str),
        "label_mode": np.array(raw.label_mode, dtype=str),
        "notes": np.array(raw.notes, dtype=str),
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
    )
