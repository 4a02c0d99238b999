"""Column sets of the frames `Store` returns, and their dtypes.

Integer columns are pandas' nullable `Int64`, times are datetime64 (naive UTC),
metrics are float64 with NaN for missing values.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from harness.store.models import TRIAL_STATUSES

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EPOCH_FRAME_COLUMNS",
    "LATENCY_FRAME_COLUMNS",
    "NOT_TRIAL_COLUMNS",
    "STUDY_FRAME_COLUMNS",
    "TRIAL_FRAME_COLUMNS",
    "tidy",
]

TRIAL_FRAME_COLUMNS = (
    "trial_id",
    "study",
    "arch",
    "kind",
    "family",
    "status",
    "reason",
    "protocol",
    "seed",
    "optuna_trial_number",
    "val_acc",
    "val_loss",
    "test_acc",
    "test_loss",
    "best_epoch",
    "epochs",
    "params",
    "flops",
    "latency_ms",
    "latency_p90_ms",
    "latency_device",
    "latency_threads",
    "train_seconds",
    "eval_seconds",
    "images_per_s",
    "device",
    "hyperparameters",
    "label_mode",
    "data_spec",
    "data_fingerprint",
    "config_hash",
    "input_shape",
    "num_classes",
    "worker",
    "started_at",
    "finished_at",
    "study_id",
    "candidate_id",
)
EPOCH_FRAME_COLUMNS = (
    "trial_id",
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
    "images_per_s",
    "recorded_at",
)
STUDY_FRAME_COLUMNS = (
    "study_id",
    "study",
    "space",
    "objectives",
    "sampler",
    "data_spec",
    "created_at",
    "trials",
    *TRIAL_STATUSES,
    "best_val_acc",
    "best_test_acc",
    "best_trial_id",
    "best_arch",
)
LATENCY_FRAME_COLUMNS = (
    "latency_id",
    "candidate_id",
    "arch",
    "kind",
    "family",
    "trial_id",
    "device",
    "batch",
    "threads",
    "median_ms",
    "p90_ms",
    "min_ms",
    "max_ms",
    "repeats",
    "created_at",
)
_INT_COLUMNS = (
    "seed",
    "optuna_trial_number",
    "best_epoch",
    "epochs",
    "params",
    "flops",
    "latency_threads",
    "num_classes",
    "trials",
    *TRIAL_STATUSES,
    "best_trial_id",
    "trial_id",
    "batch",
    "threads",
    "repeats",
)

# Columns of TRIAL_FRAME_COLUMNS that come from elsewhere than the trials table.
NOT_TRIAL_COLUMNS = frozenset(
    {
        "study",
        "arch",
        "kind",
        "family",
        "params",
        "flops",
        "input_shape",
        "num_classes",
        "epochs",
        "latency_ms",
        "latency_p90_ms",
        "latency_device",
        "latency_threads",
    }
)


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integers for integer columns, datetimes for times, floats for metrics."""
    import pandas as pd

    for column in frame.columns:
        if column in _INT_COLUMNS or column.endswith("_id") or column == "epoch":
            frame[column] = pd.array(
                [
                    None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
                    for v in frame[column]
                ],
                dtype="Int64",
            )
        elif column.endswith("_at"):
            frame[column] = pd.to_datetime(frame[column])
        elif column.endswith(("_acc", "_loss", "_ms", "_seconds", "_per_s")) or column in (
            "lr",
            "seconds",
        ):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame.reset_index(drop=True)
