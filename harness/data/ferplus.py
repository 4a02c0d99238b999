"""`ferplus:DIR`: FER2013 images with the FER+ crowd labels (Barsoum et al. 2016).

Two layouts are read:

- `fer2013.csv` + `fer2013new.csv` in DIR (fer2013.csv may also sit in
  DIR/fer2013/): joined row by row; rows whose `Image name` is empty are
  not part of FER+. A different row count, or rows whose Usage differ, mean
  the files do not belong together: an error.
- FERPlus-style PNG folders (what Microsoft's generate_training_data.py
  writes): DIR/FER2013Train, FER2013Valid, FER2013Test (or DIR/data/...),
  each with `fer0000000.png`-style images and a header-less `label.csv` of
  `name[,face box],10 vote counts`.

When both are present the CSV files win (faster to parse).

Label modes (docs/data.md has the rules in full, with the counts each gives):

- `majority` (default), `probability`, `crossentropy`: Microsoft's reference
  code (src/ferplus.py, src/train.py), 8 emotions. An emotion with a single
  vote first counts as zero. `majority` keeps the top emotion if it has more
  than half of the votes, else (or if the top is unknown / not a face) drops
  the image. `probability` / `crossentropy` label the *training* split with
  float32 (N, 8) distributions: emotions in vote order (ties together) until
  they hold 75% of the votes or three are taken; drop the image when they
  hold 50% or less, when more than three tie in, or when unknown / not-a-face
  leads. `crossentropy` trains on them, `probability` draws a hard label from
  them each time an image is seen. Their val and test splits are the
  `majority` ones, hard labels included, as Microsoft's train.py does: all
  three modes are scored on the same images and labels, and no argmax of a
  tied distribution decides a test label.
- `all10`: our reading of the seed paper's Dense(10) head: the majority rule
  over all 10 columns, keeping `unknown` and `NF` as classes 8 and 9.
- `plurality`: the reading that keeps FER2013's full splits: every row of
  fer2013.csv, image name or not, labelled with the column holding the most
  raw votes (10 classes). Ties go to the first of the tied columns in file
  order (what numpy's argmax does); a row with no votes at all is `unknown`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from harness.data import fer2013
from harness.data.cache import Cache, files_identity
from harness.data.images import read_gray
from harness.data.spec import DataSpec
from harness.data.types import SPLITS, RawData
from harness.errors import DataError

__all__ = ["EMOTIONS", "MODES", "VOTE_COLUMNS", "eval_mode", "labels_from_votes", "load"]

VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
EMOTIONS: tuple[str, ...] = VOTE_COLUMNS[:8]
NEW_HEADER: tuple[str, ...] = ("Usage", "Image name", *VOTE_COLUMNS)
# A vote count is a number of taggers (10 per image in FER+): 4 digits leave room.
MAX_VOTE_DIGITS = 4
FOLDERS = ("FER2013Train", "FER2013Valid", "FER2013Test")  # in SPLITS order
# spec.py lists the same names as the `mode` option's choices (a test checks).
MODES: tuple[str, ...] = ("majority", "probability", "crossentropy", "all10", "plurality")
SOFT_MODES: tuple[str, ...] = ("probability", "crossentropy")
TEN_CLASS_MODES: tuple[str, ...] = ("all10", "plurality")
UNKNOWN = VOTE_COLUMNS.index("unknown")


def load(spec: DataSpec, cache: Cache) -> RawData:
    root = spec.path
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (ferplus expects the folder holding fer2013new.csv)")
    csvs = _find_csvs(root)
    if csvs is not None:
        fer_csv, new_csv = csvs
        rows = fer2013.read_csv_cached(fer_csv, cache)
        usage, has_name, votes = read_votes_csv(new_csv)
        _join_check(fer_csv, new_csv, rows["usage"], usage)
        images, source = rows["images"], f"{fer_csv.name} + {new_csv.name}"
    else:
        base = _find_folders(root)
        arrays = _read_folders_cached(base, cache)
        images, usage, votes = arrays["images"], arrays["usage"], arrays["votes"]
        has_name = np.ones(len(usage), dtype=bool)
        source = f"PNG folders in {base}"
    return _to_raw(images, usage, has_name, votes, spec["mode"], source)


def _find_csvs(root: Path) -> tuple[Path, Path] | None:
    new_csv = root / "fer2013new.csv"
    for fer_csv in (root / "fer2013.csv", root / "fer2013" / "fer2013.csv"):
        if fer_csv.is_file() and new_csv.is_file():
            return fer_csv, new_csv
    if new_csv.is_file() and not any(
        (base / FOLDERS[0]).is_dir() for base in (root, root / "data")
    ):
        raise DataError(
            f"{root}: found fer2013new.csv but not fer2013.csv beside it (FER+ needs both)"
        )
    return None


def _find_folders(root: Path) -> Path:
    for base in (root, root / "data"):
        if all((base / name).is_dir() for name in FOLDERS):
            return base
    raise DataError(
        f"{root}: no FER+ data: expected fer2013.csv + fer2013new.csv, "
        f"or the folders {', '.join(FOLDERS)} with label.csv"
    )


def _join_check(fer_csv: Path, new_csv: Path, fer_usage: np.ndarray, new_usage: np.ndarray) -> None:
    if len(fer_usage) != len(new_usage):
        raise DataError(
            f"{new_csv}: {len(new_usage)} data rows but {fer_csv} has {len(fer_usage)}; "
            "the files are joined row by row and must have the same number of rows"
        )
    differ = np.flatnonzero(fer_usage != new_usage)
    if differ.size:
        row = int(differ[0])
        names = list(fer2013.USAGES)
        raise DataError(
            f"{new_csv} data row {row + 1}: Usage {names[new_usage[row]]} but {fer_csv} says "
            f"{names[fer_usage[row]]}; the files are not in the same order"
        )


def read_votes_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fer2013new.csv -> usage (N,) int8, has_name (N,) bool, votes (N, 10) int64."""
    usage: list[int] = []
    has_name: list[bool] = []
    votes: list[list[int]] = []
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream)
            header = [name.strip() for name in next(reader, [])]
            if tuple(header) != NEW_HEADER:
                raise DataError(
                    f"{path} line 1: wrong header {','.join(header)!r}; expected {','.join(NEW_HEADER)}"
                )
            for row in reader:
                if not row:
                    continue
                where = f"{path} line {reader.line_num}"
                if len(row) != len(NEW_HEADER):
                    raise DataError(f"{where}: expected {len(NEW_HEADER)} fields, got {len(row)}")
                name = row[0].strip()
                if name not in fer2013.USAGES:
                    raise DataError(
                        f"{where}: unknown Usage {name!r} (expected {', '.join(fer2013.USAGES)})"
                    )
                usage.append(fer2013.USAGES[name])
                has_name.append(bool(row[1].strip()))
                votes.append(_votes(row[2:], where))
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text CSV file ({error.reason})") from None
    except csv.Error as error:
        raise DataError(f"{path}{fer2013.csv_line(reader)}: malformed CSV ({error})") from None
    if not votes:
        raise DataError(f"{path}: no data rows after the header")
    return np.array(usage, dtype=np.int8), np.array(has_name), np.array(votes, dtype=np.int64)


def _votes(fields: list[str], where: str) -> list[int]:
    counts = []
    for column, text in zip(VOTE_COLUMNS, fields, strict=True):
        text = text.strip()
        # isdigit() alone also passes '²' and 25 digits, which int() and int64 refuse.
        if not (text.isascii() and text.isdigit() and len(text) <= MAX_VOTE_DIGITS):
            raise DataError(
                f"{where}: vote count for {column} must be a non-negative integer, got "
                f"{text!r} (at most {MAX_VOTE_DIGITS} digits)"
            )
        counts.append(int(text))
    return counts


def _read_folders_cached(base: Path, cache: Cache) -> dict[str, np.ndarray]:
    label_files = [base / name / "label.csv" for name in FOLDERS]
    for label_file in label_files:
        if not label_file.is_file():
            raise DataError(f"{label_file}: file not found (each FER+ folder needs its label.csv)")
    images = [p for name in FOLDERS for p in (base / name).glob("*.png")]
    key = {"files": files_identity([*label_files, *images])}
    return cache.get("ferplus-png", key, lambda: _read_folders(label_files))


def _read_folders(label_files: list[Path]) -> dict[str, np.ndarray]:
    images: list[np.ndarray] = []
    usage: list[int] = []
    votes: list[list[int]] = []
    for code, label_file in enumerate(label_files):
        reader = None
        try:
            with open(label_file, newline="", encoding="utf-8-sig") as stream:
                reader = csv.reader(stream)
                for row in reader:
                    if not row or not row[0].strip():
                        continue
                    where = f"{label_file} line {reader.line_num}"
                    if len(row) not in (11, 12):
                        raise DataError(
                            f"{where}: expected image name, [face box,] and 10 vote counts, got {len(row)} fields"
                        )
                    votes.append(_votes(row[-10:], where))
                    image = label_file.parent / row[0].strip()
                    if not image.is_file():
                        raise DataError(f"{where}: image {image} not found")
                    images.append(read_gray(image, fer2013.SIDE))
                    usage.append(code)
        except UnicodeDecodeError as error:
            raise DataError(f"{label_file}: not a text CSV file ({error.reason})") from None
        except csv.Error as error:
            where = fer2013.csv_line(reader)
            raise DataError(f"{label_file}{where}: malformed CSV ({error})") from None
    if not images:
        raise DataError(f"{label_files[0].parent.parent}: the FER+ label.csv files list no images")
    return {
        "images": np.stack(images),
        "usage": np.array(usage, dtype=np.int8),
        "votes": np.array(votes, dtype=np.int64),
    }


def eval_mode(mode: str) -> str:
    """The rule that labels val and test under `mode`.

    Microsoft's train.py reads val and test with `majority` whatever the
    training mode, so the soft modes are scored on the images and hard labels
    of `majority`; the other modes label every split with their own rule.
    """
    _check_mode(mode)
    return "majority" if mode in SOFT_MODES else mode


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise DataError(f"unknown FER+ mode {mode!r} (known: {', '.join(MODES)})")


def _to_raw(
    images: np.ndarray,
    usage: np.ndarray,
    has_name: np.ndarray,
    votes: np.ndarray,
    mode: str,
    source: str,
) -> RawData:
    rules = {"train": mode, "val": eval_mode(mode), "test": eval_mode(mode)}
    labelled = {rule: labels_from_votes(votes, rule) for rule in set(rules.values())}
    # plurality is defined on every FER2013 row; the others only on FER+'s named ones.
    in_source = np.ones_like(has_name) if mode == "plurality" else has_name
    splits = {}
    kept = dropped = 0
    for code, name in enumerate(SPLITS):
        keep, labels = labelled[rules[name]]
        rows = usage == code
        chosen = rows & keep & in_source
        splits[name] = (images[chosen][:, None], labels[chosen])
        kept += int(chosen.sum())
        dropped += int((rows & in_source & ~keep).sum())
    unnamed = int((~has_name).sum())
    classes = VOTE_COLUMNS if mode in TEN_CLASS_MODES else EMOTIONS
    if mode == "plurality":
        why = f"every row, the {unnamed} without an image name too"
    elif mode in SOFT_MODES:
        why = (
            f"{unnamed} without an image name, {dropped} dropped: train by the {mode} rule, "
            "val and test by the majority rule"
        )
    else:
        why = f"{unnamed} without an image name, {dropped} dropped by the {mode} rule"
    notes = [f"FER+ from {source}: {kept} of {len(usage)} rows kept in mode {mode} ({why})"]
    if mode in SOFT_MODES:
        notes.append(
            f"{mode}: only train holds label distributions; val and test are the majority "
            "mode's images with hard majority labels, as in Microsoft's train.py"
        )
    if mode == "plurality":
        counts = np.asarray(votes)
        top = counts.max(1)
        tied = int((((counts == top[:, None]).sum(1) > 1) & (top > 0)).sum())
        empty = int((top == 0).sum())
        notes.append(
            f"plurality: {tied} rows with a tied top count went to the first tied column "
            f"(order {', '.join(VOTE_COLUMNS)}); {empty} rows without votes are unknown"
        )
    return RawData(classes=classes, label_mode=mode, splits=splits, notes=notes)


def labels_from_votes(votes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(keep (N,) bool, labels) for (N, 10) vote counts under one FER+ labelling rule.

    Labels are int64 class indices (majority, all10, plurality) or float32
    (N, 8) distributions (probability, crossentropy); rows with keep False
    hold placeholders. This is the rule alone: which rule labels val and test
    is `eval_mode`'s choice.
    """
    _check_mode(mode)
    counts = np.asarray(votes)
    if mode == "plurality":
        # Raw votes: dropping single votes could only turn a clear plurality
        # into a tie. argmax takes the first of tied maxima, i.e. column order.
        top = counts.argmax(1)
        top[counts.max(1) == 0] = UNKNOWN  # nobody voted: no emotion to invent
        return np.ones(len(counts), dtype=bool), top.astype(np.int64)
    raw = counts.astype(np.float64)
    raw[raw <= 1] = 0.0  # a single vote is an outlier
    total = raw.sum(1)
    if mode in ("majority", "all10"):
        top = raw.argmax(1)
        keep = raw.max(1) > 0.5 * total
        if mode == "majority":
            keep &= top < len(EMOTIONS)
        return keep, top.astype(np.int64)
    emotion, dropped = _vote_order(raw, total)
    keep = ~dropped & (emotion.argmax(1) < len(EMOTIONS))
    kept = emotion[:, : len(EMOTIONS)]
    sums = kept.sum(1, keepdims=True)
    dist = np.divide(kept, sums, out=np.zeros_like(kept), where=sums > 0)
    return keep, dist.astype(np.float32)


def _vote_order(raw: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's probability/crossentropy selection, vectorised over rows.

    Each round takes every column tied at the current maximum, in column
    order, stopping after the first unknown/NF column; an unknown/NF column
    taken after some emotion is put back to zero and ends the selection.
    A round that goes on always takes at least one column, and at most three
    may be taken, so three rounds suffice.
    """
    raw = raw.copy()
    n, k = raw.shape
    columns = np.arange(k)
    emotion = np.zeros_like(raw)
    taken_sum = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    valid = np.ones(n, dtype=bool)
    special = len(EMOTIONS)  # first of unknown, NF
    rows = np.arange(n)
    for _ in range(3):
        active = valid & (count < 3) & (taken_sum < 0.75 * total)
        if not active.any():
            break
        peak = raw.max(1)
        tied = (raw == peak[:, None]) & active[:, None]
        hits_special = tied[:, special:].any(1)
        first_special = special + tied[:, special:].argmax(1)
        last = np.where(hits_special, first_special, k - 1)
        taken = tied & (columns[None, :] <= last[:, None])
        emotion = np.where(taken, peak[:, None], emotion)
        raw[taken] = 0.0
        count += taken.sum(1)
        taken_sum += peak * taken.sum(1)
        valid &= ~hits_special
        reset = hits_special & (emotion.sum(1) > peak)
        emotion[rows[reset], first_special[reset]] = 0.0
        count -= reset
    dropped = (emotion.sum(1) <= 0.5 * total) | (count > 3)
    return emotion, dropped
