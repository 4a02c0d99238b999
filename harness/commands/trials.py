"""`harness trials`: the recorded trials as a table, CSV, JSON or Markdown.

Also `emit`, the printing that `harness studies` shares; the formats and table
rendering live in `harness.tables`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from harness.store.kinds import TRIAL_STATUSES as STATUSES
from harness.tables import (
    Column,
    count,
    csv_text,
    date,
    format_rows,
    number,
    percent,
    render_markdown,
    render_table,
    scaled,
)

FORMATS = ("table", "csv", "json", "md")


def add_db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="results database, any SQLAlchemy URL (default: $HARNESS_DB, else sqlite:///results/harness.db)",
    )


def add_format_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default, for reading), csv and json (every column, raw values), md (Markdown)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.commands import argtypes

    parser = subparsers.add_parser(
        "trials",
        help="list the recorded trials",
        description=(
            "List the trials in the results database: architecture or baseline, family, status, "
            "validation and test accuracy, parameters, FLOPs (fvcore: one multiply-add = 1 flop, "
            "per image), batch-1 latency, epochs and date. csv and json give every column with raw "
            "values (accuracies as fractions, FLOPs as MACs)."
        ),
    )
    add_db_arg(parser)
    parser.add_argument(
        "--study", type=argtypes.study_name(), metavar="NAME", help="only this study"
    )
    parser.add_argument("--status", choices=STATUSES, help="only trials with this status")
    parser.add_argument(
        "--limit",
        type=argtypes.int_range("--limit", 1, 1_000_000_000),
        metavar="N",
        help="only the N most recent trials",
    )
    add_format_arg(parser)
    parser.set_defaults(func=run)


# (column in trials_frame, header, formatter) of the readable table.
def _table_columns() -> list[Column]:
    return [
        ("trial_id", "id", count),
        ("study", "study", str),
        ("arch", "arch", str),
        ("family", "family", str),
        ("status", "status", str),
        ("val_acc", "val acc %", percent),
        ("test_acc", "test acc %", percent),
        ("params", "params (M)", lambda v: scaled(v, 1e6, 2)),
        ("flops", "GFLOPs (fvcore)", lambda v: scaled(v, 1e9, 3)),
        ("latency_ms", "latency ms (b1)", number),
        ("epochs", "epochs", count),
        ("started_at", "date", date),
    ]


def run(args: argparse.Namespace) -> int:
    from harness.store import Store

    with Store(args.db, create=False) as store:
        frame = store.trials_frame(study=args.study, status=args.status)
        url = store.url
        known = list(store.studies_frame()["study"]) if frame.empty and args.study else []
    if args.limit is not None:
        frame = frame.tail(args.limit)
    if frame.empty and args.format in ("table", "md"):
        which = " matching the filters" if (args.study or args.status) else ""
        hint = ""
        if args.study and args.study not in known:
            # Most often a typo: name the studies there are.
            hint = f" (no study {args.study!r}; studies: {', '.join(known) or 'none'})"
        print(f"no trials{which} in {url}{hint}", file=sys.stderr)
        return 0
    emit(frame, args.format, _table_columns())
    return 0


def emit(frame: Any, fmt: str, columns: Sequence[Column]) -> None:
    """Print `frame`: every column raw for csv/json, the chosen columns formatted for table/md."""
    if fmt == "csv":
        sys.stdout.write(csv_text(frame))
    elif fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))
        print(json.dumps(records, indent=2))
    else:
        headers, rows = format_rows(frame, columns)
        print(render_markdown(headers, rows) if fmt == "md" else render_table(headers, rows))
