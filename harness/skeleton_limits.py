"""What the skeleton's fields may be, for search-space files, flags and `Skeleton` alike.

Far above any real network, below what makes a typo hang or crash: a space of
`depths = [20000]` has 2^20000 architectures whose count alone cannot be
printed, `counts` over 10^7 positions computes factorial(10^7), and
`drop_rate = 5` is refused by torch only when the network is built. Torch-free.
"""

from __future__ import annotations

from typing import Any

from harness.config import SKELETON_CHOICES
from harness.errors import ConfigError
from harness.grammar import MAX_BLOCKS
from harness.limits import Limit, check, one_of, refuse

__all__ = ["LIST_FIELDS", "MAX_POSITIONS", "MAX_WIDTH", "SKELETON_LIMITS", "check_skeleton_field"]

MAX_WIDTH = 16_384
MAX_POSITIONS = MAX_BLOCKS  # an architecture string expands to at most this many blocks

# Per field; for widths and depths, per stage.
SKELETON_LIMITS: dict[str, Limit] = {
    "stem_width": Limit(int, 1, MAX_WIDTH),
    "widths": Limit(int, 1, MAX_WIDTH),
    "depths": Limit(int, 1, MAX_POSITIONS),
    "width_mult": Limit(float, 0, 16.0, open_low=True),
    "drop_rate": Limit(float, 0, 1, open_high=True),
    # No conv narrower than this (config.MIN_CONV_CHANNELS); not a space file's to set.
    "min_channels": Limit(int, 1, 4_096),
    **{name: one_of(allowed) for name, allowed in SKELETON_CHOICES.items()},
}
# Fields that hold one value per stage.
LIST_FIELDS = ("widths", "depths")


def check_skeleton_field(
    where: str, name: str, value: Any, error: type[Exception] = ConfigError
) -> None:
    """`error` unless skeleton field `name` may be `value` (a field without limits passes);
    `where` starts the message: a file and key, a flag, or the field's name."""
    limit = SKELETON_LIMITS.get(name)
    if limit is None:
        return
    if name not in LIST_FIELDS:
        check(where, value, limit, error)
        return
    if not isinstance(value, (list, tuple)) or not value or not all(map(limit.allows, value)):
        refuse(where, f"must be a non-empty list, each {limit.rule()}", value, error)
    if name == "depths" and sum(value) > MAX_POSITIONS:
        problem = f"must add up to at most {MAX_POSITIONS} block positions (the grammar's limit)"
        refuse(where, problem, value, error)
