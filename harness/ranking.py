"""Trials grouped into leaderboard rows and ranked: the one ranking behind the leaderboard
`harness run` prints and the report's tables.

A row is one candidate setting: trials that differ only in the seed (`setting_key`),
pooled. Rows rank by mean validation accuracy, the selection score; a tie goes to fewer
FLOPs, then to the earlier trial, and never to test accuracy, which is what is reported.

pandas is imported when rows are built, not with this module, so that `--help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.tables import is_missing

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RANKED_COLUMNS", "SETTING_KEY_FIELDS", "rank_trials", "setting_key"]

SETTING_KEY_FIELDS = (
    "study", "candidate_id", "protocol", "data", "label_mode", "hyperparameters", "remedy",
)  # fmt: skip

RANKED_COLUMNS = (
    "rank", "study", "arch", "kind", "family", "remedy", "pretrained", "n", "seeds",
    "trial_ids", "best_trial_id", "val_acc_mean", "val_acc_sd", "test_acc_mean",
    "test_acc_sd", "test_accs", "test_loss_mean", "params", "flops", "latency_ms", "epochs",
    "data_spec", "protocol", "label_mode", "config", "group",
)  # fmt: skip

# Taken from the group's best trial (highest validation accuracy, the earliest on a tie).
_FROM_BEST = ("study", "arch", "kind", "family", "remedy", "pretrained", "data_spec", "protocol",
              "label_mode", "config")  # fmt: skip


def setting_key(row: Mapping[str, Any]) -> str:
    """Trials that differ only in the seed share a key: one leaderboard row, their mean
    and spread. A row of `Store.trials_frame` (search) or of the report's frame.

    The candidate is the network (architecture on its skeleton; a baseline's stem,
    input size and pretrained weights are part of it). The data is the recorded
    fingerprint, or, for a CK+ fold mean (no one fingerprint), the spec without
    `fold=`, so that 5-fold and 10-fold runs stay apart. `remedy` (the report's
    description of a baseline's input handling) is None where a frame has none;
    it only splits rows of databases older than the stem in the candidate.
    """
    hyper = row.get("hyperparameters")
    fingerprint = row.get("data_fingerprint")
    data = row.get("data_spec") if is_missing(fingerprint) else fingerprint
    remedy = row.get("remedy")
    values = {
        "study": row["study"],
        "candidate_id": int(row["candidate_id"]),
        "protocol": row.get("protocol"),
        "data": None if is_missing(data) else data,
        "label_mode": row.get("label_mode"),
        "hyperparameters": hyper if isinstance(hyper, dict) else None,
        "remedy": None if is_missing(remedy) else remedy,
    }
    return json.dumps([values[k] for k in SETTING_KEY_FIELDS], sort_keys=True, default=str)


def _ints(values: pd.Series) -> list[int]:
    return [int(v) for v in values.dropna()]


def _floats(values: pd.Series) -> list[float]:
    return [float(v) for v in values.dropna()]


def rank_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The complete trials of `trials` (a `Store.trials_frame`, CK+ folds collapsed by
    `harness.folds.fold_means`; the report adds `remedy`, `pretrained` and `config`)
    as ranked leaderboard rows, columns `RANKED_COLUMNS`.

    Accuracies are the mean and sample sd over the seeds (sd NaN for one run);
    `test_accs` lists them; cost (params, FLOPs, latency) is the candidate's.
    """
    import pandas as pd

    # A trial without a validation score cannot be selected, so it is not ranked.
    done = trials[(trials["status"] == "complete") & trials["val_acc"].notna()]
    if done.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "rank" else object)
                             for c in RANKED_COLUMNS})  # fmt: skip
    done = done.sort_values("trial_id", kind="stable").reset_index(drop=True)
    done = done.assign(
        group=[setting_key(row) for row in done.to_dict(orient="records")],
        remedy=done.get("remedy"),
        pretrained=done["pretrained"].astype(bool) if "pretrained" in done else False,
        config=[c if isinstance(c, dict) else {} for c in done.get("config", [None] * len(done))],
    )
    grouped = done.groupby("group", sort=False)
    best = done.loc[grouped["val_acc"].idxmax(), ["group", "trial_id", *_FROM_BEST]]
    pooled = grouped.agg(
        n=("trial_id", "size"),
        seeds=("seed", _ints),
        trial_ids=("trial_id", _ints),
        val_acc_mean=("val_acc", "mean"),
        val_acc_sd=("val_acc", "std"),
        test_acc_mean=("test_acc", "mean"),
        test_acc_sd=("test_acc", "std"),
        test_accs=("test_acc", _floats),
        test_loss_mean=("test_loss", "mean"),
        params=("params", "first"),
        flops=("flops", "first"),
        latency_ms=("latency_ms", "first"),
        epochs=("epochs", "first"),
    )
    board = best.rename(columns={"trial_id": "best_trial_id"}).join(pooled, on="group")
    board["first_id"] = [ids[0] for ids in board["trial_ids"]]
    # Ties on validation go to the cheaper network, then the earlier one: never to test.
    board = board.sort_values(
        ["val_acc_mean", "flops", "first_id"], ascending=[False, True, True], na_position="last"
    )
    board.insert(0, "rank", range(1, len(board) + 1))
    return board.reset_index(drop=True)[list(RANKED_COLUMNS)]
