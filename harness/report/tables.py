"""Pure pandas: the frames behind each section, testable without Plotly.

Accuracies stay fractions here; the page turns them into percentages.
Ranking uses validation accuracy (selection), the plots and tests use test
accuracy (what is reported), so no choice is made on the test split.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.stats import mean_ci

__all__ = [
    "LEADERBOARD_COLUMNS",
    "leaderboard",
    "pareto_front",
    "status_counts",
]


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
    "protocol",
    "label_mode",
    "config",
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
    """One row per group of complete trials that differ only by seed, best mean val acc
    first (ties: fewer FLOPs, then the lower first trial id)."""
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
                "protocol": best.get("protocol"),
                "label_mode": best.get("label_mode"),
                "config": best.get("config") if isinstance(best.get("config"), dict) else {},
                "group": group,
            }
        )
    frame = pd.DataFrame(rows, columns=[c for c in LEADERBOARD_COLUMNS if c != "rank"])
    if frame.empty:
        return frame.assign(rank=pd.Series(dtype="int64"))[list(LEADERBOARD_COLUMNS)]
    frame["_first_id"] = [ids[0] for ids in frame["trial_ids"]]
    # Ties on validation go to the cheaper network, then the earlier one: never to test.
    frame = frame.sort_values(
        ["val_acc_mean", "flops", "_first_id"],
        ascending=[False, True, True],
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


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    from harness.store import TRIAL_STATUSES

    counts = trials["status"].value_counts()
    return {name: int(counts.get(name, 0)) for name in TRIAL_STATUSES}
