"""`harness clean`: the cache's folder and size; `--yes` empties it. `--weights`: the
kept weights of deleted Optuna studies and the staged files of studies with no running
trial (harness.weights_gc).

The cache holds parsed datasets (harness.data.cache) and, in its `supernets/`
folder, supernet checkpoints (harness.estimate.supernet.default_checkpoint).
Emptying it deletes both and keeps the folder itself: it may be a $HARNESS_CACHE
the user made (or shares), and the next load writes into it again.
"""

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
# Supernet checkpoints: SPACE-<16 hex>.pt, and .SPACE-<16 hex>.pt.XXXX.partial while
# harness.output.atomic_path writes one.
SUPERNETS = "supernets"
_CHECKPOINT = re.compile(r"^\.?[\w.-]+-[0-9a-f]{16}\.pt(\.\w+\.partial)?$")


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
    entries, other = [], 0
    supernets = root / SUPERNETS
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if path.is_file() and not path.is_symlink() and _ENTRY.match(path.name):
                entries.append(path)
            elif path != supernets or not path.is_dir() or path.is_symlink():
                other += 1
    if supernets.is_dir() and not supernets.is_symlink():
        for path in sorted(supernets.iterdir()):
            if path.is_file() and not path.is_symlink() and _CHECKPOINT.match(path.name):
                entries.append(path)
            else:
                other += 1
    size = sum(path.stat().st_size for path in entries)
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
        help="show the cache's folder and size; --yes empties it",
        description=(
            "Show the folder where parsed datasets are cached (.npz files, so that a second "
            "load skips the parsing) and supernet checkpoints are kept (supernets/*.pt), and "
            "its size; with --yes (or --cache) delete both and keep the folder. The cache is "
            "$HARNESS_CACHE, else ~/.cache/harness; set HARNESS_CACHE to move it, or pass "
            "--cache-dir. It has no size limit: each distinct dataset spec and file version "
            "adds one entry, and an entry whose source changed is never read again. Only cache "
            "entries are deleted: other files in the folder, results/, the results database "
            "and reports are never touched."
        ),
    )
    parser.add_argument(
        "--yes", "-y", action="store_true", help="delete the cache entries and checkpoints"
    )
    parser.add_argument("--cache", action="store_true", help="same as --yes: delete the cache")
    add_cache_dir_arg(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    weights = parser.add_argument_group(
        "kept weights",
        "--weights shows (and with --yes removes) the kept weights of Optuna studies that "
        "were deleted (optuna delete-study leaves their artifacts) and the staged files a "
        "stopped run left; weights an existing study links are never touched, and the "
        "trials' results stay",
    )
    weights.add_argument(
        "--weights", action="store_true", help="the kept weights instead of the data cache"
    )
    weights.add_argument(
        "--db",
        metavar="URL",
        help="results database (default: $HARNESS_DB, else sqlite:///results/harness.db)",
    )
    weights.add_argument(
        "--artifacts",
        metavar="LOCATION",
        help="only this artifact store (a folder, s3://BUCKET, gs://BUCKET; default: every "
        "store the database's links name)",
    )
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

    if args.weights:
        if args.cache:
            raise ConfigError("--weights and --cache clean different things: give one of them")
        return run_weights(args)
    if args.db or args.artifacts:
        raise ConfigError("--db and --artifacts go with --weights")
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
        supernets = usage.folder / SUPERNETS
        if supernets.is_dir() and not supernets.is_symlink() and not any(supernets.iterdir()):
            supernets.rmdir()  # made by the supernet; the cache folder itself stays
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


def run_weights(args: argparse.Namespace) -> int:
    from harness.artifacts import resolve_location
    from harness.store import Store
    from harness.weights_gc import remove_unused, weights_usage

    # Read-only to look: showing changes nothing, not even an old file's schema.
    with Store(args.db, create=False) as store:
        location = resolve_location(args.artifacts, store.raw_url) if args.artifacts else None
        usage = weights_usage(store, location)
    removed, staged, freed = 0, 0, 0
    if args.yes and (usage.unused or usage.staged):
        with Store(args.db) as store:
            removed, staged, freed = remove_unused(store, usage)
    if args.json:
        record = {**usage.to_dict(), "removed": removed, "removed_staged": staged}
        print(json.dumps({**record, "freed_bytes": freed}, indent=2))
        return 0
    where = ", ".join(usage.locations)
    print(f"kept weights: {usage.kept} in use ({format_bytes(usage.kept_bytes)}) in {where}")
    trials = len(usage.to_dict()["unused_trial_ids"])
    print(
        f"of deleted Optuna studies: {len(usage.unused)} ({format_bytes(usage.unused_bytes)}, "
        f"{trials} trials' weights); staged files left by stopped runs: {len(usage.staged)} "
        f"({format_bytes(usage.staged_bytes)})"
    )
    if usage.unknown:
        print(
            f"left alone: {usage.unknown} files that no trial of this database links "
            "(another database's, or an upload cut short)",
            file=sys.stderr,
        )
    if usage.staged_running:
        print(
            f"left alone: {usage.staged_running} staged files of studies with a running trial "
            "(their run keeps or deletes them at its end)",
            file=sys.stderr,
        )
    if usage.not_here:
        print(
            f"{usage.not_here} links to folders not on this machine, left alone (run harness "
            "clean --weights on the machine that has them)",
            file=sys.stderr,
        )
    if args.yes:
        print(f"removed {removed} artifacts and {staged} staged files, freed {format_bytes(freed)}")
    elif usage.unused or usage.staged:
        print(
            "remove them with `harness clean --weights --yes` (the trials' results stay; "
            "export then says their weights were removed)"
        )
    return 0
