"""Number formatting shared by the HTML page and the Markdown leaderboard.

One place, so that the test that finds a database value on the page knows
exactly how it is printed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["count", "missing", "number", "percent", "percent_pm", "si", "text"]


def missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA
    except (TypeError, ValueError):
        return False


def number(value: Any, digits: int = 2) -> str:
    return "–" if missing(value) else f"{float(value):.{digits}f}"


def percent(fraction: Any, digits: int = 2) -> str:
    """0.81234 -> '81.23'."""
    return "–" if missing(fraction) else f"{100 * float(fraction):.{digits}f}"


def percent_pm(mean: Any, sd: Any, digits: int = 2) -> str:
    """'81.23 ± 0.40' over seeds, or '81.23' for a single run."""
    if missing(mean):
        return "–"
    if missing(sd):
        return percent(mean, digits)
    return f"{percent(mean, digits)} ± {percent(sd, digits)}"


def si(value: Any, digits: int = 3) -> str:
    """12_345_678 -> '12.3 M': parameters and FLOPs at a glance."""
    if missing(value):
        return "–"
    value = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {unit}"
    return f"{value:.{digits}g}"


def count(value: Any) -> str:
    return "–" if missing(value) else str(int(value))


def text(value: Any) -> str:
    return "–" if missing(value) or value == "" else str(value)
