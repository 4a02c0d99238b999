"""`load_dataset(spec)`: parse the spec, read the source (through the cache), finish the tensors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.data import ckplus, fer2013, ferplus, folder, synthetic
from harness.data.cache import Cache
from harness.data.dataset import Dataset, finish
from harness.data.spec import DataSpec, parse_spec
from harness.data.types import RawData

__all__ = ["SOURCES", "load_dataset"]

# kind -> reader; spec.KINDS lists each kind's options.
SOURCES: dict[str, Callable[[DataSpec, Cache], RawData]] = {
    "synthetic": synthetic.load,
    "fer2013": fer2013.load,
    "ferplus": ferplus.load,
    "ckplus": ckplus.load,
    "folder": folder.load,
}


def load_dataset(
    spec: str | DataSpec = "synthetic", cache_dir: str | Path | None = None, *, cache: bool = True
) -> Dataset:
    """Load a dataset spec into CPU tensors; DataError says what is wrong with the spec or files.

    `cache_dir` overrides `$HARNESS_CACHE` / `~/.cache/harness`; `cache=False`
    parses from scratch and writes nothing.
    """
    parsed = parse_spec(spec)
    raw = SOURCES[parsed.kind](parsed, Cache(cache_dir, enabled=cache))
    return finish(raw, parsed)
