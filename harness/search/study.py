"""The Optuna side: storage in the results database, the study, enqueueing, recovery.

Optuna's tables live in the same database as ours (our tables are prefixed
`harness_`), so one URL names everything and `optuna-dashboard URL` can watch
a study live. Heartbeats are on, and they alone decide that a worker died
(`harness.store.liveness`): a trial whose worker stopped beating for `grace_s`
is failed by `optuna.storages.fail_stale_trials` (which Optuna runs before
each trial, and `harness run` as it prepares), our row of it is marked
`interrupted` by `StaleTrials`, and it is retried with the same parameters
(Optuna's `RetryFailedTrialCallback`). A worker killed on this machine is
noticed after the grace period, like one anywhere else. A trial that an error of
the run failed (out of memory while measuring, a driver, a bug) is retried the
same way, at once (`retry_trial`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, GrammarError, StoreError, first_line

if TYPE_CHECKING:
    import optuna

    from harness.search.settings import Search
    from harness.search.space import SearchSpace
    from harness.store import Store

__all__ = [
    "WORKER_ATTR",
    "counted_trials",
    "enqueue_named",
    "open_storage",
    "StaleTrials",
    "fail_stale",
    "open_study",
    "retry_trial",
    "stored_arch",
    "this_worker",
]

WORKER_ATTR = "worker"  # user attr "host:pid:number" set when a trial starts
STATUS_ATTR = "harness_status"  # our status of a finished trial (failed trials count as done)
STORE_ID_ATTR = "store_trial_id"
MAX_RETRY = 2
# Optuna's engine waits longer for the SQLite lock than ours: all its transactions take it.
OPTUNA_BUSY_TIMEOUT_S = 60.0


def this_worker(number: int) -> str:
    """`host:pid:number`, shown when the trial's worker is found dead. The trial number
    tells the mark of a retried trial (which copies the dead one's attributes) apart."""
    from harness.store.liveness import this_worker as host_pid

    return f"{host_pid()}:{number}"


def open_storage(
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


def _retry_callback() -> Callable[[Any, Any], None]:
    """Optuna's retry of a failed trial: a copy with its parameters, queued, at most
    MAX_RETRY times (a stale heartbeat's callback, renamed in Optuna 4.9)."""
    import optuna

    storages = optuna.storages
    cls = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if cls is not None:
            return cls(max_retry=MAX_RETRY)
        return storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)


class StaleTrials:
    """Optuna's heartbeat-stale callback: mark our rows of the trial `interrupted`,
    then let Optuna retry it. `recovered` counts the trials it handled."""

    def __init__(self, search: Search, store: Store) -> None:
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


def retry_trial(study: optuna.Study, number: int) -> bool:
    """Queue trial `number` again with its parameters, as a dead worker's trial is;
    False when it has been retried MAX_RETRY times already (nothing queued)."""
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    # Optuna's callback keeps the history in the copies and stops after MAX_RETRY.
    if len(trial.system_attrs.get("retry_history", [])) >= MAX_RETRY:
        return False
    _retry_callback()(study, trial)
    return True


def fail_stale(study: optuna.Study) -> None:
    """Fail the study's trials whose heartbeat is older than the grace period, running
    the storage's stale callback for each (what Optuna does before every trial)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def study_algorithms(
    search: Search,
) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    """The sampler and pruner of `search`; ConfigError for a pair its settings cannot have
    (nsga2 for one objective, a grid too large), so `harness run` calls it before any work."""
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
    pruner = make_pruner(settings.pruner, epochs=search.base.epochs, objectives=settings.objectives)
    return sampler, pruner


def open_study(
    search: Search, storage: optuna.storages.BaseStorage, *, create: bool
) -> optuna.Study:
    """Create (first run) or load the study; ConfigError if its objectives differ."""
    import optuna

    from harness.search.samplers import directions

    settings = search.settings
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
    return study


def stored_arch(space: SearchSpace, params: Mapping[str, Any]) -> str | None:
    """The architecture a stored trial's parameters name in `space`; None when they are
    parameters of another version of the space: a position, split or key it lacks
    (KeyError), a value it cannot read (ValueError), no blocks at all (GrammarError)."""
    try:
        return space.arch_from_params(params)
    except (KeyError, ValueError, GrammarError):
        return None


def known_params(study: optuna.Study) -> list[dict[str, Any]]:
    """The parameters of every trial done, running or queued (not failed): what enqueueing
    again would repeat."""
    import optuna

    states = optuna.trial.TrialState
    alive = (states.COMPLETE, states.PRUNED, states.RUNNING, states.WAITING)
    # A queued trial keeps its parameters in a system attribute until it runs.
    return [
        t.params or t.system_attrs.get("fixed_params", {})
        for t in study.get_trials(deepcopy=False)
        if t.state in alive
    ]


def enqueue_named(study: optuna.Study, search: Search) -> int:
    """Enqueue the space's named architectures that the study has not measured yet.

    A named ordering whose trial failed without a result (a worker killed by
    Ctrl-C, say) is enqueued again, so that a resumed study still measures it.
    """
    have = known_params(study)
    added = 0
    for params in search.space.enqueue_params():
        if any(all(old.get(k) == v for k, v in params.items()) for old in have):
            continue
        study.enqueue_trial(params, user_attrs={"enqueued": True})
        added += 1
    return added


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards --trials: finished with a result, pruned, failed by the
    candidate itself, or running now. Trials failed by a dead worker or by an error of the
    run (harness.search.objective) are retried instead."""
    import optuna

    states = optuna.trial.TrialState
    done = (states.COMPLETE, states.PRUNED, states.RUNNING)
    return sum(
        trial.state in done
        or (trial.state == states.FAIL and trial.user_attrs.get(STATUS_ATTR) == "failed")
        for trial in study.get_trials(deepcopy=False)
    )
