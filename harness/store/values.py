"""Turning Python, numpy and torch values into what the database stores."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
from pathlib import PurePath
from typing import Any

__all__ = ["config_hash", "json_hash", "plain", "to_float", "to_int", "to_json"]


def plain(value: Any) -> Any:
    """`value` as plain JSON data: numpy/torch scalars and arrays unwrapped,
    tuples as lists, non-finite floats as None, paths and dates as strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [plain(item) for item in items]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return plain(value.tolist())
    if hasattr(value, "item"):
        return plain(value.item())
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `config` (sorted keys, no whitespace, NaN as null)."""
    return json_hash(config)


def to_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    return None if value is None else int(value)


def to_json(value: Any) -> Any:
    return None if value is None else plain(value)


def json_hash(value: Any) -> str:
    """sha256 of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
