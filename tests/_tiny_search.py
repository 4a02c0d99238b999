"""The tiny search the search tests run: a 4-position R/I space on depths 2/2 (16
networks) and settings that train each trial in about a second.

    space = write_space(tmp_path)                       # the space file, its path
    result = run_search(tiny_settings(space, url, trials=3))
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from harness.grammar import resolve
from harness.search import SearchSettings

TINY_DATA = "synthetic?n=300&size=16"
# Alternated IRIR, RI RRII and IR IIRR are three of its 16 networks, queued first.
TINY_SPACE = """
description = "tiny test space"
[skeleton]
depths = [2, 2]
widths = [16, 32]
[architecture]
positions = ["R", "I"]
enqueue = ["alternated", "RI", "IR"]
"""
NAMED = {name: resolve(name, (2, 2)).canonical for name in ("alternated", "RI", "IR")}


def write_space(folder: Path, text: str = TINY_SPACE, name: str = "tiny.toml") -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def tiny_training(**changes: Any) -> dict[str, Any]:
    """The TrainConfig overrides of a tiny trial: one epoch of two batches, 1/8 width."""
    values: dict[str, Any] = {
        "epochs": 1, "batch_size": 32, "max_batches": 2, "skeleton": {"width_mult": 0.125},
    }  # fmt: skip
    values.update(changes)
    return values


def tiny_settings(space: str, url: str, **changes: Any) -> SearchSettings:
    """A search of `space` on the tiny data; `budget` short: one seed per named ordering."""
    values: dict[str, Any] = dict(
        space=space, url=url, study="t", budget="short", data=TINY_DATA,
        overrides=tiny_training(), progress=False, measure_latency=False,
    )  # fmt: skip
    values.update(changes)
    return SearchSettings(**values)
