"""`harness spaces`: list the search spaces; `harness spaces show NAME`: one in detail."""

from __future__ import annotations

import argparse
import json

from harness.commands._common import parse_shape


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spaces",
        help="list the search spaces, or show one with its size and FLOPs range",
        description=(
            "List the search spaces (files in search_spaces/, ./search_spaces or $HARNESS_SPACES), "
            "or with `show NAME` print one: its skeleton, architectures, searched settings, size "
            "(distinct canonical architectures) and FLOPs range (fvcore, multiply-add = 1, per "
            "image)."
        ),
    )
    parser.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    parser.add_argument("name", nargs="?", metavar="NAME", help="space to show")
    parser.add_argument(
        "--input", default="1x48x48", metavar="CxHxW", help="input for FLOPs (default 1x48x48)"
    )
    parser.add_argument("--classes", type=int, default=7, metavar="N", help="classes (default 7)")
    parser.add_argument(
        "--budget",
        choices=("smoke", "short", "paper"),
        help="scale widths as this budget does (default: the space's own widths)",
    )
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOPs range")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError

    if args.action == "list":
        if args.name:
            raise ConfigError(f"did you mean `harness spaces show {args.name}`?")
        return _list()
    if not args.name:
        raise ConfigError("`harness spaces show` needs a space name (see `harness spaces`)")
    return _show(args)


def _list() -> int:
    import sys

    from harness.commands.trials import render_table
    from harness.search import list_spaces, load_space, space_dirs, space_size

    spaces = list_spaces()
    if not spaces:
        folders = ", ".join(str(d) for d in space_dirs()) or "no search_spaces/ folder"
        print(f"no search spaces found ({folders})", file=sys.stderr)
        return 0
    rows = []
    for name in spaces:
        space = load_space(name)
        rows.append(
            [
                name,
                space.protocol,
                space.summary(),
                space_size(space).describe(),
                space.description,
            ]
        )
    print(render_table(["space", "protocol", "architectures", "size", "description"], rows))
    return 0


def _show(args: argparse.Namespace) -> int:
    from harness.measure import FLOPS_LABEL
    from harness.search import flops_range, get_budget, load_space, space_size

    space = load_space(args.name)
    print(f"space:       {space.name}  ({space.path})")
    if space.description:
        print(f"description: {space.description}")
    print(f"protocol:    {space.protocol}")
    if space.skeleton:
        print(f"skeleton:    {_values(space.skeleton)}")
    if space.train:
        print(f"training:    {_values(space.train)}")
    if space.kind == "positions":
        print(f"blocks:      {space.summary()}, stages cut {'/'.join(map(str, space.depths))}")
    else:
        print("choices:     " + ", ".join(space.choices))
    if space.enqueue:
        print("first:       " + ", ".join(space.enqueue) + "  (enqueued, always measured)")
    for param in space.params:
        print(f"search:      {param.name} ({param.target}) in {param.describe()}")
    print(f"size:        {space_size(space).describe()}")
    if not args.no_flops:
        shape = parse_shape(args.input)
        scale = get_budget(args.budget).width_scale if args.budget else 1.0
        found = flops_range(space, input_shape=shape, num_classes=args.classes, width_scale=scale)
        at = f"at {args.input}, {args.classes} classes" + (
            f", {args.budget} budget widths" if args.budget else ""
        )
        print(
            f"FLOPs:       {found.low / 1e6:,.1f} M ({found.low_arch}) .. "
            f"{found.high / 1e6:,.1f} M ({found.high_arch})  [{FLOPS_LABEL}, {at}]"
        )
    return 0


def _values(values: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
