"""Benchmark reports: one self-contained HTML page per study, from the store.

    from harness.report import write_report
    path = write_report(store, ["rir_orderings"], None)   # -> reports/rir_orderings.html

Modules: `gather` (store -> frames), `tables` (pure pandas: Pareto front,
status counts; the leaderboard's rows are `harness.ranking`'s), `stats` (t intervals, Welch's test), `paper`
(the seed paper's reported numbers), `figures` (Plotly), `optuna_view`
(Optuna's own plots), `html` (the page's markup), `sections` (one function per
section of the page), `build` (all of it together, and the file).
Importing this package imports pandas and Plotly; commands import it lazily.
"""

from harness.report.build import build_html, default_output, markdown_leaderboard, write_report
from harness.report.gather import ReportData, ReportError, gather, resolve_studies

__all__ = [
    "ReportData",
    "ReportError",
    "build_html",
    "default_output",
    "gather",
    "markdown_leaderboard",
    "resolve_studies",
    "write_report",
]
