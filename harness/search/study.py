"""The Optuna side: storage in the results database, the study, enqueueing, recovery.

Optuna's tables live in the same database as ours (our tables are prefixed
`harness_`), so one URL names everything and `optuna-dashboard URL` can watch
a study live. Every run of a search is an Optuna trial, seed repeats included:
the seed is a parameter (`SEED_PARAM`), pinned to the run's `--seed` for the
sampler's trials and set by the queue for a repeat, so that Optuna's
`enqueue_trial(skip_if_exists=True)` tells two seeds of one candidate apart and
finds a run that is already there.

Heartbeats are on, and they alone decide that a worker died
(`harness.store.liveness`): a trial whose worker stopped beating for `grace_s`
is failed by `optuna.storages.fail_stale_trials` (which Optuna runs before
each trial, and `harness run` as it prepares), our row of it is marked
`interrupted` by `StaleTrials`, and it is retried with the same parameters
(Optuna's `RetryHeartbeatStaleTrialCallback`). A worker killed on this machine is
noticed after the grace period, like one anywhere else. A trial that an error of
the run failed (out of memory while measuring, a driver, a bug) or that Ctrl-C
stopped is retried the same way, at once (`retry_trial`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.config import TRAIN_LIMITS
from harness.errors import ConfigError, GrammarError, StoreError, first_line

if TYPE_CHECKING:
    import optuna

    from harness.search.plan import RunPlan
    from harness.search.space import SearchSpace
    from harness.store import Store

__all__ = [
    "REPEAT_ATTR",
    "SEED_PARAM",
    "WORKER_ATTR",
    "StaleTrials",
    "StopAtTrials",
    "counted_trials",
    "enqueue",
    "enqueue_named",
    "fail_stale",
    "open_study",
    "retry_trial",
    "storage_at",
    "stored_arch",
    "this_worker",
]

WORKER_ATTR = "worker"  # user attr "host:pid:number" set when a trial starts
STATUS_ATTR = "harness_status"  # our status of a finished trial (failed trials count as done)
STORE_ID_ATTR = "store_trial_id"
REPEAT_ATTR = "repeat"  # user attr of a queued seed repeat: not one of the study's --trials
SEED_PARAM = "seed"
SEED_RANGE = (int(TRAIN_LIMITS["seed"].low), int(TRAIN_LIMITS["seed"].high))
MAX_RETRY = 2
# Optuna's engine waits longer for the SQLite lock than ours: all its transactions take it.
OPTUNA_BUSY_TIMEOUT_S = 60.0


def this_worker(number: int) -> str:
    """`host:pid:number`, shown when the trial's worker is found dead. The trial number
    tells the mark of a retried trial (which copies the dead one's attributes) apart."""
    from harness.store.liveness import this_worker as host_pid

    return f"{host_pid()}:{number}"


def storage_at(
    url: str,
    *,
    heartbeat_s: int | None,
    grace_s: int | None,
    on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.storages.RDBStorage:
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    from harness.store.engine import engine_options, mask_url, setup_sqlite

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Heartbeats are "experimental" in Optuna since 2.9; we rely on them knowingly.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_options(url, busy_timeout_s=OPTUNA_BUSY_TIMEOUT_S),
                heartbeat_interval=heartbeat_s,
                grace_period=grace_s,
                heartbeat_stale_trial_callback=on_stale,
            )
        if url.startswith("sqlite"):
            # Optuna claims a queued trial with SELECT ... FOR UPDATE, which SQLite
            # ignores: two workers could both move the same WAITING trial to RUNNING
            # and train it twice. A write lock at every BEGIN makes the claim atomic,
            # as on PostgreSQL. Optuna's own tables: no foreign-key or journal changes.
            setup_sqlite(
                storage.engine,
                every_transaction=True,
                foreign_keys=False,
                wal=False,
                busy_timeout_s=OPTUNA_BUSY_TIMEOUT_S,
            )
        return storage
    except (SQLAlchemyError, ImportError, ValueError, RuntimeError) as error:
        raise StoreError(
            f"cannot open the Optuna storage at {mask_url(url)}: {first_line(error)}"
        ) from None


def _retry_callback(max_retry: int | None = MAX_RETRY) -> Callable[[Any, Any], None]:
    """Optuna's retry of a failed trial: a copy with its parameters and user attributes,
    queued, at most `max_retry` times along one chain of copies."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


class StaleTrials:
    """Optuna's heartbeat-stale callback: mark our rows of the trial `interrupted`,
    then let Optuna retry it. `recovered` counts the trials it handled."""

    def __init__(self, search: RunPlan, store: Store) -> None:
        self.search = search
        self.store = store
        self.retry = _retry_callback()
        self.recovered = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        mark = str(trial.user_attrs.get(WORKER_ATTR) or "?")
        worker = mark.rpartition(":")[0] or mark  # host:pid
        reason = f"worker {worker} is gone (no heartbeat for {self.search.settings.grace_s} s)"
        self.store.interrupt_optuna_trial(self.search.study, trial.number, reason)
        self.retry(study, trial)
        self.recovered += 1


def retry_trial(study: optuna.Study, number: int, *, capped: bool = True) -> bool:
    """Queue trial `number` again with its parameters, as a dead worker's trial is;
    False when `capped` and it has been retried MAX_RETRY times already (nothing queued).
    Uncapped for Ctrl-C: a stopped trial is always measured on the next run."""
    import optuna

    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        history = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(trial)
    if capped and len(history) >= MAX_RETRY:
        return False
    _retry_callback(None)(study, trial)
    return True


def fail_stale(study: optuna.Study) -> None:
    """Fail the study's trials whose heartbeat is older than the grace period, running
    the storage's stale callback for each (what Optuna does before every trial)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def study_algorithms(
    search: RunPlan,
) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    """The sampler and pruner of `search`; ConfigError for a pair its settings cannot have
    (nsga2 for one objective, a grid too large), so `harness run` calls it before any work."""
    import optuna

    from harness.search.samplers import make_pruner, make_sampler

    settings = search.settings
    sampler = make_sampler(
        settings.sampler,
        objectives=settings.objectives,
        space=search.space,
        params=search.params,
        # Each worker its own stream, or two TPE workers would propose the same trials.
        seed=settings.seed + 1000 * settings.worker_index,
        n_trials=search.n_trials,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # The sampler's trials train with --seed; a queued repeat's own seed wins over
        # this (Optuna's fixed parameters), and no sampler ever models the seed.
        sampler = optuna.samplers.PartialFixedSampler({SEED_PARAM: settings.seed}, sampler)
    pruner = make_pruner(settings.pruner, epochs=search.base.epochs, objectives=settings.objectives)
    return sampler, pruner


def open_study(search: RunPlan, store: Store, *, create: bool) -> tuple[optuna.Study, StaleTrials]:
    """Open the Optuna storage and create (first run) or load the study, once per process;
    ConfigError if its objectives differ. The StaleTrials counts the trials it recovers."""
    import optuna

    from harness.search.samplers import directions

    settings = search.settings
    on_stale = StaleTrials(search, store)
    storage = storage_at(
        settings.url, heartbeat_s=settings.heartbeat_s, grace_s=settings.grace_s, on_stale=on_stale
    )
    sampler, pruner = study_algorithms(search)
    wanted = directions(settings.objectives)
    try:
        if create:
            study = optuna.create_study(
                storage=storage,
                study_name=search.study,
                sampler=sampler,
                pruner=pruner,
                directions=wanted,
                load_if_exists=True,
            )
        else:
            study = optuna.load_study(
                study_name=search.study, storage=storage, sampler=sampler, pruner=pruner
            )
    except KeyError:
        raise StoreError(f"no study {search.study!r} in the Optuna storage") from None
    have = [d.name.lower() for d in study.directions]
    if have != wanted:
        before = study.user_attrs.get("objectives", have)
        raise ConfigError(
            f"study {search.study!r} was created with objectives {','.join(before)}, "
            f"not {','.join(settings.objectives)}; pass --study NEW_NAME for a new study"
        )
    if create and "space" not in study.user_attrs:
        study.set_user_attr("space", search.space.name)
        study.set_user_attr("budget", search.budget.name)
        study.set_user_attr("data", search.data)
        study.set_user_attr("objectives", list(settings.objectives))
    return study, on_stale


def stored_arch(space: SearchSpace, params: Mapping[str, Any]) -> str | None:
    """The architecture a stored trial's parameters name in `space`; None when they are
    parameters of another version of the space: a position, split or key it lacks
    (KeyError), a value it cannot read (ValueError), no blocks at all (GrammarError)."""
    try:
        return space.arch_from_params(params)
    except (KeyError, ValueError, GrammarError):
        return None


def enqueue(study: optuna.Study, params: dict[str, Any], user_attrs: dict[str, Any]) -> bool:
    """Queue a trial with these parameters unless the study has one already, in any state
    (Optuna's skip_if_exists); True when it queued one."""
    before = len(study.get_trials(deepcopy=False))
    study.enqueue_trial(params, user_attrs=user_attrs, skip_if_exists=True)
    return len(study.get_trials(deepcopy=False)) > before


def enqueue_named(study: optuna.Study, search: RunPlan) -> int:
    """Enqueue the space's named architectures that the study lacks, as many as the study's
    `--trials` leave room for (one left out is queued when a rerun raises --trials);
    returns how many were queued. They train with the run's --seed."""
    import optuna

    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    room = search.n_trials - counted_trials(study)
    room -= sum(not t.user_attrs.get(REPEAT_ATTR) for t in waiting)
    added = 0
    for params in search.space.enqueue_params():
        if added >= room:
            break
        added += enqueue(study, {**params, SEED_PARAM: search.settings.seed}, {"enqueued": True})
    return added


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards --trials: finished with a result, pruned, failed by the
    candidate itself, or running now; never a seed repeat. Trials failed by a dead worker,
    by an error of the run (harness.search.objective) or by Ctrl-C are retried instead."""
    import optuna

    states = optuna.trial.TrialState
    done = (states.COMPLETE, states.PRUNED, states.RUNNING)
    return sum(
        not trial.user_attrs.get(REPEAT_ATTR)
        and (
            trial.state in done
            or (trial.state == states.FAIL and trial.user_attrs.get(STATUS_ATTR) == "failed")
        )
        for trial in study.get_trials(deepcopy=False)
    )


class StopAtTrials:
    """Stop `study.optimize` once the study has `n` trials that count.

    Not Optuna's MaxTrialsCallback: it counts trials by state, and here a FAIL counts
    when the candidate failed but not when its worker died or the run erred, and a
    seed repeat never counts, whatever its state."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if counted_trials(study) >= self.n:
            study.stop()
