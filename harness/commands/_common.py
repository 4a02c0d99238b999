"""Argument groups that several subcommands share (skeleton, device, database).

Only the standard library is imported here; the helpers that turn arguments
into objects import the heavy modules when they are called.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.commands import argtypes
from harness.errors import ConfigError
from harness.limits import Limit
from harness.skeleton_limits import SKELETON_LIMITS


def parse_shape(text: str) -> tuple[int, int, int]:
    """'1x48x48' -> (1, 48, 48)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(
            f"input shape must look like CxHxW with positive sizes (e.g. 1x48x48), got {text!r}"
        )
    return shape  # type: ignore[return-value]


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """'1,64,256' -> (1, 64, 256)."""
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ConfigError(
            f"{what} must be a comma-separated list of positive integers, got {text!r}"
        )
    return values


def choice_arg(flag: str, limit: Limit) -> dict[str, Any]:
    """`add_argument` keywords of a flag that takes one of `limit`'s choices, refused in
    the words a space file's value gets."""
    choice = argtypes.Choice(flag, limit)
    return {"type": choice, "metavar": choice.metavar}


def add_skeleton_args(parser: argparse.ArgumentParser, *, data_shape: bool = True) -> None:
    """The skeleton flags; with `data_shape=False` --input and --classes still parse (so
    that the command can say why it refuses them) but are left out of --help."""
    group = parser.add_argument_group("network skeleton")
    group.add_argument(
        "--input",
        type=argtypes.shape("--input"),
        metavar="CxHxW",
        help="input shape (default: the data's, or 1x48x48)" if data_shape else argparse.SUPPRESS,
    )
    group.add_argument(
        "--classes",
        type=argtypes.int_range("--classes", 2, argtypes.MAX_CLASSES),
        metavar="N",
        help="number of classes, at least 2 (default: the data's, or 7)"
        if data_shape
        else argparse.SUPPRESS,
    )
    group.add_argument(
        "--stem",
        **choice_arg("--stem", SKELETON_LIMITS["stem"]),
        help="stem (default auto: small below 96 px)",
    )
    group.add_argument(
        "--head",
        **choice_arg("--head", SKELETON_LIMITS["head"]),
        help="classifier head (default linear)",
    )
    group.add_argument(
        "--head-activation",
        **choice_arg("--head-activation", SKELETON_LIMITS["head_activation"]),
        help="the paper head's activation after each hidden Dense layer (default relu6; "
        "none: the literal reading, docs/protocol.md)",
    )
    group.add_argument(
        "--output",
        **choice_arg("--output", SKELETON_LIMITS["output"]),
        help="output activation (default softmax)",
    )
    group.add_argument(
        "--init",
        **choice_arg("--init", SKELETON_LIMITS["init"]),
        help="weight init: timm's ResNet/EfficientNet rules or PyTorch's defaults (default timm; "
        "docs/init.md)",
    )
    group.add_argument(
        "--widths",
        type=argtypes.each_of("--widths", SKELETON_LIMITS["widths"]),
        metavar="W,W,...",
        help="stage output channels (default 64,128,256,512)",
    )
    group.add_argument(
        "--depths",
        type=argtypes.each_of("--depths", SKELETON_LIMITS["depths"]),
        metavar="D,D,...",
        help="stage depths cutting flat strings (default 3,4,6,3)",
    )
    group.add_argument(
        "--width-mult",
        type=argtypes.Number("--width-mult", SKELETON_LIMITS["width_mult"]),
        metavar="X",
        help="multiply every width (default 1.0)",
    )
    group.add_argument(
        "--block-params",
        type=argtypes.block_params("--block-params"),
        metavar="JSON",
        help='per-letter block parameters, e.g. \'{"I": {"exp_ratio": 6}}\'',
    )


def skeleton_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The skeleton fields the user set on the command line."""
    overrides: dict[str, Any] = {}
    if args.input:
        overrides["input_shape"] = parse_shape(args.input)
    if args.classes is not None:  # its type has refused anything below 2
        overrides["num_classes"] = args.classes
    for name in ("stem", "head", "head_activation", "output", "init", "width_mult"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.widths:
        overrides["widths"] = parse_int_list(args.widths, "--widths")
    if args.depths:
        overrides["depths"] = parse_int_list(args.depths, "--depths")
    if args.block_params:
        try:
            params = json.loads(args.block_params)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--block-params is not valid JSON: {error}") from None
        if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
            raise ConfigError(
                '--block-params must map letters to objects, e.g. \'{"I": {"exp_ratio": 6}}\''
            )
        overrides["block_params"] = params
    return overrides


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=argtypes.device(),
        default="auto",
        help="auto (CUDA when present), cpu, cuda, cuda:N",
    )
    parser.add_argument(
        "--threads",
        type=argtypes.threads(),
        metavar="N",
        help=f"CPU threads, 1 to {argtypes.usable_cores()} here (default: all cores; more are "
        "refused)",
    )
