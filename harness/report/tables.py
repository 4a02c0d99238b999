"""Pure pandas: the frames behind each section, testable without Plotly.

Accuracies stay fractions here; the page turns them into percentages.
Ranking uses validation accuracy (selection), the plots and tests use test
accuracy (what is reported), so no choice is made on the test split.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import pandas as pd

from harness.report.stats import MIN_RUNS, mean_ci, welch

__all__ = [
    "FAMILY_ORDER",
    "LEADERBOARD_COLUMNS",
    "family_samples",
    "family_summary",
    "leaderboard",
    "pairwise_tests",
    "pareto_front",
    "status_counts",
]

FAMILY_ORDER = ("alternated", "RI", "IR", "other")
# The paper's questions first in the pairwise table.
_FIRST_PAIRS = (("RI", "alternated"), ("RI", "IR"), ("alternated", "IR"))

LEADERBOARD_COLUMNS = (
    "rank",
    "study",
    "arch",
    "kind",
    "family",
    "remedy",
    "pretrained",
    "n",
    "seeds",
    "trial_ids",
    "best_trial_id",
    "val_acc_mean",
    "val_acc_sd",
    "test_acc_mean",
    "test_acc_sd",
    "test_loss_mean",
    "params",
    "flops",
    "latency_ms",
    "epochs",
    "data_spec",
    "group",
)


def _finite(values: Any) -> list[float]:
    return [float(v) for v in values if v is not None and not pd.isna(v)]


def _first(values: Any) -> Any:
    for value in values:
        if value is not None and not pd.isna(value):
            return value
    return None


def leaderboard(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per group of complete trials that differ only by seed, best mean val acc first."""
    done = trials[(trials["status"] == "complete") & trials["val_acc"].notna()]
    rows = []
    for group, part in done.groupby("group", sort=False):
        part = part.sort_values("trial_id")
        val = mean_ci(_finite(part["val_acc"]))
        test = mean_ci(_finite(part["test_acc"]))
        loss = _finite(part["test_loss"])
        best = part.loc[part["val_acc"].idxmax()]
        rows.append(
            {
                "study": best["study"],
                "arch": best["arch"],
                "kind": best["kind"],
                "family": best["family"] if best["kind"] != "baseline" else best["arch"],
                "remedy": best["remedy"],
                "pretrained": bool(best["pretrained"]),
                "n": len(part),
                "seeds": [int(s) for s in part["seed"] if not pd.isna(s)],
                "trial_ids": [int(t) for t in part["trial_id"]],
                "best_trial_id": int(best["trial_id"]),
                "val_acc_mean": val.mean,
                "val_acc_sd": val.sd,
                "test_acc_mean": test.mean,
                "test_acc_sd": test.sd,
                "test_loss_mean": sum(loss) / len(loss) if loss else math.nan,
                "params": _first(part["params"]),
                "flops": _first(part["flops"]),
                "latency_ms": _first(part["latency_ms"]),
                "epochs": _first(part["epochs"]),
                "data_spec": best["data_spec"],
                "group": group,
            }
        )
    frame = pd.DataFrame(rows, columns=[c for c in LEADERBOARD_COLUMNS if c != "rank"])
    if frame.empty:
        return frame.assign(rank=pd.Series(dtype="int64"))[list(LEADERBOARD_COLUMNS)]
    frame["_first_id"] = [ids[0] for ids in frame["trial_ids"]]
    frame = frame.sort_values(
        ["val_acc_mean", "test_acc_mean", "_first_id"],
        ascending=[False, False, True],
        na_position="last",
    ).drop(columns="_first_id")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)[list(LEADERBOARD_COLUMNS)]


def pareto_front(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows no other row beats on both: lower `x` and higher `y`, ordered by `x`."""
    points = frame[frame[x].notna() & frame[y].notna()].sort_values([x, y], ascending=[True, False])
    keep, best = [], -math.inf
    for index, value in zip(points.index, points[y], strict=True):
        if value > best:
            keep.append(index)
            best = value
    return points.loc[keep]


def family_samples(trials: pd.DataFrame) -> dict[str, list[float]]:
    """Test accuracy of every complete trial by group: the four families, then each baseline."""
    done = trials[(trials["status"] == "complete") & trials["test_acc"].notna()]
    samples: dict[str, list[float]] = {name: [] for name in FAMILY_ORDER}
    for row in done.sort_values("trial_id").itertuples():
        name = row.arch if row.kind == "baseline" else row.family
        samples.setdefault(name, []).append(float(row.test_acc))
    return samples


def family_summary(samples: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for name, values in samples.items():
        ci = mean_ci(values)
        rows.append(
            {"group": name, "n": ci.n, "mean": ci.mean, "sd": ci.sd, "low": ci.low, "high": ci.high}
        )
    return pd.DataFrame(rows, columns=["group", "n", "mean", "sd", "low", "high"])


def pairwise_tests(samples: dict[str, list[float]]) -> pd.DataFrame:
    """Welch's t-test for each pair of groups; `verdict` says "not enough runs" where so.

    p-values are not corrected for the number of pairs: read them as evidence,
    not as a family-wise decision.
    """
    names = list(samples)
    pairs = [p for p in _FIRST_PAIRS if p[0] in samples and p[1] in samples]
    for a, b in combinations(names, 2):
        if (a, b) in pairs or (b, a) in pairs:
            continue
        if samples[a] or samples[b]:  # two empty groups say nothing worth a row
            pairs.append((a, b))
    rows = []
    for a, b in pairs:
        result = welch(samples[a], samples[b])
        n_a, n_b = len(samples[a]), len(samples[b])
        row: dict[str, Any] = {"a": a, "b": b, "n_a": n_a, "n_b": n_b}
        if result is None:
            if n_a < MIN_RUNS or n_b < MIN_RUNS:
                verdict = f"not enough runs (need {MIN_RUNS} per group)"
            else:
                verdict = "no spread in either group: cannot test"
            ci_a, ci_b = mean_ci(samples[a]), mean_ci(samples[b])
            diff = ci_a.mean - ci_b.mean if n_a and n_b else math.nan
            row.update(diff=diff, low=math.nan, high=math.nan, t=math.nan, df=math.nan, p=math.nan)
        else:
            row.update(
                diff=result.diff,
                low=result.low,
                high=result.high,
                t=result.t,
                df=result.df,
                p=result.p,
            )
            if result.p < 0.05:
                verdict = f"{a} higher" if result.diff > 0 else f"{b} higher"
            else:
                verdict = "no clear difference"
        row["verdict"] = verdict
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["a", "b", "n_a", "n_b", "diff", "low", "high", "t", "df", "p", "verdict"]
    )


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    from harness.store import TRIAL_STATUSES

    counts = trials["status"].value_counts()
    return {name: int(counts.get(name, 0)) for name in TRIAL_STATUSES}
