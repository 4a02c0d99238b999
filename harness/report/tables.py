"""Pure pandas: the frames behind the page's sections, testable without Plotly.

The leaderboard's rows are `harness.ranking.rank_trials`, the ones `harness run`
prints. Accuracies stay fractions here; the page turns them into percentages.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = [
    "pareto_front",
    "status_counts",
]


def pareto_front(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows no other row beats on both: lower `x` and higher `y`, ordered by `x`."""
    points = frame[frame[x].notna() & frame[y].notna()].sort_values([x, y], ascending=[True, False])
    keep, best = [], -math.inf
    for index, value in zip(points.index, points[y], strict=True):
        if value > best:
            keep.append(index)
            best = value
    return points.loc[keep]


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    from harness.store import TRIAL_STATUSES

    counts = trials["status"].value_counts()
    return {name: int(counts.get(name, 0)) for name in TRIAL_STATUSES}
