"""Parsed arrays cached as .npz files, so that a second load skips the parsing.

A cache entry is named after a hash of its key: the source kind, the options
that change what is parsed, a format version, and the identity (path, size,
modification time) of every input file. Change a file and its entry is
simply never asked for again. Entries are written to a temporary file and
renamed into place, so parallel workers never read half an entry. A cache
that cannot be read or written is skipped, never an error: it only saves time
(one that cannot be written says so on stderr).

The folder is `$HARNESS_CACHE`, else `~/.cache/harness`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Cache", "default_cache_dir", "file_identity", "files_identity"]

# Bump when the layout of cached arrays changes.
CACHE_FORMAT = 1

Arrays = dict[str, np.ndarray]


def default_cache_dir() -> Path:
    configured = os.environ.get("HARNESS_CACHE")
    if configured:
        return Path(os.path.expanduser(configured))
    return Path.home() / ".cache" / "harness"


def file_identity(path: Path) -> list[Any]:
    """What tells one version of a file from another without reading it."""
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def files_identity(paths: Iterable[Path]) -> str:
    """One hash for many files (an image folder), in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(json.dumps(file_identity(path)).encode())
    return digest.hexdigest()


class Cache:
    """`get(name, key, build)`: the cached arrays for `key`, or `build()`'s, stored for next time."""

    def __init__(self, folder: str | Path | None = None, enabled: bool = True) -> None:
        self.folder = (
            Path(os.path.expanduser(str(folder))) if folder is not None else default_cache_dir()
        )
        self.enabled = enabled

    def path_for(self, name: str, key: dict[str, Any]) -> Path:
        text = json.dumps(
            {"format": CACHE_FORMAT, "name": name, **key}, sort_keys=True, default=str
        )
        return self.folder / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:24]}.npz"

    def get(self, name: str, key: dict[str, Any], build: Callable[[], Arrays]) -> Arrays:
        if not self.enabled:
            return build()
        path = self.path_for(name, key)
        cached = _read(path)
        if cached is not None:
            return cached
        arrays = build()
        _write(path, arrays)
        return arrays


def _read(path: Path) -> Arrays | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        # A truncated or foreign file: parse again and overwrite it.
        return None


def _write(path: Path, arrays: Arrays) -> None:
    """Keep `arrays` at `path` for the next load. The arrays are in memory already, so a
    cache that cannot be written (read-only, full, not a folder) costs this run
    nothing: it is said on stderr, since every load will parse the files again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                # Uncompressed: loading is then a plain read, well under a second for FER2013.
                np.savez(stream, **arrays)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as error:
        print(
            f"harness: data cache not written to {path.parent} ({error.strerror or error}); "
            "the files are parsed again at each load",
            file=sys.stderr,
        )
