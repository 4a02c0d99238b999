"""Tables and number formats for every layer: the CLI, the search's leaderboard, the report.

One place, so that a value prints alike in `harness trials`, at the end of a
search and on the report page, and a test that looks a database value up in
any of them knows exactly how it is written.

Nothing here imports torch; pandas and tabulate are imported only when a table
is rendered, so that `harness trials --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DASH",
    "EN_DASH",
    "Column",
    "cell",
    "count",
    "csv_text",
    "date",
    "format_rows",
    "is_missing",
    "number",
    "numeric_columns",
    "percent",
    "percent_pm",
    "render_markdown",
    "render_table",
    "scaled",
    "si",
    "text",
]

# A missing value: "-" in terminal and Markdown tables, "–" on the report's page.
DASH = "-"
EN_DASH = "–"

# (column of the frame, header, formatter of a value that is not missing)
Column = tuple[str, str, Callable[[Any], str]]


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or pandas NA; never raises (a list or a dict is not missing)."""
    if value is None:
        return True
    # pandas NA has no truth value; without pandas loaded there can be no NA.
    pandas = sys.modules.get("pandas")
    if pandas is not None and value is pandas.NA:
        return True
    try:
        return bool(value != value)  # NaN and NaT are not equal to themselves
    except (TypeError, ValueError):  # arrays, and values that compare oddly
        return False


# Number formats: value -> text, `blank` for a missing value.


def number(value: Any, digits: int = 2, *, blank: str = EN_DASH) -> str:
    """3.14159 -> '3.14'; inf stays 'inf'."""
    return blank if is_missing(value) else f"{float(value):.{digits}f}"


def scaled(value: Any, unit: float, digits: int, *, blank: str = EN_DASH) -> str:
    """In a unit: scaled(1_234_000, 1e6, 2) -> '1.23' (params in M, FLOPs in G)."""
    return blank if is_missing(value) else f"{float(value) / unit:.{digits}f}"


def percent(fraction: Any, digits: int = 2, *, blank: str = EN_DASH) -> str:
    """0.81234 -> '81.23'."""
    return blank if is_missing(fraction) else f"{100 * float(fraction):.{digits}f}"


def percent_pm(mean: Any, sd: Any, digits: int = 2, *, blank: str = EN_DASH) -> str:
    """'81.23 ± 0.40' over seeds, or '81.23' for a single run (no sd)."""
    if is_missing(mean):
        return blank
    if is_missing(sd):
        return percent(mean, digits)
    return f"{percent(mean, digits)} ± {percent(sd, digits)}"


def si(value: Any, digits: int = 3, *, blank: str = EN_DASH) -> str:
    """12_345_678 -> '12.3 M': parameters and FLOPs at a glance."""
    if is_missing(value):
        return blank
    value = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {unit}"
    return f"{value:.{digits}g}"


def count(value: Any, *, blank: str = EN_DASH) -> str:
    return blank if is_missing(value) else str(int(value))


def text(value: Any, *, blank: str = EN_DASH) -> str:
    return blank if is_missing(value) or value == "" else str(value)


def date(value: Any, *, blank: str = EN_DASH) -> str:
    """A timestamp to the minute; anything else as it prints."""
    if is_missing(value):
        return blank
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)


def cell(value: Any, fmt: Callable[[Any], str], *, blank: str = DASH) -> str:
    """`fmt(value)`, or `blank` for a missing value (so `fmt` never sees one)."""
    return blank if is_missing(value) else fmt(value)


# Tables.


def format_rows(
    frame: pd.DataFrame, columns: Sequence[Column]
) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of `columns` of `frame`; a column it lacks shows DASH."""
    headers = [header for _, header, _ in columns]
    rows = [
        [cell(record.get(name), fmt) for name, _, fmt in columns]
        for record in frame.to_dict(orient="records")
    ]
    return headers, rows


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def numeric_columns(rows: Sequence[Sequence[str]], width: int) -> list[bool]:
    """Per column: every cell a number or DASH (such columns are right-aligned)."""
    return [
        bool(rows) and all(_is_number(r[i]) or r[i] in (DASH, EN_DASH) for r in rows)
        for i in range(width)
    ]


def _render(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[bool] | None,
    tablefmt: str,
) -> str:
    import pandas as pd

    right = numeric_columns(rows, len(headers)) if right is None else right
    frame = pd.DataFrame([list(r) for r in rows], columns=list(headers), dtype=object)
    # The cells are text already: tabulate must not reparse "12.00" into 12.
    return frame.to_markdown(
        index=False,
        tablefmt=tablefmt,
        colalign=["right" if r else "left" for r in right],
        disable_numparse=True,
    )


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[bool] | None = None
) -> str:
    """A fixed-width table for a terminal; `right` says which columns are right-aligned
    (default: those holding only numbers)."""
    rendered = _render(headers, rows, right, "simple")
    return "\n".join(line.rstrip() for line in rendered.splitlines())


def render_markdown(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[bool] | None = None
) -> str:
    """A GitHub Markdown table; a "|" in a cell is escaped so it stays one cell."""

    def escape(value: str) -> str:
        return value.replace("|", "\\|")

    return _render(
        [escape(h) for h in headers], [[escape(c) for c in r] for r in rows], right, "pipe"
    )


def csv_text(frame: pd.DataFrame) -> str:
    """Every column, raw values; lists and dicts as JSON text so that cells round-trip."""
    import pandas as pd

    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and any(isinstance(v, (dict, list)) for v in values):
            # As objects: a list would let pandas re-infer the column (1 -> 1.0 beside None).
            frame[column] = pd.Series(
                [json.dumps(v) if isinstance(v, (dict, list)) else v for v in values],
                index=frame.index,
                dtype=object,
            )
    return frame.to_csv(index=False)
