"""`harness describe ARCH`: canonical form, stages, parameters, FLOPs, latency."""

from __future__ import annotations

import argparse
from typing import Any

from harness.commands import argtypes
from harness.commands._common import (
    add_device_args,
    add_skeleton_args,
    choice_arg,
    parse_int_list,
    skeleton_overrides,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="build an architecture and print its layout, parameters, FLOPs and latency",
        description=(
            "Build one architecture and print its canonical form, blocks per kind, stage layout, "
            "parameters, FLOPs (fvcore, multiply-add = 1) and inference latency. ARCH is a block "
            "string such as '(IR)*8' or 'RRR|IIII|RRRRRR|III', a named ordering (alternated, RI, IR, "
            "optionally with a block count: RI:16), or a timm model as timm:NAME (options: "
            "timm:NAME?stem=small&head=paper&resize=96). The network is built as training "
            "builds it: the same stem, head and resize for the same flags."
        ),
    )
    parser.add_argument("arch", metavar="ARCH", help="block string, named ordering or timm:NAME")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    parser.add_argument(
        "--batch",
        type=argtypes.int_list("--batch", 1, argtypes.MAX_BATCH),
        default="1,64",
        metavar="B,B,...",
        help="latency batch sizes (default 1,64)",
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    parser.add_argument(
        "--budget",
        metavar="NAME",
        help="show what search budget NAME trains (smoke, short, paper): its stem and "
        "input size (from its data, unless --input), its epochs and batches; each flag "
        "given still wins",
    )
    add_network_args(parser)
    add_device_args(parser)
    add_skeleton_args(parser)
    parser.set_defaults(func=run)


def add_network_args(parser: argparse.ArgumentParser) -> None:
    """Training's settings that change the built network, beside the skeleton flags."""
    from harness.config import DEFAULT_BASELINE_STEM, TRAIN_LIMITS

    parser.add_argument(
        "--baseline-stem",
        **choice_arg("--baseline-stem", TRAIN_LIMITS["baseline_stem"]),
        default=None,
        help=f"timm baselines' stem, as --baseline-stem of train (default {DEFAULT_BASELINE_STEM}: "
        "timm's own; small: first 4x of downsampling removed; auto: small below 96 px)",
    )
    parser.add_argument(
        "--resize",
        type=argtypes.Number("--resize", TRAIN_LIMITS["resize"]),
        metavar="N",
        help="upsample inputs to NxN before the network, as --resize of train",
    )


def run(args: argparse.Namespace) -> int:
    from harness.describe import describe, format_description, to_json
    from harness.models import Skeleton

    batches = parse_int_list(args.batch, "--batch")
    overrides = skeleton_overrides(args)
    budget = None
    if args.budget is not None:
        from harness.search.budgets import get_budget

        budget = get_budget(args.budget)
        overrides = budget_skeleton(budget, overrides)
    skeleton = Skeleton(**overrides)
    info = describe(
        args.arch,
        skeleton,
        baseline_stem=args.baseline_stem,
        resize=args.resize,
        device=args.device,
        threads=args.threads,
        batches=batches,
        latency=not args.no_latency,
    )
    if budget is not None:
        info["budget"] = budget_training(budget)
    print(to_json(info) if args.json else format_description(info))
    return 0


def budget_skeleton(budget: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The skeleton a budget trains, as a search builds it: the budget's fields (its
    stem), its data's image size; flags win."""
    from harness.data.spec import parse_spec

    out = {**budget.skeleton, **overrides}
    spec = parse_spec(budget.data)
    if "input_shape" not in overrides and "size" in dict(spec.options):
        out["input_shape"] = (1, spec["size"], spec["size"])
    return out


def budget_training(budget: Any) -> dict[str, Any]:
    """What a budget sets beside the network: its data, epochs, batches and recipe."""
    return {
        "name": budget.name,
        "data": budget.data,
        "trials": budget.trials,
        **budget.train_overrides(),
    }
