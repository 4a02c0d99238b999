"""`ckplus:DIR`: the extended Cohn-Kanade set (CK+), with subject-independent folds.

Two layouts are read:

- class folders (the common "CK+48" layout): DIR/anger/S010_004_00000017.png,
  ... Classes are the folder names, sorted.
- the original release: DIR/cohn-kanade-images/S005/001/*.png and
  DIR/Emotion/S005/001/*_emotion.txt (either may sit one folder deeper).
  Only sequences with an emotion file are used, and of each the last
  `frames` frames (default 3: the frames closest to the peak, as CK+48
  does); `neutral=1` adds each sequence's first frame as `neutral`. Frames
  are 640x490 without face boxes: they are cropped to a centred square and
  resized (the dataset's `crop`, which an export records so that `harness
  predict` cuts pictures the same way), so prefer a face-cropped copy (CK+48)
  when you have one.

CK+ has no official split. Subjects (the `S010` in `S010_004_00000017.png`)
are dealt to `folds` folds, largest subject first, each to the fold with the
fewest images so far: no subject is in two folds, folds are balanced, and the
assignment does not depend on a seed. `fold=i` is the test fold, fold i+1
(mod folds) the validation fold, the rest train.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from harness.data.cache import Cache, files_identity
from harness.data.images import image_files, read_all
from harness.data.spec import DataSpec
from harness.data.types import RawData
from harness.errors import DataError

__all__ = ["EMOTION_CODES", "assign_folds", "load", "subject_of"]

# The Emotion/ files' codes 0..7.
EMOTION_CODES: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "sadness",
    "surprise",
)
_SUBJECT = re.compile(r"^(S\d+)_", re.IGNORECASE)


def load(spec: DataSpec, cache: Cache) -> RawData:
    root = spec.path
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (ckplus expects the CK+ folder)")
    size, frames, neutral = spec["size"], spec["frames"], spec["neutral"]
    release = _find(root, "cohn-kanade-images")
    if release is not None:
        emotion_root = _find(root, "Emotion")
        if emotion_root is None:
            raise DataError(f"{root}: found {release.name}/ but no Emotion/ folder with the labels")
        files = [*release.rglob("*.png"), *emotion_root.rglob("*_emotion.txt")]
        key = {
            "layout": "release",
            "size": size,
            "frames": frames,
            "neutral": neutral,
            "files": files_identity(files),
        }
        # The crop is the layout's (its key), not a cached array: _read_release always crops.
        arrays = cache.get(
            "ckplus", key, lambda: _read_release(release, emotion_root, size, frames, neutral)
        )
        crop = "centre-square"
        how = (
            f"CK+ original release: last {frames} frame(s) of each labelled sequence"
            f"{' plus its first frame as neutral' if neutral else ''}, centre-cropped and resized to {size}x{size}"
        )
    else:
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise DataError(f"{root}: no class folders and no cohn-kanade-images/ folder")
        files = [f for d in class_dirs for f in image_files(d)]
        key = {"layout": "classes", "size": size, "files": files_identity(files)}
        arrays = cache.get("ckplus", key, lambda: _read_class_folders(class_dirs, size))
        crop = "none"
        how = f"CK+ class folders: {len(files)} images, grayscale {size}x{size}"
    classes = tuple(str(c) for c in arrays["classes"])
    subjects = arrays["subjects"].astype(str)
    folds = assign_folds(subjects, spec["folds"])
    test_fold = spec["fold"]
    val_fold = (test_fold + 1) % spec["folds"]
    parts = {
        "train": (folds != test_fold) & (folds != val_fold),
        "val": folds == val_fold,
        "test": folds == test_fold,
    }
    images, labels = arrays["images"], arrays["labels"]
    splits = {name: (images[mask], labels[mask]) for name, mask in parts.items()}
    notes = [
        how,
        f"{len(np.unique(subjects))} subjects in {spec['folds']} subject-independent folds: "
        f"test fold {test_fold}, val fold {val_fold}, train the rest",
    ]
    return RawData(classes=classes, label_mode="hard", splits=splits, notes=notes, crop=crop)


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / name, *(p / name for p in sorted(root.iterdir()) if p.is_dir())):
        if candidate.is_dir():
            return candidate
    return None


def subject_of(path: Path) -> str:
    match = _SUBJECT.match(path.name)
    if match is None:
        raise DataError(
            f"cannot tell the subject of {path}: CK+ file names start with the subject, "
            "as in S010_004_00000017.png (subjects keep the folds independent)"
        )
    return match.group(1).upper()


def _read_class_folders(class_dirs: list[Path], size: int) -> dict[str, np.ndarray]:
    paths, labels = [], []
    for label, folder in enumerate(class_dirs):
        for path in image_files(folder):
            paths.append(path)
            labels.append(label)
    if not paths:
        raise DataError(f"{class_dirs[0].parent}: the class folders hold no images")
    subjects = [subject_of(p) for p in paths]
    return {
        "images": read_all(paths, size),
        "labels": np.array(labels, dtype=np.int64),
        "subjects": np.array(subjects, dtype=str),
        "classes": np.array([d.name for d in class_dirs], dtype=str),
    }


def _read_release(
    release: Path, emotion_root: Path, size: int, frames: int, neutral: bool
) -> dict[str, np.ndarray]:
    classes = EMOTION_CODES if neutral else EMOTION_CODES[1:]
    offset = 0 if neutral else 1
    paths, labels = [], []
    label_files = sorted(emotion_root.glob("*/*/*_emotion.txt"))
    if not label_files:
        raise DataError(f"{emotion_root}: no */*/*_emotion.txt label files")
    for label_file in label_files:
        code = _read_code(label_file)
        sequence = release / label_file.parent.parent.name / label_file.parent.name
        if not sequence.is_dir():
            raise DataError(f"{label_file}: its image sequence {sequence} is missing")
        sequence_frames = image_files(sequence)
        if not sequence_frames:
            raise DataError(f"{sequence}: no images for the labels in {label_file}")
        for path in sequence_frames[-frames:]:
            paths.append(path)
            labels.append(code - offset)
        if neutral and len(sequence_frames) > frames:
            paths.append(sequence_frames[0])
            labels.append(0)
    subjects = [subject_of(p) for p in paths]
    return {
        "images": read_all(paths, size, center_crop=True),
        "labels": np.array(labels, dtype=np.int64),
        "subjects": np.array(subjects, dtype=str),
        "classes": np.array(classes, dtype=str),
    }


def _read_code(label_file: Path) -> int:
    try:
        text = label_file.read_text().strip()
        value = float(text)
    except (OSError, UnicodeDecodeError, ValueError):
        raise DataError(f"{label_file}: expected one emotion code 1..7") from None
    # float() reads nan, inf and a 25-digit code too; int() of the first two raises.
    if not math.isfinite(value) or value != int(value) or not 1 <= value <= 7:
        raise DataError(f"{label_file}: unknown label {text!r} (CK+ emotion codes are 1..7)")
    return int(value)


def assign_folds(subjects: np.ndarray, folds: int) -> np.ndarray:
    """Fold index (0..folds-1) per image; all images of a subject share a fold."""
    names, inverse, counts = np.unique(subjects, return_inverse=True, return_counts=True)
    if len(names) < folds:
        raise DataError(f"CK+ has {len(names)} subjects here, fewer than folds={folds}")
    load = np.zeros(folds, dtype=np.int64)
    fold_of = np.empty(len(names), dtype=np.int64)
    # Largest subjects first; np.argmin takes the lowest fold index on ties.
    for subject in sorted(range(len(names)), key=lambda s: (-counts[s], names[s])):
        fold = int(np.argmin(load))
        fold_of[subject] = fold
        load[fold] += counts[subject]
    return fold_of[inverse]
