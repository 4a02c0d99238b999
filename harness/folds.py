"""Cross-validated CK+: every subject-independent fold of a `ckplus:` spec, and their mean.

CK+ has no official split; the paper's Table 2 is a cross-validated figure.
`--folds K` (train, baselines, run) trains one candidate once per fold, each
fold its own recorded trial whose data spec names `folds=K&fold=i`, with the
same seed. Nothing else links the K trials in the store: `fold_means` finds
them again in `Store.trials_frame()` by (study, candidate, protocol,
hyperparameters, data spec without `fold`, seed) and collapses each group into
one row, marking a group with a missing or unfinished fold as not complete.

    result = run_folds(config, store, folds=5)      # config.data = "ckplus:~/data/CK+48"
    result.val_mean, result.val_sd, result.test_mean, result.test_sd
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from harness.config import TrainConfig
    from harness.data import Dataset
    from harness.store import Store
    from harness.train import EpochMetrics
    from harness.trial import TrialOutcome

__all__ = [
    "MIN_FOLDS",
    "FoldOutcome",
    "check_folds",
    "fold_means",
    "fold_specs",
    "load_fold_datasets",
    "run_folds",
    "single_fold_note",
]

# A fold is the test split and the next one validation, so two folds would
# leave nothing to train on (the ckplus spec itself asks for folds >= 3).
MIN_FOLDS = 3

# Columns fold_means adds; NA on rows that are not fold trials.
FOLD_COLUMNS = ("folds", "folds_done", "fold_trial_ids", "val_acc_sd", "test_acc_sd")


def _query_names(data: str) -> dict[str, str]:
    """The options a spec string names itself (not the defaults parse_spec fills in)."""
    _, _, query = data.partition("?")
    names = {}
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        names[name.strip()] = value.strip()
    return names


def check_folds(data: str | None, folds: int | None) -> int:
    """The number of folds to run: 1 when `folds` is None (one trial on `data` as given);
    otherwise `folds`, after checking that `data` is a ckplus spec that can be split so.

    Raises ConfigError for a non-CK+ spec, too few folds, or a spec that already names
    the test fold; DataError for a spec that does not parse."""
    if folds is None:
        return 1
    from harness.data.spec import DEFAULT_SPEC, parse_spec

    if folds < MIN_FOLDS:
        raise ConfigError(
            f"--folds must be at least {MIN_FOLDS} (a test fold, a validation fold and one "
            f"to train on), got {folds}"
        )
    text = data or DEFAULT_SPEC
    spec = parse_spec(text)
    if spec.kind != "ckplus":
        raise ConfigError(
            f"--folds runs the subject-independent folds of a ckplus: spec; {text!r} is "
            f"{spec.kind}, which has fixed splits (drop --folds)"
        )
    named = _query_names(text)
    if "fold" in named:
        raise ConfigError(
            f"{text!r} names fold={named['fold']} and --folds {folds} runs every fold: "
            "drop one of them"
        )
    if "folds" in named and spec["folds"] != folds:
        raise ConfigError(
            f"{text!r} names folds={spec['folds']} but --folds is {folds}: drop one of them"
        )
    return folds


def fold_specs(data: str, folds: int) -> list[str]:
    """The normalised spec of each fold: `...?folds=K&fold=i&...`, i = 0..K-1."""
    from harness.data.spec import DataSpec, parse_spec

    check_folds(data, folds)
    spec = parse_spec(data)
    specs = []
    for fold in range(folds):
        options = dict(spec.options, folds=folds, fold=fold)
        specs.append(str(DataSpec(spec.kind, spec.path, tuple(options.items()))))
    return specs


def single_fold_note(spec: str) -> str | None:
    """For one CK+ fold, the reminder that it is not the cross-validated figure."""
    parts = _fold_parts(spec)
    if parts is None:
        return None
    _, folds, fold = parts
    return (
        f"  note: CK+ fold {fold} of {folds} only; --folds {folds} trains every fold for "
        "the cross-validated mean"
    )


def load_fold_datasets(data: str, folds: int) -> list[Any]:
    """Every fold's dataset (the images are read once; the folds are cheap re-splits)."""
    from harness.trial import load_trial_dataset

    return [load_trial_dataset(spec) for spec in fold_specs(data, folds)]


@functools.lru_cache(maxsize=32)
def _cached_fold_dataset(spec: str) -> Any:
    # A search trains many candidates on the same K folds in one process.
    from harness.trial import load_trial_dataset

    return load_trial_dataset(spec)


def _sd(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


@dataclass
class FoldOutcome:
    """The K fold trials of one candidate, read like one `TrialOutcome`: the accuracies
    are means over the folds (None unless every fold completed), everything measured
    once (parameters, FLOPs, latency, the epoch curve the pruner saw) is fold 0's."""

    folds: int
    outcomes: list[TrialOutcome] = field(default_factory=list)

    @property
    def complete(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status == "complete"]

    @property
    def folds_done(self) -> int:
        return len(self.complete)

    @property
    def status(self) -> str:
        for outcome in self.outcomes:
            if outcome.status != "complete":
                return outcome.status
        return "complete" if self.folds_done == self.folds else "incomplete"

    @property
    def reason(self) -> str | None:
        for fold, outcome in enumerate(self.outcomes):
            if outcome.status != "complete":
                return f"fold {fold} {outcome.status}: {outcome.reason}"
        if self.folds_done < self.folds:
            return f"{self.folds_done} of {self.folds} folds ran"
        notes = [f"fold {i}: {o.reason}" for i, o in enumerate(self.outcomes) if o.reason]
        return "; ".join(notes) or None

    def _first(self) -> TrialOutcome:
        if not self.outcomes:
            raise ValueError("no fold has run")
        return self.outcomes[0]

    trial_id = property(lambda self: self._first().trial_id)
    arch = property(lambda self: self._first().arch)
    family = property(lambda self: self._first().family)
    params = property(lambda self: self._first().params)
    flops = property(lambda self: self._first().flops)
    latency_ms = property(lambda self: self._first().latency_ms)
    epochs = property(lambda self: self._first().epochs)
    config = property(lambda self: self._first().config)
    class_names = property(lambda self: self._first().class_names)

    @property
    def trial_ids(self) -> list[int]:
        return [o.trial_id for o in self.outcomes]

    @property
    def reused(self) -> bool:
        return bool(self.outcomes) and all(o.reused for o in self.outcomes)

    @property
    def val_accs(self) -> list[float]:
        return [o.val_acc for o in self.complete if o.val_acc is not None]

    @property
    def test_accs(self) -> list[float]:
        return [o.test_acc for o in self.complete if o.test_acc is not None]

    # Means and sds over the completed folds (a partial figure when status != complete).
    val_mean = property(lambda self: _mean(self.val_accs))
    val_sd = property(lambda self: _sd(self.val_accs))
    test_mean = property(lambda self: _mean(self.test_accs))
    test_sd = property(lambda self: _sd(self.test_accs))

    @property
    def val_acc(self) -> float | None:
        """The objective of a search: mean validation accuracy over all K folds."""
        return self.val_mean if self.status == "complete" else None

    @property
    def test_acc(self) -> float | None:
        return self.test_mean if self.status == "complete" else None


def run_folds(
    config: TrainConfig,
    store: Store,
    *,
    folds: int = 1,
    datasets: list[Dataset] | None = None,
    dataset: Dataset | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    on_fold_start: Callable[[int, str], None] | None = None,
    on_fold: Callable[[int, TrialOutcome], None] | None = None,
    constraints: Any | None = None,
    measure_latency: bool = True,
    **trial_args: Any,
) -> TrialOutcome | FoldOutcome:
    """`run_trial` once per fold of `config.data` (same seed), or once when folds == 1.

    `on_epoch` sees fold 0's epochs only: a search's pruner compares every candidate
    on fold 0's curve and can stop a poor one before its other folds are spent.
    Constraints and latency are checked on fold 0 (the network is the same in every
    fold). The folds stop at the first one that does not complete, since the mean
    could not be a cross-validated figure any more. `dataset` is used only when
    folds == 1 (the search passes the dataset it loaded); `datasets` are the K folds.
    """
    from harness.trial import run_trial

    if folds <= 1:
        return run_trial(
            config, store, dataset=dataset, on_epoch=on_epoch, constraints=constraints,
            measure_latency=measure_latency, **trial_args,
        )  # fmt: skip
    specs = fold_specs(config.data, folds)
    if datasets is not None and len(datasets) != folds:
        raise ValueError(f"{len(datasets)} datasets for {folds} folds")
    result = FoldOutcome(folds=folds)
    for fold, spec in enumerate(specs):
        if on_fold_start is not None:
            on_fold_start(fold, spec)
        fold_data = datasets[fold] if datasets is not None else _cached_fold_dataset(spec)
        first = fold == 0
        outcome = run_trial(
            config.replace(data=spec), store, dataset=fold_data,
            on_epoch=on_epoch if first else None,
            constraints=constraints if first else None,
            measure_latency=measure_latency and first,
            **trial_args,
        )  # fmt: skip
        result.outcomes.append(outcome)
        if on_fold is not None:
            on_fold(fold, outcome)
        if outcome.status != "complete":
            break
    return result


# -- fold means from the store's trials frame ---------------------------------------------


def _fold_parts(spec: Any) -> tuple[str, int, int] | None:
    """'ckplus:/d?folds=5&fold=2&size=48' -> ('ckplus:/d?folds=5&size=48', 5, 2)."""
    if not isinstance(spec, str) or not spec.startswith("ckplus:"):
        return None
    head, _, query = spec.partition("?")
    items = [item for item in query.split("&") if item]
    named = dict(item.partition("=")[::2] for item in items)
    try:
        folds, fold = int(named["folds"]), int(named["fold"])
    except (KeyError, ValueError):
        return None
    rest = "&".join(item for item in items if not item.startswith("fold="))
    return f"{head}?{rest}", folds, fold


def _hyperparameters_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else ""


def _finite(values: Any) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _collapse(group: pd.DataFrame) -> dict[str, Any]:
    """One row for the fold trials of one experiment."""
    import pandas as pd

    folds = int(group["_folds"].iloc[0])
    # One trial per fold: the latest complete one, else the latest attempt.
    chosen = (
        group.assign(_done=group["status"] == "complete")
        .sort_values(["_fold", "_done", "trial_id"])
        .drop_duplicates("_fold", keep="last")
    )
    chosen = chosen[chosen["_fold"] < folds]
    done = chosen[chosen["status"] == "complete"]
    row = chosen.sort_values("_fold").iloc[0].to_dict()
    unfinished = chosen[chosen["status"] != "complete"].sort_values("_fold")
    if len(done) == folds:
        status, reason = "complete", None
    else:
        status = str(unfinished["status"].iloc[0]) if len(unfinished) else "incomplete"
        reason = f"{len(done)} of {folds} folds complete: not a cross-validated mean"
        if len(unfinished):
            first = unfinished.iloc[0]
            reason += f"; fold {int(first['_fold'])} {first['status']}"
            if isinstance(first["reason"], str) and first["reason"]:
                reason += f": {first['reason']}"
    val, test = _finite(done["val_acc"]), _finite(done["test_acc"])
    row.update(
        trial_id=int(chosen["trial_id"].min()),
        status=status,
        reason=reason,
        val_acc=_mean(val),
        test_acc=_mean(test),
        val_loss=_mean(_finite(done["val_loss"])),
        test_loss=_mean(_finite(done["test_loss"])),
        val_acc_sd=_sd(val),
        test_acc_sd=_sd(test),
        best_epoch=pd.NA,
        epochs=int(chosen["epochs"].fillna(0).sum()),
        train_seconds=float(done["train_seconds"].fillna(0).sum()) if len(done) else None,
        eval_seconds=float(done["eval_seconds"].fillna(0).sum()) if len(done) else None,
        images_per_s=_mean(_finite(done["images_per_s"])),
        data_spec=row["_spec"],
        data_fingerprint=None,
        config_hash=None,
        started_at=chosen["started_at"].min(),
        finished_at=chosen["finished_at"].max() if status == "complete" else pd.NaT,
        folds=folds,
        folds_done=len(done),
        fold_trial_ids=[int(t) for t in chosen.sort_values("_fold")["trial_id"]],
    )
    return row


def fold_means(trials: pd.DataFrame) -> pd.DataFrame:
    """`Store.trials_frame()` with the CK+ fold trials of each experiment collapsed.

    A group is the trials of one (study, candidate_id, protocol, hyperparameters,
    data spec without `fold`, seed); its row has `val_acc`/`test_acc` (and losses)
    the mean over its complete folds, `val_acc_sd`/`test_acc_sd` the sample sd,
    `folds` = K, `folds_done` the number of complete folds, `fold_trial_ids` one
    trial per fold (the latest complete one), `data_spec` without `fold=`, and
    `trial_id` its first trial. Unless every fold is complete its `status` is not
    "complete" (the first unfinished fold's status, or "incomplete" when folds are
    missing) and `reason` says how many folds are done: such a row is no
    cross-validated figure. Every other row is unchanged (the new columns NA).

    Settings outside `hyperparameters` (patience, max_batches, precision) are not in
    the key: fold trials that differ only there fall into one group, and each fold
    keeps its latest complete trial.
    """
    import pandas as pd

    parts = trials["data_spec"].map(_fold_parts) if len(trials) else pd.Series(dtype=object)
    is_fold = parts.notna()
    plain = trials[~is_fold].copy()
    for column in FOLD_COLUMNS:
        plain[column] = pd.NA if column != "fold_trial_ids" else None
    collapsed = []
    if is_fold.any():
        fold_rows = trials[is_fold].copy()
        fold_rows["_spec"] = [p[0] for p in parts[is_fold]]
        fold_rows["_folds"] = [p[1] for p in parts[is_fold]]
        fold_rows["_fold"] = [p[2] for p in parts[is_fold]]
        fold_rows["_hp"] = fold_rows["hyperparameters"].map(_hyperparameters_key)
        keys = ["study", "candidate_id", "protocol", "_hp", "_spec", "seed"]
        for _, group in fold_rows.groupby(keys, dropna=False, sort=False):
            collapsed.append(_collapse(group))
    columns = [*trials.columns, *FOLD_COLUMNS]
    groups = pd.DataFrame(collapsed, columns=[*columns, "_spec", "_folds", "_fold", "_hp"])
    frames = [f[columns] for f in (plain, groups) if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].copy()
    for column in ("folds", "folds_done"):
        out[column] = pd.array([None if pd.isna(v) else int(v) for v in out[column]], dtype="Int64")
    for column in ("val_acc_sd", "test_acc_sd"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out.sort_values("trial_id", kind="stable").reset_index(drop=True)
