"""`Frames`: the store's reads as pandas frames; their column sets and dtypes.

Integer columns are pandas' nullable `Int64`, times are datetime64 (naive UTC),
metrics are float64 with NaN for missing values. pandas is imported when a
frame is built, not with this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harness.store.base import StoreBase, check_choice
from harness.store.kinds import TRIAL_STATUSES
from harness.store.models import Candidate, Epoch, Latency, Study, Trial

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EPOCH_FRAME_COLUMNS",
    "Frames",
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


class Frames(StoreBase):
    def trials_frame(self, study: str | None = None, status: str | None = None) -> pd.DataFrame:
        """One row per trial (columns `TRIAL_FRAME_COLUMNS`), ordered by id, joined with
        its study and candidate, its number of recorded epochs, and the candidate's
        fastest batch-1 latency (`latency_ms` median, with its p90, device, threads)."""
        if status is not None:
            check_choice(status, TRIAL_STATUSES, "status")

        def work(session: Session) -> tuple[list[Any], list[Any]]:
            epoch_counts = (
                select(Epoch.trial_id, func.count().label("epochs"))
                .group_by(Epoch.trial_id)
                .subquery()
            )
            query = (
                select(
                    Trial.id.label("trial_id"),
                    Study.name.label("study"),
                    Candidate.arch,
                    Candidate.kind,
                    Candidate.family,
                    Candidate.params,
                    Candidate.flops,
                    Candidate.input_shape,
                    Candidate.num_classes,
                    func.coalesce(epoch_counts.c.epochs, 0).label("epochs"),
                    *(
                        getattr(Trial, name)
                        for name in TRIAL_FRAME_COLUMNS
                        if name not in NOT_TRIAL_COLUMNS and name != "trial_id"
                    ),
                )
                .join(Study, Study.id == Trial.study_id)
                .join(Candidate, Candidate.id == Trial.candidate_id)
                .outerjoin(epoch_counts, epoch_counts.c.trial_id == Trial.id)
                .order_by(Trial.id)
            )
            if study is not None:
                query = query.where(Study.name == study)
            if status is not None:
                query = query.where(Trial.status == status)
            trials = [dict(row) for row in session.execute(query).mappings()]
            latencies = session.execute(
                select(
                    Latency.candidate_id,
                    Latency.median_ms.label("latency_ms"),
                    Latency.p90_ms.label("latency_p90_ms"),
                    Latency.device.label("latency_device"),
                    Latency.threads.label("latency_threads"),
                )
                .where(Latency.batch == 1, Latency.median_ms.is_not(None))
                .order_by(Latency.candidate_id, Latency.median_ms)
            ).mappings()
            return trials, [dict(row) for row in latencies]

        import pandas as pd

        trials, latencies = self._read(work, what="cannot read trials")
        frame = pd.DataFrame(
            trials, columns=[c for c in TRIAL_FRAME_COLUMNS if not c.startswith("latency")]
        )
        fastest = pd.DataFrame(
            latencies,
            columns=[
                "candidate_id",
                "latency_ms",
                "latency_p90_ms",
                "latency_device",
                "latency_threads",
            ],
        ).drop_duplicates("candidate_id", keep="first")
        frame = frame.merge(fastest, on="candidate_id", how="left")
        return tidy(frame[list(TRIAL_FRAME_COLUMNS)])

    def epochs_frame(self, trial_ids: Iterable[int] | None = None) -> pd.DataFrame:
        """One row per recorded epoch (columns `EPOCH_FRAME_COLUMNS`), by trial and epoch."""
        wanted = None if trial_ids is None else sorted({int(t) for t in trial_ids})

        def work(session: Session) -> list[dict[str, Any]]:
            query = select(*(getattr(Epoch, c) for c in EPOCH_FRAME_COLUMNS)).order_by(
                Epoch.trial_id, Epoch.epoch
            )
            if wanted is not None:
                query = query.where(Epoch.trial_id.in_(wanted))
            return [dict(row) for row in session.execute(query).mappings()]

        import pandas as pd

        if wanted == []:
            return tidy(pd.DataFrame([], columns=list(EPOCH_FRAME_COLUMNS)))
        rows = self._read(work, what="cannot read epochs")
        return tidy(pd.DataFrame(rows, columns=list(EPOCH_FRAME_COLUMNS)))

    def studies_frame(self) -> pd.DataFrame:
        """One row per study: trial counts per status, and the complete trial with the
        best validation accuracy (`best_val_acc`, its `best_test_acc`, id and arch).
        The test accuracy is the best-val trial's, never a maximum over test scores."""

        def work(session: Session) -> tuple[list[Any], list[Any]]:
            studies = session.execute(
                select(
                    Study.id.label("study_id"),
                    Study.name.label("study"),
                    Study.space,
                    Study.objectives,
                    Study.sampler,
                    Study.data_spec,
                    Study.created_at,
                ).order_by(Study.id)
            ).mappings()
            trials = session.execute(
                select(
                    Trial.id,
                    Trial.study_id,
                    Trial.status,
                    Trial.val_acc,
                    Trial.test_acc,
                    Candidate.arch,
                ).join(Candidate, Candidate.id == Trial.candidate_id)
            ).mappings()
            return [dict(r) for r in studies], [dict(r) for r in trials]

        import pandas as pd

        studies, trials = self._read(work, what="cannot read studies")
        studies_frame = pd.DataFrame(studies, columns=list(STUDY_FRAME_COLUMNS[:7]))
        trials_frame = pd.DataFrame(
            trials, columns=["id", "study_id", "status", "val_acc", "test_acc", "arch"]
        )
        counts = pd.crosstab(trials_frame["study_id"], trials_frame["status"]).reindex(
            columns=list(TRIAL_STATUSES), fill_value=0
        )
        counts.insert(0, "trials", counts.sum(axis=1))
        scored = trials_frame[
            (trials_frame["status"] == "complete") & trials_frame["val_acc"].notna()
        ]
        # Best validation accuracy per study; the earlier trial wins a tie.
        best = (
            scored.sort_values(["val_acc", "id"], ascending=[False, True])
            .drop_duplicates("study_id")
            .set_index("study_id")[["val_acc", "test_acc", "id", "arch"]]
            .set_axis(["best_val_acc", "best_test_acc", "best_trial_id", "best_arch"], axis=1)
        )
        frame = studies_frame.join(counts, on="study_id").join(best, on="study_id")
        frame[counts.columns] = frame[counts.columns].fillna(0)
        return tidy(frame[list(STUDY_FRAME_COLUMNS)])

    def latencies_frame(self) -> pd.DataFrame:
        """Every latency measurement (columns `LATENCY_FRAME_COLUMNS`) with its candidate."""

        def work(session: Session) -> list[dict[str, Any]]:
            query = (
                select(
                    Latency.id.label("latency_id"),
                    Latency.candidate_id,
                    Candidate.arch,
                    Candidate.kind,
                    Candidate.family,
                    *(getattr(Latency, c) for c in LATENCY_FRAME_COLUMNS[5:]),
                )
                .join(Candidate, Candidate.id == Latency.candidate_id)
                .order_by(Latency.id)
            )
            return [dict(row) for row in session.execute(query).mappings()]

        import pandas as pd

        rows = self._read(work, what="cannot read latencies")
        return tidy(pd.DataFrame(rows, columns=list(LATENCY_FRAME_COLUMNS)))
