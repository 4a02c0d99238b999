"""Run a search: prepare the study, run workers until the study has its trials,
retrain the top candidates with more seeds, and rank everything from the store.

    settings = SearchSettings(space="rir_orderings", url="sqlite:///results/harness.db")
    result = run_search(settings)        # resumes the study if it exists

`--trials N` is the study's total, so rerunning a finished command does no
new work and a stopped one continues where it was. With several workers two
may start the last trial together, so a study can end up to workers - 1
trials over N.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.search.objective import CandidateFailed, Objective, RunError, best_text
from harness.search.settings import Search, SearchSettings
from harness.search.study import (
    StaleTrials,
    counted_trials,
    enqueue_named,
    fail_stale,
    open_storage,
    open_study,
    stored_arch,
)
from harness.search.workers import run_workers

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness.search.progress import Progress
    from harness.store import Store

__all__ = ["SearchResult", "prepare", "repeat_plan", "run_search", "run_worker"]

PAPER_FAMILIES = ("alternated", "RI", "IR")


@dataclass
class SearchResult:
    study: str
    url: str  # masked
    n_trials: int
    leaderboard: pd.DataFrame
    pareto: list[int] = field(default_factory=list)  # store trial ids on the Pareto front
    recovered: int = 0
    repeated: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)  # our trials of the study, by status


def _constraints(settings: SearchSettings) -> Any:
    if not settings.constraints:
        return None
    from harness.trial import Constraints

    return Constraints(**settings.constraints)


def _storage(search: Search, store: Store) -> tuple[optuna.storages.RDBStorage, StaleTrials]:
    on_stale = StaleTrials(search, store)
    storage = open_storage(
        search.settings.url,
        heartbeat_s=search.settings.heartbeat_s,
        grace_s=search.settings.grace_s,
        on_stale=on_stale,
    )
    return storage, on_stale


def prepare(search: Search, store: Store) -> tuple[optuna.Study, int]:
    """Create or load the study, retry trials whose worker's heartbeat went stale,
    enqueue the named architectures; returns the study and how many were retried.

    Runs once, in the process that starts the workers, so that they never race to
    create the study or enqueue twice. Dead workers are Optuna's heartbeat's to
    find (`harness.store.liveness`); a retried trial is queued before the named
    architectures that the study still lacks."""
    storage, on_stale = _storage(search, store)
    study = open_study(search, storage, create=True)
    fail_stale(study)
    if search.settings.strategy == "train":
        # With a strategy, the estimator's top K are the trials (harness.strategy).
        enqueue_named(study, search)
    store.ensure_study(search.study, data_spec=None, **search.study_fields())
    return study, on_stale.recovered


def run_worker(search: Search, store: Store, *, progress: Progress | None = None) -> int:
    """Run trials until the study has `n_trials`; returns how many this worker ran."""
    from harness.trial import load_trial_dataset

    storage, _ = _storage(search, store)
    study = open_study(search, storage, create=False)
    if counted_trials(study) >= search.n_trials:
        return 0
    dataset = load_trial_dataset(search.data)
    objective = Objective(
        search, store, dataset, constraints=_constraints(search.settings), progress=progress
    )
    ran = 0
    while counted_trials(study) < search.n_trials:
        # One trial per call, so that the total is checked between trials.
        # A run error's trial is queued again (harness.search.objective): go on to it.
        study.optimize(objective, n_trials=1, catch=(CandidateFailed, RunError))
        ran += 1
        if progress is not None:
            progress.set_best(best_text(study))
    return ran


def run_search(
    settings: SearchSettings,
    *,
    search: Search | None = None,
    before_trials: Callable[[Search, Store, optuna.Study], None] | None = None,
) -> SearchResult:
    """The whole `harness run`: prepare, search (in-process or with workers), repeats.

    `before_trials` queues trials of its own once the study is ready: a ranking
    strategy's top K (`harness.strategy.ranked_search`, which sits above this package
    and the estimators it needs)."""
    from harness.search.leaderboard import leaderboard, pareto_store_ids
    from harness.search.progress import Progress
    from harness.store import Store

    started = time.perf_counter()
    search = search or Search.resolve(settings)
    if settings.strategy != "train" and before_trials is None:
        raise ConfigError(
            f"--strategy {settings.strategy} ranks candidates before training: "
            "run it with harness.strategy.ranked_search"
        )
    with Store(settings.url) as store:
        study, recovered = prepare(search, store)
        if before_trials is not None:
            before_trials(search, store, study)
        done = counted_trials(study)
        progress = Progress(
            total=search.n_trials,
            done=done,
            enabled=settings.progress,
            epochs=search.base.epochs,
        )
        progress.set_best(best_text(study))
        try:
            if settings.workers > 1:
                run_workers(search, study, progress)
            else:
                run_worker(search, store, progress=progress)
        finally:
            progress.close()
        repeated = run_repeats(search, store, study)
        pareto = pareto_store_ids(study)
        board = leaderboard(store, search, study)
        statuses = store.trials_frame(study=search.study)["status"].value_counts()
        return SearchResult(
            statuses={str(k): int(v) for k, v in statuses.items()},
            study=search.study,
            url=store.url,
            n_trials=counted_trials(study),
            leaderboard=board,
            pareto=pareto,
            recovered=recovered,
            repeated=repeated,
            seconds=time.perf_counter() - started,
        )


def top_trials(search: Search, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best `top` distinct candidates (single objective) or the most accurate `top`
    of the Pareto front: the ones `--repeats` gives more seeds."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(study.directions) > 1:
        ranked = sorted(study.best_trials, key=lambda t: (-t.values[0], t.number))
    else:
        ranked = sorted(complete, key=lambda t: (-t.value, t.number))
    chosen, seen = [], set()
    for trial in ranked:
        key = _params_key(trial.params, search.space)
        if key in seen:
            continue
        seen.add(key)
        chosen.append(trial)
        if len(chosen) >= search.settings.top:
            break
    return chosen


def _params_key(params: dict[str, Any], space: Any = None) -> tuple:
    """Trials with equal keys train the same experiment. With a space, the architecture
    counts by its canonical form: two parameter sets may name one network (random keys,
    R*16 reached from both directions of a split)."""
    if space is None:
        return tuple(sorted((k, str(v)) for k, v in params.items()))
    arch = stored_arch(space, params)
    if arch is None:  # parameters of another space version: compare them as they are
        return _params_key(params)
    names = set(space.encoding.names())
    rest = tuple(sorted((k, str(v)) for k, v in params.items() if k not in names))
    return (arch, rest)


def repeat_plan(search: Search, study: optuna.Study) -> list[tuple[dict[str, Any], int]]:
    """(parameters, seeds in all) for every candidate that gets more than one seed.

    - every choice of a choices space (the paper's table): `--repeats` seeds each,
      whether or not its first run finished, so each row has exactly K seeds;
    - the space's named paper orderings (alternated, RI, IR): at least the budget's
      `named_seeds`, so that the first leaderboard shows seed noise;
    - the top candidates: `--repeats` seeds.
    """
    import optuna

    settings = search.settings
    wanted: dict[tuple, tuple[dict[str, Any], int]] = {}

    def want(params: dict[str, Any], seeds: int) -> None:
        if seeds <= 1 or not params:
            return
        key = _params_key(params, search.space)
        old = wanted.get(key, (params, 0))[1]
        wanted[key] = (dict(params), max(old, seeds))

    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
             optuna.trial.TrialState.FAIL)  # fmt: skip
    trials = study.get_trials(deepcopy=False, states=ended)
    if search.space.kind == "choices":
        for params in search.space.enqueue_params():
            want(params, settings.repeats)
        for trial in trials:
            want(trial.params, settings.repeats)
    named = max(settings.repeats, search.budget.named_seeds)
    for trial in trials:
        # The paper's orderings: the controls (R*16, I*16, family "other") keep one seed.
        if trial.user_attrs.get("enqueued") and trial.user_attrs.get("family") in PAPER_FAMILIES:
            want(trial.params, named)
    if settings.repeats > 1:
        for trial in top_trials(search, study):
            want(trial.params, settings.repeats)
    return list(wanted.values())


def run_repeats(search: Search, store: Store, study: optuna.Study) -> int:
    """Train each candidate of `repeat_plan` with seeds seed .. seed+K-1 (a seed already
    in the store is reused); returns how many runs were trained or reused."""
    from harness.folds import run_folds
    from harness.search.progress import format_trial_line
    from harness.trial import load_trial_dataset

    settings = search.settings
    plan = repeat_plan(search, study)
    if not plan:
        return 0
    dataset = load_trial_dataset(search.data)
    constraints = _constraints(settings)
    count = 0
    for params, seeds in plan:
        for seed in range(settings.seed, settings.seed + seeds):
            config = search.trial_config(params, seed=seed)
            outcome = run_folds(
                config,
                store,
                folds=settings.folds,
                study=search.study,
                dataset=dataset,
                reuse=True,
                constraints=constraints,
                measure_latency=settings.measure_latency,
                study_fields=search.study_fields(),
            )
            count += 1
            if settings.progress and not outcome.reused:
                import sys

                attrs = {"val_acc": outcome.val_acc, "test_acc": outcome.test_acc,
                         "flops": outcome.flops, "reason": outcome.reason}  # fmt: skip
                line = format_trial_line(None, outcome.arch, outcome.status, attrs)
                print(f"{line}  (seed {seed})", file=sys.stderr)
    return count
