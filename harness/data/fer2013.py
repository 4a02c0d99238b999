"""`fer2013:PATH`: Kaggle's fer2013.csv (`emotion,pixels,Usage`).

Usage Training / PublicTest / PrivateTest become train / val / test (select
on PublicTest, report PrivateTest). Every row is checked; the first bad one
stops the load with its file and line: a partial FER2013 would be a
different dataset with the same name.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np

from harness.data.cache import Cache, file_identity
from harness.data.spec import DataSpec
from harness.data.types import FER2013_CLASSES, SPLITS, RawData
from harness.errors import DataError

__all__ = ["USAGES", "load", "read_csv", "rows_to_raw"]

SIDE = 48
PIXELS = SIDE * SIDE
COLUMNS = ("emotion", "pixels", "Usage")
# Usage value -> index into SPLITS
USAGES = {"Training": 0, "PublicTest": 1, "PrivateTest": 2}
_NUMBER = re.compile(r"\d+")


def load(spec: DataSpec, cache: Cache) -> RawData:
    rows = read_csv_cached(spec.path, cache)
    return rows_to_raw(rows["images"], rows["emotion"], rows["usage"])


def rows_to_raw(images: np.ndarray, labels: np.ndarray, usage: np.ndarray) -> RawData:
    splits = {}
    for code, name in enumerate(SPLITS):
        keep = usage == code
        splits[name] = (images[keep][:, None], labels[keep].astype(np.int64))
    return RawData(classes=FER2013_CLASSES, label_mode="hard", splits=splits)


def read_csv_cached(path: Path, cache: Cache) -> dict[str, np.ndarray]:
    """`read_csv`, through the cache (FER+ reuses the same entry)."""
    _check_file(path)
    return cache.get("fer2013", {"file": file_identity(path)}, lambda: read_csv(path))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file (fer2013 expects the path of fer2013.csv)")


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """All rows in file order: images (N, 48, 48) uint8, emotion (N,) int64, usage (N,) int8."""
    _check_file(path)
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream)
            return _parse(path, reader)
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text CSV file ({error.reason})") from None
    except csv.Error as error:
        # line_num counts the line that failed (a field over csv's size limit, a stray NUL).
        raise DataError(f"{path}{csv_line(reader)}: malformed CSV ({error})") from None


def csv_line(reader: object) -> str:
    """' line N' for the line a csv reader stopped at, '' before it read any."""
    line = getattr(reader, "line_num", 0)
    return f" line {line}" if line else ""


def _parse(path: Path, reader) -> dict[str, np.ndarray]:
    header = next(reader, None)
    names = [name.strip() for name in header or []]
    if header is None or any(column not in names for column in COLUMNS):
        raise DataError(
            f"{path} line 1: wrong header {','.join(names)!r}; expected the columns {','.join(COLUMNS)}"
        )
    i_emotion, i_pixels, i_usage = (names.index(column) for column in COLUMNS)
    images: list[np.ndarray] = []
    emotions: list[int] = []
    usages: list[int] = []
    with warnings.catch_warnings():
        # numpy warns (and will raise) when a pixel string does not parse to its end.
        warnings.simplefilter("error", DeprecationWarning)
        for row in reader:
            if not row:
                continue
            where = f"{path} line {reader.line_num}"
            if len(row) != len(names):
                raise DataError(f"{where}: expected {len(names)} fields, got {len(row)}")
            emotions.append(_emotion(row[i_emotion], where))
            usage = row[i_usage].strip()
            if usage not in USAGES:
                raise DataError(f"{where}: unknown Usage {usage!r} (expected {', '.join(USAGES)})")
            usages.append(USAGES[usage])
            images.append(parse_pixels(row[i_pixels], where))
    if not images:
        raise DataError(f"{path}: no data rows after the header")
    return {
        "images": np.stack(images).reshape(-1, SIDE, SIDE),
        "emotion": np.array(emotions, dtype=np.int64),
        "usage": np.array(usages, dtype=np.int8),
    }


def _emotion(text: str, where: str) -> int:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise DataError(f"{where}: emotion must be an integer 0..6, got {text!r}")
    value = int(text)
    if value >= len(FER2013_CLASSES):
        raise DataError(
            f"{where}: unknown label {value} (emotion is 0..6: {', '.join(FER2013_CLASSES)})"
        )
    return value


def parse_pixels(text: str, where: str) -> np.ndarray:
    """'70 80 82 ...' -> uint8 (2304,); a DataError names the first bad value."""
    try:
        values = np.fromstring(text, dtype=np.int32, sep=" ")
    except (DeprecationWarning, ValueError):
        values = None
    if values is None or values.size != PIXELS:
        _diagnose(text, where)
    if values.min() < 0 or values.max() > 255:
        bad = int(values[(values < 0) | (values > 255)][0])
        raise DataError(f"{where}: pixel value {bad} outside 0..255")
    return values.astype(np.uint8)


def _diagnose(text: str, where: str) -> NoReturn:
    tokens = text.split()
    for position, token in enumerate(tokens, start=1):
        if not _NUMBER.fullmatch(token.lstrip("-")):
            raise DataError(
                f"{where}: non-numeric pixel value {token!r} (value {position} of {len(tokens)})"
            )
    raise DataError(f"{where}: expected {PIXELS} pixel values, got {len(tokens)}")
