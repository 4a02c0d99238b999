"""Run a search: prepare the study, run workers until the study has its trials,
queue more seeds of the candidates that need them, and rank everything from the store.

    settings = SearchSettings(space="rir_orderings", url="sqlite:///results/harness.db")
    result = run_search(settings)        # resumes the study if it exists

Every run is a trial of the one Optuna study, seed repeats included, so Optuna's
own tools (optuna-dashboard, `study.trials_dataframe()`) see all of them.
`--trials N` is the study's total of searched trials (repeats are not among
them), so rerunning a finished command does no new work and a stopped one
continues where it was. With several workers two may start the last trial
together, so a study can end up to workers - 1 trials over N.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.search.objective import CandidateFailed, Objective, RunError, best_text
from harness.search.plan import RunPlan
from harness.search.settings import SearchSettings
from harness.search.study import (
    REPEAT_ATTR,
    SEED_PARAM,
    StopAtTrials,
    counted_trials,
    enqueue,
    enqueue_named,
    fail_stale,
    open_study,
    stored_arch,
)
from harness.search.workers import run_workers

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness.data import Dataset
    from harness.search.progress import Progress
    from harness.store import Store

__all__ = ["SearchResult", "prepare", "repeat_plan", "run_repeats", "run_search", "run_worker"]

PAPER_FAMILIES = ("alternated", "RI", "IR")
# A candidate's own failure is recorded and the search goes on; a RunError's trial is
# queued again (harness.search.objective). Anything else stops the run.
CAUGHT = (CandidateFailed, RunError)


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
    # Weights settled at the end (harness.search.keep): uploaded, deleted, copied; and
    # `kept`, the study's trials whose weights are artifacts, and where they are.
    weights: dict[str, int] = field(default_factory=dict)
    artifacts: str = ""


def _constraints(settings: SearchSettings) -> Any:
    if not settings.constraints:
        return None
    from harness.trial import Constraints

    return Constraints(**settings.constraints)


def _objective(
    search: RunPlan, store: Store, dataset: Dataset, progress: Progress | None = None
) -> Objective:
    constraints = _constraints(search.settings)
    return Objective(search, store, dataset, constraints=constraints, progress=progress)


def prepare(search: RunPlan, store: Store, study: optuna.Study) -> None:
    """Retry trials whose worker's heartbeat went stale, enqueue the named architectures.

    Runs once, in the process that starts the workers (after `open_study` created or
    loaded the study), so that they never enqueue twice. Dead workers are Optuna's heartbeat's to
    find (`harness.store.liveness`); a retried trial is queued before the named
    architectures that the study still lacks."""
    fail_stale(study)
    if search.settings.strategy == "train":
        # With a strategy, the estimator's top K are the trials (harness.strategy).
        enqueue_named(study, search)
    store.ensure_study(search.study, data_spec=None, **search.study_fields())


def _grid_done(search: RunPlan, study: optuna.Study) -> bool:
    """Optuna's grid sampler stops the study once every point was tried: so does a rerun,
    unless a trial is queued (a retried one: Optuna counts its failed try as visited)."""
    if search.settings.sampler != "grid":
        return False
    import optuna

    from harness.search.samplers import grid_space

    if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        return False

    grid = optuna.samplers.GridSampler(grid_space(search.space, search.params))
    return grid.is_exhausted(study)


def run_worker(
    search: RunPlan,
    store: Store,
    study: optuna.Study,
    dataset: Dataset,
    *,
    progress: Progress | None = None,
) -> None:
    """Run trials in this process until the study has `n_trials` that count."""
    if counted_trials(study) >= search.n_trials or _grid_done(search, study):
        return  # optimize would start one more trial before any callback could stop it
    callbacks: list[Any] = [StopAtTrials(search.n_trials)]
    if progress is not None:
        callbacks.append(lambda study, _: progress.set_best(best_text(study)))
    objective = _objective(search, store, dataset, progress)
    study.optimize(objective, catch=CAUGHT, callbacks=callbacks)


def run_search(
    settings: SearchSettings,
    *,
    search: RunPlan | None = None,
    dataset: Dataset | None = None,
    before_trials: Callable[[RunPlan, Store, optuna.Study, Dataset], None] | None = None,
) -> SearchResult:
    """The whole `harness run`: prepare, search (in-process or with workers), repeats.
    The storage, the study and the dataset (`dataset`, or read here) are opened once.

    `before_trials` queues trials of its own once the study is ready: a ranking
    strategy's top K (`harness.strategy.ranked_search`, which sits above this package
    and the estimators it needs)."""
    from harness.search.keep import WeightsKeeper
    from harness.search.leaderboard import leaderboard, pareto_store_ids
    from harness.search.progress import Progress
    from harness.store import Store
    from harness.trial import load_trial_dataset

    started = time.perf_counter()
    search = search or RunPlan.resolve(settings)
    if settings.strategy != "train" and before_trials is None:
        raise ConfigError(
            f"--strategy {settings.strategy} ranks candidates before training: "
            "run it with harness.strategy.ranked_search"
        )
    if dataset is None:
        dataset = load_trial_dataset(search.data)
    # Our tables first: Optuna's storage cannot make the default results/ folder.
    with Store(settings.url).prepare() as store:
        study, on_stale = open_study(search, store, create=True)
        prepare(search, store, study)
        if before_trials is not None:
            before_trials(search, store, study, dataset)
        progress = Progress(
            total=search.n_trials,
            done=counted_trials(study),
            enabled=settings.progress,
            epochs=search.base.epochs,
        )
        progress.set_best(best_text(study))
        try:
            if settings.workers > 1:
                run_workers(search, study, progress)
            else:
                run_worker(search, store, study, dataset, progress=progress)
        finally:
            progress.close()
        repeated = run_repeats(search, store, study, dataset)
        pareto = pareto_store_ids(study)
        board = leaderboard(store, search, study)
        frame = store.trials_frame(study=search.study)
        keeper = WeightsKeeper(search, store)
        weights = keeper.settle(study, board)
        links = store.weights_links(frame["trial_id"])
        weights["kept"] = sum(link["removed_at"] is None for link in links.values())
        statuses = frame["status"].value_counts()
        return SearchResult(
            weights=weights,
            artifacts=keeper.location,
            statuses={str(k): int(v) for k, v in statuses.items()},
            study=search.study,
            url=store.url,
            n_trials=counted_trials(study),
            leaderboard=board,
            pareto=pareto,
            recovered=on_stale.recovered,
            repeated=repeated,
            seconds=time.perf_counter() - started,
        )


def top_trials(search: RunPlan, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best `top` distinct candidates (single objective) or the most accurate `top`
    of the Pareto front: the ones `--repeats` gives more seeds. Seed repeats are left out,
    so that the repeats a run added never change which candidates a rerun picks."""
    import optuna

    searched = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not t.user_attrs.get(REPEAT_ATTR)
    ]
    if len(study.directions) > 1:
        # Optuna's front of the searched trials alone: a study of them in memory, in order,
        # so that its trial i is searched[i].
        front = optuna.create_study(directions=study.directions)
        front.add_trials(searched)
        ranked = [searched[t.number] for t in front.best_trials]
        ranked.sort(key=lambda t: (-t.values[0], t.number))
    else:
        ranked = sorted(searched, key=lambda t: (-t.value, t.number))
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
    """Trials with equal keys train the same candidate (the seed aside). With a space, the
    architecture counts by its canonical form: two parameter sets may name one network
    (random keys, R*16 reached from both directions of a split)."""
    params = _without_seed(params)
    if space is None:
        return tuple(sorted((k, str(v)) for k, v in params.items()))
    arch = stored_arch(space, params)
    if arch is None:  # parameters of another space version: compare them as they are
        return _params_key(params)
    names = set(space.encoding.names())
    rest = tuple(sorted((k, str(v)) for k, v in params.items() if k not in names))
    return (arch, rest)


def _without_seed(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != SEED_PARAM}


def repeat_plan(search: RunPlan, study: optuna.Study) -> list[tuple[dict[str, Any], int]]:
    """(parameters without the seed, seeds in all) for every candidate that gets more
    than one seed.

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
        wanted[key] = (_without_seed(params), max(old, seeds))

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


def run_repeats(search: RunPlan, store: Store, study: optuna.Study, dataset: Dataset) -> int:
    """Queue each candidate of `repeat_plan` with seeds seed .. seed+K-1 (a seed the study
    has already is not queued again; one in the store is reused, not retrained) and train
    the queue here; returns how many runs the plan holds, the first seeds' included."""
    import optuna

    settings = search.settings
    plan = repeat_plan(search, study)
    for params, seeds in plan:
        for seed in range(settings.seed, settings.seed + seeds):
            enqueue(study, {**params, SEED_PARAM: seed}, {REPEAT_ATTR: True})
    objective = _objective(search, store, dataset)
    # One trial per call: with the queue empty, optimize would sample a new trial.
    while plan and study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        study.optimize(objective, n_trials=1, catch=CAUGHT)
    return sum(seeds for _, seeds in plan)
