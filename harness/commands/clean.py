"""`harness clean`: the data cache's folder and size; `--yes` deletes its entries."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# What harness.data.cache writes: NAME-<24 hex>.npz, and NAME-<24 hex>XXXX.tmp while
# writing. Only these are deleted, so a $HARNESS_CACHE pointed at a shared folder
# loses nothing else.
_ENTRY = re.compile(r"^[\w.-]+-[0-9a-f]{24}(\.npz|.*\.tmp)$")


@dataclass(frozen=True)
class CacheUsage:
    folder: Path
    entries: list[Path]
    bytes: int
    other_files: int  # files in the folder that are not cache entries (kept)

    def describe(self) -> str:
        if not self.folder.is_dir():
            return f"{self.folder} (empty: not created yet)"
        kept = f", {self.other_files} other files" if self.other_files else ""
        return f"{self.folder} ({len(self.entries)} entries, {format_bytes(self.bytes)}{kept})"

    def to_dict(self) -> dict[str, object]:
        return {
            "folder": str(self.folder),
            "exists": self.folder.is_dir(),
            "entries": len(self.entries),
            "bytes": self.bytes,
            "other_files": self.other_files,
        }


def cache_usage(folder: str | Path | None = None) -> CacheUsage:
    """The cache entries in `folder` (default: $HARNESS_CACHE, else ~/.cache/harness)."""
    from harness.data.cache import default_cache_dir

    root = Path(folder).expanduser() if folder is not None else default_cache_dir()
    entries, size, other = [], 0, 0
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if path.is_file() and _ENTRY.match(path.name):
                entries.append(path)
                size += path.stat().st_size
            else:
                other += 1
    return CacheUsage(root, entries, size, other)


def format_bytes(count: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, index = float(count), 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{count} B" if index == 0 else f"{size:.1f} {units[index]}"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "clean",
        help="show the data cache's folder and size; --yes deletes it",
        description=(
            "Show the folder where parsed datasets are cached (.npz files, so that a second "
            "load skips the parsing) and its size; with --yes (or --cache) delete the cache "
            "entries. The cache is $HARNESS_CACHE, else ~/.cache/harness; set HARNESS_CACHE to "
            "move it, or pass --cache-dir. It has no size limit: each distinct dataset spec and "
            "file version adds one entry, and an entry whose source changed is never read "
            "again. Only cache entries are deleted: results/, the results database and reports "
            "are never touched."
        ),
    )
    parser.add_argument("--yes", "-y", action="store_true", help="delete the cache entries")
    parser.add_argument("--cache", action="store_true", help="same as --yes: delete the cache")
    add_cache_dir_arg(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def add_cache_dir_arg(parser: argparse.ArgumentParser) -> None:
    """`--cache-dir`, for clean and doctor."""
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache folder (default $HARNESS_CACHE or ~/.cache/harness)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError

    usage = cache_usage(args.cache_dir)
    if usage.folder.exists() and not usage.folder.is_dir():
        raise ConfigError(f"--cache-dir {usage.folder} is a file, not a folder")
    delete = args.yes or args.cache
    deleted, freed = 0, 0
    if delete:
        for path in usage.entries:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue  # another process cleaned it, or renamed its temporary file
            except OSError as error:
                raise ConfigError(f"cannot delete {path}: {error.strerror or error}") from None
            deleted += 1
            freed += size
        if usage.folder.is_dir() and not any(usage.folder.iterdir()):
            usage.folder.rmdir()
    if args.json:
        record = {**usage.to_dict(), "deleted": deleted, "freed_bytes": freed}
        print(json.dumps(record, indent=2))
        return 0
    print(f"data cache: {usage.describe()}")
    if delete:
        print(f"deleted {deleted} entries, freed {format_bytes(freed)}")
        if usage.other_files:
            print(f"left {usage.other_files} files that are not cache entries", file=sys.stderr)
    elif usage.entries:
        print("delete it with `harness clean --yes` (parsed again on the next load)")
    return 0
