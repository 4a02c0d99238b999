"""The `harness` command: argument parsing and error reporting, nothing else."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
from typing import NoReturn

from harness import __version__
from harness.errors import ConfigError, HarnessError

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
    "export",
    "predict",
    "doctor",
    "clean",
)


class Parser(argparse.ArgumentParser):
    """Argparse's own errors (a missing argument, a value outside `choices`) as our one
    line: the usage it would print first wraps over many lines for the bigger commands.
    Subcommand parsers are made of the same class, so this holds for every command."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("harness").strip()
        where = f"{command}: " if command else ""
        raise ConfigError(f"{where}{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
        from harness.signals import stop_on_sigterm

        stop_on_sigterm()  # SIGTERM (timeout, docker stop, Slurm) stops as Ctrl-C does
        # Numeric flags' types (commands/argtypes.py) raise ConfigError while parsing.
        args, extra = parser.parse_known_args(argv)
        if extra:
            # parse_args would blame the top-level parser; name the command instead.
            command = f"harness {args.command}"
            raise ConfigError(
                f"{args.command}: unrecognized arguments: {' '.join(extra)} (see {command} --help)"
            )
        status = args.func(args)
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `harness trials | head` closes the pipe early; that is not an error.
        _quiet_stdout()
        return 0
    except OSError as error:
        if error.errno not in _OUTPUT_FULL:
            raise
        # A full disk or quota behind `> file` (or under a file we write): one line.
        _quiet_stdout()
        where = error.filename or "the output"
        print(f"harness: error: cannot write {where}: {error.strerror}", file=sys.stderr)
        return 2
    return int(status or 0) if _flush_stdout() else 2


# Errors of writing to stdout that mean "no room", not a bug of ours.
_OUTPUT_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _flush_stdout() -> bool:
    """Flush stdout now, where an error can still be reported, instead of at exit,
    where Python prints a traceback-like "Exception ignored" and exits 120."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
    except OSError as error:
        if error.errno not in _OUTPUT_FULL:
            raise
        _quiet_stdout()
        print(f"harness: error: cannot write the output: {error.strerror}", file=sys.stderr)
        return False
    return True


def _quiet_stdout() -> None:
    # What is still buffered cannot be written; point stdout at /dev/null so that the
    # interpreter's own flush at exit finds nothing to fail on (Python's documented
    # recipe for SIGPIPE, signal module docs).
    # OSError, ValueError: stdout replaced by an object without a descriptor (tests).
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
