"""`harness data show SPEC` and `harness data preview SPEC -o grid.png`."""

from __future__ import annotations

import argparse
import json

from harness.commands import argtypes
from harness.errors import ConfigError

SPEC_HELP = (
    "dataset spec: synthetic[?n=3000&seed=0&difficulty=0.5], fer2013:PATH, "
    "ferplus:DIR[?mode=majority|probability|crossentropy|all10|plurality], ckplus:DIR[?folds=10&fold=0], "
    "folder:DIR; add dedup=1 to drop val/test images also found in an earlier split "
    "(default: synthetic)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="inspect a dataset spec: counts per class and split, duplicates, a preview grid",
        description="Load a dataset spec (parsed files are cached) and describe it.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show",
        help="classes x splits counts, image size, label mode, fingerprint, warnings",
        description="Print a table of images per class and split, the image size, label mode, "
        "fingerprint, cross-split duplicates and warnings.",
    )
    show.add_argument("spec", nargs="?", default="synthetic", metavar="SPEC", help=SPEC_HELP)
    show.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    _add_cache_args(show)
    show.set_defaults(func=run_show)

    preview = actions.add_parser(
        "preview",
        help="write a PNG grid of example images, one row per class",
        description="Write a PNG with one row per class: its name and count, then its first images.",
    )
    preview.add_argument("spec", nargs="?", default="synthetic", metavar="SPEC", help=SPEC_HELP)
    preview.add_argument("-o", "--output", required=True, metavar="PNG", help="image file to write")
    preview.add_argument(
        "--per-class",
        type=argtypes.int_range("--per-class", 1, 1_000),
        default=8,
        metavar="N",
        help="images per class (default 8)",
    )
    preview.add_argument(
        "--split", choices=("train", "val", "test"), default="train", help="split (default train)"
    )
    preview.add_argument(
        "--scale",
        type=argtypes.int_range("--scale", 1, 32),
        default=2,
        metavar="K",
        help="enlarge pixels K times (default 2)",
    )
    _add_cache_args(preview)
    preview.set_defaults(func=run_preview)


def _add_cache_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache folder for parsed files (default $HARNESS_CACHE or ~/.cache/harness)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="parse from scratch and write no cache entry"
    )


def _load(args: argparse.Namespace):
    from harness.data import load_dataset

    return load_dataset(args.spec, cache_dir=args.cache_dir, cache=not args.no_cache)


def run_show(args: argparse.Namespace) -> int:
    from harness.data.summary import format_table

    ds = _load(args)
    print(json.dumps(ds.summary(), indent=2) if args.json else format_table(ds))
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from harness.data.summary import preview_grid
    from harness.output import atomic_path, check_writable

    if args.per_class < 1 or args.scale < 1:
        raise ConfigError("--per-class and --scale must be at least 1")
    output = check_writable(args.output, example="preview.png")
    if not output.parent.is_dir():
        raise ConfigError(f"cannot write {output}: folder {output.parent} does not exist")
    ds = _load(args)
    grid = preview_grid(ds, split=args.split, per_class=args.per_class, scale=args.scale)
    with atomic_path(output) as partial:
        grid.save(partial, format="PNG")
    print(
        f"wrote {output} ({grid.width}x{grid.height}, {args.split} split, up to {args.per_class} per class)"
    )
    return 0
