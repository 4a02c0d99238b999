"""Everything a report shows, read from the store into pandas frames.

Only `Store` methods are used here, so that every number on the page comes
from the same queries `harness trials` and `harness studies` print.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.store import Store

__all__ = ["ReportData", "ReportError", "gather", "input_remedy", "resolve_studies"]


class ReportError(HarnessError):
    """A report that cannot be made: unknown study, or a study with no trials."""


@dataclass
class ReportData:
    url: str  # masked: safe to print on the page
    studies: list[str]
    study_rows: pd.DataFrame  # `Store.studies_frame` rows of `studies`
    # `Store.trials_frame` of `studies`, CK+ folds as their means, plus `remedy`,
    # `pretrained`, `config`
    trials: pd.DataFrame
    details: dict[int, dict[str, Any]] = field(default_factory=dict)  # `Store.trial` by id
    # Our trial ids whose best-validation weights were kept (`harness export` takes them).
    with_weights: frozenset[int] = frozenset()
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def latest_trial(self) -> dict[str, Any] | None:
        if self.trials.empty:
            return None
        return self.details.get(int(self.trials["trial_id"].max()))


def resolve_studies(store: Store, studies: list[str] | None) -> list[str]:
    """The named studies, checked; without names, the study of the newest trial."""
    frame = store.studies_frame()
    known = list(frame["study"])
    if not studies:
        with_trials = frame[frame["trials"] > 0]
        if with_trials.empty:
            raise ReportError(
                f"no trials in {store.url}: run `harness train` or `harness run` first"
            )
        trials = store.trials_frame()
        newest = trials.loc[trials["trial_id"].idxmax(), "study"]
        return [str(newest)]
    names = list(dict.fromkeys(studies))  # repeated --study once
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = ", ".join(known) if known else "none"
        raise ReportError(f"unknown study {unknown[0]!r} in {store.url} (known: {listed})")
    counts = dict(zip(frame["study"], frame["trials"], strict=True))
    empty = [name for name in names if not counts.get(name)]
    if empty:
        raise ReportError(f"study {empty[0]!r} has no trials yet in {store.url}")
    return names


def input_remedy(config: dict[str, Any] | None) -> str:
    """How a baseline's network was made to take small images, from its recorded config."""
    config = config or {}
    parts = []
    if config.get("resize"):
        parts.append(f"upsampled to {int(config['resize'])} px")
    stem = config.get("baseline_stem")
    if stem == "small":
        parts.append("small-input stem (first 4x downsampling removed)")
    elif stem == "timm":
        parts.append("timm stem unchanged")
    if config.get("pretrained"):
        parts.append("pretrained weights")
    return "; ".join(parts) or "none recorded"


def gather(store: Store, studies: list[str] | None = None) -> ReportData:
    """Read the trials of `studies` (default: the latest study) and the details the page needs."""
    names = resolve_studies(store, studies)
    study_rows = store.studies_frame()
    study_rows = study_rows[study_rows["study"].isin(names)].reset_index(drop=True)
    frames = [store.trials_frame(study=name) for name in names]
    trials = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    # The recorded configs decide what may be compared with what (and a baseline's
    # input remedy); the newest trial's full row gives the environment.
    ids = [int(t) for t in trials["trial_id"]]
    configs = store.trial_columns(ids, ["config"])
    newest = int(trials["trial_id"].max())
    details = {newest: store.trial(newest)}
    config_column = [configs.get(i, {}).get("config") or {} for i in ids]
    remedies = [
        input_remedy(config) if kind == "baseline" else None
        for config, kind in zip(config_column, trials["kind"], strict=True)
    ]
    pretrained = [bool(config.get("pretrained")) for config in config_column]
    trials = trials.assign(remedy=remedies, pretrained=pretrained, config=config_column)
    # CK+ is compared only as fold means: each run of K folds becomes one row, and a run
    # missing a fold is no cross-validated figure (its row is not "complete").
    from harness.folds import fold_means

    trials = fold_means(trials)
    from harness.artifacts import trials_with_weights

    kept = trials_with_weights(store, ids)
    return ReportData(
        url=store.url,
        studies=names,
        study_rows=study_rows,
        trials=trials,
        details=details,
        with_weights=kept,
    )


def add_details(store: Store, data: ReportData, trial_ids: list[int]) -> None:
    """Read the full rows (confusion matrix, class names, config) of more trials."""
    for trial_id in trial_ids:
        if trial_id not in data.details:
            data.details[trial_id] = store.trial(trial_id)
