"""Compose the report: gather from the store, compute the frames, draw, write one file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.output import write_text_atomic
from harness.ranking import rank_trials
from harness.report import comparisons, estimates, sections
from harness.report.gather import gather, resolve_studies
from harness.report.html import Section, page
from harness.tables import count, render_markdown, text

__all__ = ["build_html", "default_output", "markdown_leaderboard", "write_report"]


def build_html(store: Any, studies: list[str] | None = None) -> str:
    """The report page of `studies` (default: the study of the newest trial) as one HTML string."""
    import plotly.offline

    data = gather(store, studies)
    board = rank_trials(data.trials)
    banner = comparisons.synthetic_banner(data.trials)
    parts = [
        sections.leaderboard_section(board, len(data.studies) > 1, data.with_weights, data.url),
        sections.cost_section(board),
        comparisons.comparison_section(store, data.trials),
        sections.curves_section(store, board),
        sections.confusion_section(store, data, board),
        sections.optuna_section(store, data),
        sections.paper_section(board),
        sections.ordering_section(board),
        # The banner only above its numbers: without scores the section is one line.
        estimates.estimators_section(store, data.trials, banner),
    ]
    # Every section that compares numbers says, on synthetic data, that it is no finding.
    parts = [
        Section(p.anchor, p.title, banner + p.body)
        if p.anchor in ("leaderboard", "cost", "paper", "orderings")
        else p
        for p in parts
    ]
    title = f"Benchmark report: {', '.join(data.studies)}"
    intro = "<h2 id=header>1. Study</h2>" + sections.intro(data)
    return page(title, intro, parts, plotly.offline.get_plotlyjs())


def default_output(studies: list[str]) -> Path:
    name = "+".join(re.sub(r"[^A-Za-z0-9._-]+", "_", s) for s in studies)
    return Path("reports") / f"{name}.html"


def write_report(store: Any, studies: list[str] | None, output: Path | None) -> Path:
    """Write the report of `studies` (default: the study of the newest trial) to `output`
    (default: reports/<study>.html) and return the path written.

    The file is written next to its final place and renamed, so a reader never
    sees half a page.
    """
    names = resolve_studies(store, studies)
    path = Path(output) if output is not None else default_output(names)
    markup = build_html(store, names)
    return write_text_atomic(path, markup)


def markdown_leaderboard(store: Any, studies: list[str] | None = None) -> str:
    """The whole leaderboard as a Markdown table (for CI summaries)."""
    data = gather(store, studies)
    board = rank_trials(data.trials)
    headers = [*sections.LEADERBOARD_HEADERS, "weights"]
    several = len(data.studies) > 1
    if several:
        headers.insert(1, "study")
    rows = []
    for r in board.itertuples():
        family = f"baseline ({text(r.remedy)})" if r.kind == "baseline" else r.family
        trial_id = sections.row_export_trial(r, data.with_weights)
        export = (
            "not kept"
            if trial_id is None
            else f"`{sections.export_command(data.url, trial_id=trial_id)}`"
        )
        row = [str(r.rank), f"`{r.arch}`", family, count(r.n), *sections.result_cells(r), export]
        if several:
            row.insert(1, r.study)
        rows.append(row)
    title = f"Leaderboard: {', '.join(data.studies)} ({sections.FLOPS_NOTE})"
    return f"{title}\n\n{render_markdown(headers, rows)}"
