"""A search space's architectures as a list, with the skeleton they share.

For measuring a space without searching it (`harness bench --space`, the
benchmarks): a choices space lists its members, a positions space its enqueued
landmarks. Nothing here imports torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from harness.config import load_protocol
from harness.errors import ConfigError
from harness.search.space import load_space

__all__ = ["ArchSet", "merge_skeleton", "space_set"]


@dataclass(frozen=True)
class ArchSet:
    """Architectures to measure and the skeleton fields they share."""

    archs: tuple[str, ...]
    skeleton: dict[str, Any]
    source: str  # "space NAME" or "command line"


def merge_skeleton(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` wins field by field; block_params merge per letter."""
    merged = copy.deepcopy(base)
    for letter, values in (override.get("block_params") or {}).items():
        merged.setdefault("block_params", {}).setdefault(letter, {}).update(values)
    merged.update({k: copy.deepcopy(v) for k, v in override.items() if k != "block_params"})
    return merged


def space_set(name: str) -> ArchSet:
    """A search space's architectures with its skeleton (protocol's, then the space's)."""
    space = load_space(name)
    if space.kind == "choices":
        archs = space.choices
    elif space.enqueue:
        # A positions space has too many members to list; its enqueued ones are its landmarks.
        archs = space.enqueue
    else:
        raise ConfigError(
            f"search space {name!r} lists no architectures (positions without enqueue); "
            "name the architectures to bench instead"
        )
    skeleton = merge_skeleton(load_protocol(space.protocol).get("skeleton", {}), space.skeleton)
    return ArchSet(tuple(archs), skeleton, f"space {space.name}")
