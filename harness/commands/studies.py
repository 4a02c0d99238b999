"""`harness studies`: each study with its trial counts by status and its best trial."""

from __future__ import annotations

import argparse
import sys

from harness.commands.trials import add_db_arg, add_format_arg, emit
from harness.tables import Column, count, percent


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "studies",
        help="list studies with trial counts and the best accuracy",
        description=(
            "List the studies in the results database with their trials per status and the complete "
            "trial with the best validation accuracy: its validation and test accuracy and "
            "architecture (the test accuracy is that trial's, not the best test score)."
        ),
    )
    add_db_arg(parser)
    add_format_arg(parser)
    parser.set_defaults(func=run)


def _columns() -> list[Column]:
    return [
        ("study_id", "id", count),
        ("study", "study", str),
        ("space", "space", str),
        ("trials", "trials", count),
        ("complete", "complete", count),
        ("failed", "failed", count),
        ("pruned", "pruned", count),
        ("running", "running", count),
        ("interrupted", "interrupted", count),
        ("best_val_acc", "best val acc %", percent),
        ("best_test_acc", "its test acc %", percent),
        ("best_arch", "best arch", str),
    ]


def run(args: argparse.Namespace) -> int:
    from harness.store import Store

    with Store(args.db, create=False) as store:
        frame = store.studies_frame()
        url = store.url
    if frame.empty and args.format in ("table", "md"):
        print(f"no studies in {url}", file=sys.stderr)
        return 0
    emit(frame, args.format, _columns())
    return 0
