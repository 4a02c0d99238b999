"""`harness train ARCH`: train one candidate, print a summary, record everything."""

from __future__ import annotations

import argparse
import json
import sys

from harness.commands._training import add_training_args, config_from_args
from harness.commands.trials import add_db_arg

DEFAULT_STUDY = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one architecture and record it in the results database",
        description=(
            "Train one architecture on --data (default: the embedded synthetic set), keep the "
            "epoch with the best validation accuracy, evaluate the test split there, print a "
            "summary and record the trial, its epochs and its latency. ARCH is a block string "
            "('R*8 I*8', '(IR)*8'), a named ordering (alternated, RI, IR) or timm:NAME."
        ),
    )
    parser.add_argument("arch", metavar="ARCH", help="block string, named ordering or timm:NAME")
    add_db_arg(parser)
    parser.add_argument(
        "--study", default=DEFAULT_STUDY, help=f"study to record under (default {DEFAULT_STUDY})"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar or per-epoch lines"
    )
    add_training_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.store import Store
    from harness.summary import format_outcome, outcome_dict
    from harness.trial import run_trial

    config = config_from_args(args, args.arch)
    store = Store(args.db)
    progress = not args.no_progress and not args.json
    if progress:
        print(
            f"training {config.arch} on {config.data} ({config.protocol} protocol)", file=sys.stderr
        )
    try:
        outcome = run_trial(config, store, study=args.study, progress=progress)
    finally:
        store.close()
    if args.json:
        print(json.dumps(outcome_dict(outcome, store.url), indent=2))
    else:
        print(format_outcome(outcome, store.url))
    if outcome.status != "complete":
        print(
            f"harness: trial {outcome.trial_id} {outcome.status}: {outcome.reason}", file=sys.stderr
        )
        return 1
    return 0
