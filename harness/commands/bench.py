"""`harness bench [ARCH ...] [--space NAME]`: params, FLOPs and latency per batch, no training."""

from __future__ import annotations

import argparse
import sys
import time

from harness.commands import argtypes
from harness.commands._common import (
    add_device_args,
    add_skeleton_args,
    parse_int_list,
    skeleton_overrides,
)
from harness.commands.describe import add_network_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="parameters, FLOPs and inference latency of many architectures (no training)",
        description=(
            "Build each architecture as training would and print its canonical form, family, "
            "parameters, FLOPs (fvcore, multiply-add = 1, per image) and, per batch size, the "
            "median and p90 inference latency and images/s. ARCH is a block string such as "
            "'R*8 I*8', a named ordering (alternated, RI, IR) or timm:NAME; --space adds a "
            "search space's architectures (paper: the three orderings and three timm baselines)."
        ),
    )
    parser.add_argument("archs", nargs="*", metavar="ARCH", help="architectures to measure")
    parser.add_argument("--space", metavar="NAME", help="measure this search space's architectures")
    parser.add_argument(
        "--batch",
        type=argtypes.int_list("--batch", 1, argtypes.MAX_BATCH),
        default="1,64",
        metavar="B,B,...",
        help="latency batch sizes (default 1,64)",
    )
    parser.add_argument(
        "--format", choices=("table", "csv", "json", "md"), default="table", help="output format"
    )
    parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bar or wall-time line on stderr (CI logs)",
    )
    parser.add_argument("--no-latency", action="store_true", help="parameters and FLOPs only")
    parser.add_argument(
        "--repeats",
        type=argtypes.int_range("--repeats", 1, 100_000),
        default=20,
        metavar="N",
        help="timed runs per batch (default 20)",
    )
    parser.add_argument(
        "--max-seconds",
        type=argtypes.finite_float("--max-seconds", 0, 3_600, open_low=True),
        default=1.5,
        metavar="S",
        help="stop timing a batch size after this long, once 5 runs are in (default 1.5)",
    )
    add_network_args(parser)
    add_device_args(parser)
    add_skeleton_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.bench import bench, bench_set, format_results
    from harness.errors import ConfigError

    started = time.perf_counter()
    if args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {args.repeats}")
    if not args.max_seconds > 0:
        raise ConfigError(f"--max-seconds must be positive, got {args.max_seconds}")
    if args.json and args.format not in ("table", "json"):
        raise ConfigError(f"--json and --format {args.format} ask for two formats; give one")
    fmt = "json" if args.json else args.format
    batches = parse_int_list(args.batch, "--batch")
    overrides = skeleton_overrides(args)
    # Input shape and classes belong to the data, not the skeleton: taken apart here.
    input_shape = overrides.pop("input_shape", (1, 48, 48))
    num_classes = overrides.pop("num_classes", 7)
    chosen = bench_set(args.archs, args.space, overrides)
    report = bench(
        chosen,
        input_shape=input_shape,
        num_classes=num_classes,
        device=args.device,
        threads=args.threads,
        batches=batches,
        latency=not args.no_latency,
        repeats=args.repeats,
        max_seconds=args.max_seconds,
        baseline_stem=args.baseline_stem,
        resize=args.resize,
        progress=not args.quiet and fmt != "json",
    )
    seconds = time.perf_counter() - started
    if fmt == "json":
        report["wall_s"] = round(seconds, 3)
    print(format_results(report, fmt))
    if not args.quiet and fmt != "json":
        # On stderr, so that csv and md output stays only the data.
        print(f"wall time: {seconds:.1f}s", file=sys.stderr)
    return 0
