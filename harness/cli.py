"""The `harness` command: argument parsing and error reporting, nothing else."""

from __future__ import annotations

import argparse
import importlib
import sys

from harness import __version__
from harness.errors import HarnessError

# Subcommand modules under harness.commands, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = (
    "run",
    "estimate",
    "validate_estimators",
    "spaces",
    "describe",
    "bench",
    "train",
    "baselines",
    "data",
    "trials",
    "studies",
    "report",
    "doctor",
    "clean",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description=(
            "Search, train and benchmark CNNs built from residual (R) and "
            "inverted-residual (I) blocks for facial expression recognition."
        ),
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"harness.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        # Numeric flags' types (commands/argtypes.py) raise ConfigError while parsing.
        args = parser.parse_args(argv)
        status = args.func(args)
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `harness trials | head` closes the pipe early; that is not an error.
        return 0
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
