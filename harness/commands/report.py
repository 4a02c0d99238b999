"""`harness report`: the benchmark report of one or more studies, as HTML or Markdown."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness.commands import argtypes
from harness.commands.trials import add_db_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the HTML benchmark report of a study",
        description=(
            "Write one self-contained HTML page (opens offline) for the latest study, or the "
            "studies named with --study: leaderboard (mean ± sd over seeds), accuracy against "
            "FLOPs and latency with the Pareto front, families compared with 95% intervals and "
            "Welch's t-test, learning curves, the best candidate's confusion matrix, Optuna's "
            "plots, the seed paper's reported numbers beside ours, and each ordering drawn. "
            "FLOPs are fvcore counts (one multiply-add = 1 flop). --format md prints the "
            "leaderboard as Markdown instead."
        ),
    )
    add_db_arg(parser)
    parser.add_argument(
        "--study",
        type=argtypes.study_name(),
        action="append",
        metavar="NAME",
        help=(
            "a study to report (repeat for several on one page; default: the study of the "
            "newest trial)"
        ),
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="where to write the page (default: reports/<study>.html)",
    )
    parser.add_argument(
        "--format",
        choices=("html", "md"),
        default="html",
        help="html (default: write the page) or md (print the leaderboard as Markdown)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print {path, studies, wall_s} as one JSON object instead of the path",
    )
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no wall-time line on stderr (CI logs)"
    )
    parser.set_defaults(func=run)


def check_output(path: Path, flag: str = "-o") -> None:
    """A page that cannot be written fails now, not after the report is built."""
    from harness.output import check_writable

    check_writable(path, flag)


def run(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError
    from harness.report import default_output, markdown_leaderboard, resolve_studies, write_report
    from harness.store import Store

    started = time.perf_counter()
    if args.format == "md" and (args.output is not None or args.json):
        raise ConfigError("--format md prints Markdown to stdout; -o and --json are for html")
    if args.output is not None:
        check_output(args.output)
    with Store(args.db, create=False) as store:
        if args.format == "md":
            print(markdown_leaderboard(store, args.study))
            return 0
        studies = resolve_studies(store, args.study)
        if args.output is None:
            # reports/ may be a file or read-only: say so before the page is built.
            check_output(default_output(studies), "the default output")
        path = write_report(store, studies, args.output)
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({"path": str(path), "studies": studies, "wall_s": round(seconds, 3)}))
        return 0
    print(path)
    if not args.quiet:
        print(f"wall time: {seconds:.1f}s", file=sys.stderr)
    return 0
