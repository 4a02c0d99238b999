"""`harness trials`: the recorded trials as a table, CSV, JSON or Markdown.

Also holds the small table renderer that `harness studies` shares.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "csv", "json", "md")
STATUSES = ("running", "complete", "failed", "pruned", "interrupted")


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
    parser.add_argument("--study", metavar="NAME", help="only this study")
    parser.add_argument("--status", choices=STATUSES, help="only trials with this status")
    parser.add_argument(
        "--limit", type=_positive_int, metavar="N", help="only the N most recent trials"
    )
    add_format_arg(parser)
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


# (column in trials_frame, header, formatter) of the readable table.
def _table_columns() -> list[tuple[str, str, Any]]:
    return [
        ("trial_id", "id", fmt_int),
        ("study", "study", str),
        ("arch", "arch", str),
        ("family", "family", str),
        ("status", "status", str),
        ("val_acc", "val acc %", fmt_percent),
        ("test_acc", "test acc %", fmt_percent),
        ("params", "params (M)", lambda v: _scaled(v, 1e6, 2)),
        ("flops", "GFLOPs (fvcore)", lambda v: _scaled(v, 1e9, 3)),
        ("latency_ms", "latency ms (b1)", lambda v: _number(v, 2)),
        ("epochs", "epochs", fmt_int),
        ("started_at", "date", _date),
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


def emit(frame: Any, fmt: str, columns: Sequence[tuple[str, str, Any]]) -> None:
    """Print `frame`: every column raw for csv/json, the chosen columns formatted for table/md."""
    if fmt == "csv":
        sys.stdout.write(_for_csv(frame).to_csv(index=False))
    elif fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))
        print(json.dumps(records, indent=2))
    else:
        headers = [header for _, header, _ in columns]
        rows = [
            [_cell(record.get(name), fmt_value) for name, _, fmt_value in columns]
            for record in frame.to_dict(orient="records")
        ]
        print(render_markdown(headers, rows) if fmt == "md" else render_table(headers, rows))


def _for_csv(frame: Any) -> Any:
    """Lists and dicts as JSON text, so that CSV cells round-trip."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = [
                json.dumps(v) if isinstance(v, (dict, list)) else v for v in frame[column]
            ]
    return frame


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA
    except (TypeError, ValueError):
        return False


def _cell(value: Any, fmt_value: Any) -> str:
    return "-" if _missing(value) else fmt_value(value)


def fmt_int(value: Any) -> str:
    return str(int(value))


def _number(value: Any, digits: int) -> str:
    return f"{float(value):.{digits}f}" if math.isfinite(float(value)) else str(value)


def fmt_percent(value: Any) -> str:
    return _number(100 * float(value), 2)


def _scaled(value: Any, unit: float, digits: int) -> str:
    return f"{float(value) / unit:.{digits}f}"


def _date(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Fixed-width columns; numbers right-aligned."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    right = [
        bool(rows) and all(_numeric(r[i]) or r[i] == "-" for r in rows) for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def render_markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    right = [
        bool(rows) and all(_numeric(r[i]) or r[i] == "-" for r in rows) for i in range(len(headers))
    ]

    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(escape(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines.extend("| " + " | ".join(escape(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)
