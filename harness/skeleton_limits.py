"""The ranges of the skeleton's numeric fields, for search-space files and flags alike.

Far above any real network, below what makes a typo hang or crash: a space of
`depths = [20000]` has 2^20000 architectures whose count alone cannot be
printed, `counts` over 10^7 positions computes factorial(10^7), and
`drop_rate = 5` is refused by torch only when the network is built. Torch-free.
"""

from __future__ import annotations

import math
from typing import Any

from harness.grammar import MAX_BLOCKS

__all__ = ["MAX_POSITIONS", "MAX_WIDTH", "MAX_WIDTH_MULT", "skeleton_problem"]

MAX_WIDTH = 16_384
MAX_WIDTH_MULT = 16.0
MAX_POSITIONS = MAX_BLOCKS  # an architecture string expands to at most this many blocks


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(
        value
    )


def skeleton_problem(name: str, value: Any) -> str:
    """What is wrong with skeleton field `name` set to `value`, "" if nothing (or not numeric)."""
    if name in ("widths", "depths"):
        if not isinstance(value, list) or not value or not all(_int(v) and v >= 1 for v in value):
            return f"expected a list of positive integers, got {value!r}"
        if name == "widths" and max(value) > MAX_WIDTH:
            return f"each width must be at most {MAX_WIDTH}, got {max(value)}"
        if name == "depths" and sum(value) > MAX_POSITIONS:
            return (
                f"has {sum(value)} block positions; at most {MAX_POSITIONS} (the grammar's "
                f"limit on blocks), got {value!r}"
            )
        return ""
    if name == "width_mult" and not (_number(value) and 0 < value <= MAX_WIDTH_MULT):
        return f"expected a number above 0 and at most {MAX_WIDTH_MULT:g}, got {value!r}"
    if name == "drop_rate" and not (_number(value) and 0 <= value < 1):
        return f"expected a dropout probability from 0 up to (not including) 1, got {value!r}"
    if name == "stem_width" and not (_number(value) and 0 < value <= MAX_WIDTH):
        return f"expected a number above 0 and at most {MAX_WIDTH}, got {value!r}"
    return ""
