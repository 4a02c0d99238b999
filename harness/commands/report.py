"""`harness report`: the benchmark report of one or more studies, as HTML or Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report import markdown_leaderboard, write_report
    from harness.store import Store

    with Store(args.db, create=False) as store:
        if args.format == "md":
            print(markdown_leaderboard(store, args.study))
            return 0
        path = write_report(store, args.study, args.output)
    print(path)
    return 0
