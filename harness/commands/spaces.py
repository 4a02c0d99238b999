"""`harness spaces`: list the search spaces; `harness spaces show NAME`: one in detail."""

from __future__ import annotations

import argparse
import json

from harness.commands import argtypes
from harness.commands._common import parse_shape
from harness.search.budgets import BUDGETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spaces",
        help="list the search spaces, or show one with its size and FLOPs range",
        description=(
            "List the search spaces (files in $HARNESS_SPACES, ./search_spaces, then the ones "
            "installed with harness), or with `show NAME` print one: its skeleton, "
            "architectures, searched settings, size (distinct canonical architectures), FLOPs "
            "range (fvcore, multiply-add = 1, per image) and parameter range."
        ),
    )
    parser.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    parser.add_argument("name", nargs="?", metavar="NAME", help="space to show")
    parser.add_argument(
        "--input",
        type=argtypes.shape("--input"),
        default="1x48x48",
        metavar="CxHxW",
        help="input for FLOPs (default 1x48x48)",
    )
    parser.add_argument(
        "--classes",
        type=argtypes.int_range("--classes", 2, argtypes.MAX_CLASSES),
        default=7,
        metavar="N",
        help="classes, at least 2 (default 7)",
    )
    parser.add_argument(
        "--budget",
        choices=tuple(BUDGETS),
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
    """The spaces that load, as a table; a file that does not is named on stderr with its
    error (and the exit status is 2), so one bad file does not hide the others."""
    import sys

    from harness.commands.trials import render_table
    from harness.errors import ConfigError
    from harness.search import list_spaces, load_space, space_size
    from harness.search.space import looked_in

    spaces = list_spaces()
    if not spaces:
        print(f"no search spaces found (looked in {looked_in()})", file=sys.stderr)
        return 0
    rows, errors = [], []
    for name in spaces:
        try:
            space = load_space(name)
        except ConfigError as error:
            errors.append(str(error))
            continue
        rows.append(
            [
                name,
                space.protocol,
                space.summary(),
                space_size(space).describe(),
                space.description,
            ]
        )
    if rows:
        print(render_table(["space", "protocol", "architectures", "size", "description"], rows))
    for error in errors:
        print(f"harness: error: {error}", file=sys.stderr)
    return 2 if errors else 0


def _show(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError
    from harness.measure import FLOPS_LABEL
    from harness.search import flops_range, get_budget, load_space, space_size

    # Everything that can fail (the shape, a network the stem cannot take) before any line.
    shape = parse_shape(args.input)
    if args.classes < 1:
        raise ConfigError(f"--classes must be at least 1, got {args.classes}")
    space = load_space(args.name)
    size = space_size(space).describe()
    found = None
    if not args.no_flops:
        budget = get_budget(args.budget) if args.budget else None
        found = flops_range(
            space,
            input_shape=shape,
            num_classes=args.classes,
            budget_skeleton=budget.skeleton if budget else None,
        )
    print(f"space:       {space.name}  ({space.path})")
    if space.description:
        print(f"description: {space.description}")
    print(f"protocol:    {space.protocol}")
    if space.skeleton:
        print(f"skeleton:    {_values(space.skeleton)}")
    if space.train:
        print(f"training:    {_values(space.train)}")
    if space.kind != "choices":
        print(f"blocks:      {space.summary()}, stages cut {'/'.join(map(str, space.depths))}")
        print(f"encoded as:  {space.encoding.describe_params()}")
    else:
        print("choices:     " + ", ".join(space.choices))
    if space.enqueue:
        print("first:       " + ", ".join(space.enqueue) + "  (enqueued, always measured)")
    for param in space.params:
        print(f"search:      {param.name} ({param.target}) in {param.describe()}")
    print(f"size:        {size}")
    if found is not None:
        at = f"at {args.input}, {args.classes} classes" + (
            f", {args.budget} budget widths" if args.budget else ""
        )
        print(
            f"FLOPs:       {found.low / 1e6:,.1f} M ({found.low_arch}) .. "
            f"{found.high / 1e6:,.1f} M ({found.high_arch})  [{FLOPS_LABEL}, {at}]"
        )
        print(
            f"params:      {found.params_low / 1e6:,.2f} M ({found.params_low_arch}) .. "
            f"{found.params_high / 1e6:,.2f} M ({found.params_high_arch})"
        )
    return 0


def _values(values: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
