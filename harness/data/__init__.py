"""Datasets as in-memory uint8 tensors, and batched augmentation on the training device.

    ds = load_dataset("synthetic")           # or fer2013:PATH, ferplus:DIR, ckplus:DIR, folder:DIR
    train = ds.splits["train"].to(device)
    aug = BatchAugment(crop_padding=4, flip=True, max_rotate_deg=10.0, seed=0)
    for images, labels in iterate_batches(train, 64, shuffle=True, generator=g, drop_last=True):
        x = aug(images)                       # float32 in [0, 1]; evaluation uses to_float(images)
        if train.label_mode == "probability":
            labels = sample_hard_labels(labels, g)

See `harness.data.spec` for the spec syntax and each source module for its
file layouts and rules.
"""

from harness.data.augment import BatchAugment, to_float
from harness.data.dataset import Dataset, Split, require_trainable
from harness.data.load import load_dataset
from harness.data.loader import iterate_batches, sample_hard_labels
from harness.data.spec import DEFAULT_SPEC, DataSpec, parse_spec
from harness.data.types import FER2013_CLASSES, SPLITS

__all__ = [
    "DEFAULT_SPEC",
    "FER2013_CLASSES",
    "SPLITS",
    "BatchAugment",
    "DataSpec",
    "Dataset",
    "Split",
    "iterate_batches",
    "load_dataset",
    "parse_spec",
    "require_trainable",
    "sample_hard_labels",
    "to_float",
]
