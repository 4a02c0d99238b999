"""The Optuna side: storage in the results database, the study, enqueueing, recovery.

Optuna's tables live in the same database as ours (our tables are prefixed
`harness_`), so one URL names everything and `optuna-dashboard URL` can watch
a study live. Heartbeats are on: a trial whose worker stopped beating for
`grace_s` is failed by the next worker that starts a trial, recorded as
`interrupted` in our store, and retried with the same parameters (Optuna's
`RetryFailedTrialCallback`). A worker that died on this machine is noticed at
once from its process id, without waiting for the grace period.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import optuna

    from harness.search.settings import Search
    from harness.store import Store

__all__ = [
    "WORKER_ATTR",
    "counted_trials",
    "enqueue_named",
    "open_storage",
    "open_study",
    "recover_dead_trials",
    "this_worker",
]

WORKER_ATTR = "worker"  # user attr "host:pid:number" set when a trial starts
STATUS_ATTR = "harness_status"  # our status of a finished trial (failed trials count as done)
STORE_ID_ATTR = "store_trial_id"
MAX_RETRY = 2


def this_worker(number: int) -> str:
    # The trial number is part of the mark, because a retried trial copies the user
    # attributes of the dead one and must not look dead itself.
    return f"{socket.gethostname()}:{os.getpid()}:{number}"


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Several workers write one file: wait for the lock as our own engine does.
        return {"connect_args": {"timeout": 60}}
    if url.startswith(("postgresql", "mysql", "mariadb")):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 5}}
    return {}


def open_storage(
    url: str,
    *,
    heartbeat_s: int | None,
    grace_s: int | None,
    on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.storages.RDBStorage:
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    from harness.store import mask_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Heartbeats are "experimental" in Optuna since 2.9; we rely on them knowingly.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=_engine_kwargs(url),
                heartbeat_interval=heartbeat_s,
                grace_period=grace_s,
                heartbeat_stale_trial_callback=on_stale,
            )
        if url.startswith("sqlite"):
            _serialise_sqlite(storage.engine)
        return storage
    except (SQLAlchemyError, ImportError, ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreError(f"cannot open the Optuna storage at {mask_url(url)}: {first}") from None


def _retry_callback() -> Callable[[Any, Any], None]:
    """Optuna's retry of a trial failed by a stale heartbeat (renamed in Optuna 4.9)."""
    import optuna

    storages = optuna.storages
    cls = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if cls is not None:
            return cls(max_retry=MAX_RETRY)
        return storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)


def _serialise_sqlite(engine: Any) -> None:
    """Every Optuna transaction on SQLite takes the write lock up front (BEGIN IMMEDIATE).

    Optuna claims a queued trial with SELECT ... FOR UPDATE, which SQLite ignores:
    two workers could both move the same WAITING trial to RUNNING and train it
    twice (then one fails with "Cannot tell a COMPLETE trial"). Serialised
    transactions make the claim atomic, as on PostgreSQL. Same recipe as our own
    engine (harness.store.engine)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite's implicit BEGIN off
        dbapi_connection.execute("PRAGMA busy_timeout = 60000")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed


def stale_callback(search: Search, store: Store) -> Callable[[Any, Any], None]:
    """Failed-by-heartbeat trial: mark our row interrupted, then let Optuna retry it."""
    retry = _retry_callback()

    def on_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        mark_store_interrupted(
            store, search.study, trial.number, f"worker {trial.user_attrs.get(WORKER_ATTR)} died"
        )
        retry(study, trial)

    return on_stale


def mark_store_interrupted(store: Store, study: str, number: int, reason: str) -> None:
    frame = store.trials_frame(study=study, status="running")
    mine = frame[frame["optuna_trial_number"] == number]
    for trial_id in mine["trial_id"]:
        store.finish_trial(int(trial_id), status="interrupted", reason=reason)


def open_study(
    search: Search, storage: optuna.storages.BaseStorage, *, create: bool
) -> optuna.Study:
    """Create (first run) or load the study; ConfigError if its objectives differ."""
    import optuna

    from harness.search.samplers import directions, make_pruner, make_sampler

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


def enqueue_named(study: optuna.Study, search: Search) -> int:
    """Enqueue the space's named architectures that the study has not measured yet.

    A named ordering whose trial failed without a result (a worker killed by
    Ctrl-C, say) is enqueued again, so that a resumed study still measures it.
    """
    import optuna

    states = optuna.trial.TrialState
    alive = (states.COMPLETE, states.PRUNED, states.RUNNING, states.WAITING)
    # A queued trial keeps its parameters in a system attribute until it runs.
    have = [
        t.params or t.system_attrs.get("fixed_params", {})
        for t in study.get_trials(deepcopy=False)
        if t.state in alive
    ]
    added = 0
    for params in search.space.enqueue_params():
        if any(all(old.get(k) == v for k, v in params.items()) for old in have):
            continue
        study.enqueue_trial(params, user_attrs={"enqueued": True})
        added += 1
    return added


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards --trials: finished with a result, pruned, failed by the
    candidate itself, or running now. Trials failed by a dead worker are retried instead."""
    import optuna

    states = optuna.trial.TrialState
    done = (states.COMPLETE, states.PRUNED, states.RUNNING)
    return sum(
        trial.state in done
        or (trial.state == states.FAIL and trial.user_attrs.get(STATUS_ATTR) == "failed")
        for trial in study.get_trials(deepcopy=False)
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dead_trials(study: optuna.Study, search: Search, store: Store) -> int:
    """Fail and retry running trials whose worker process on this machine is gone.

    Optuna's heartbeat does the same for any machine after the grace period; this
    spares a rerun on the same machine that wait. Returns how many were recovered.
    """
    import optuna

    host = socket.gethostname()
    retry = _retry_callback()
    storage = study._storage
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        mark = str(trial.user_attrs.get(WORKER_ATTR, ""))
        worker_host, _, rest = mark.partition(":")
        pid, _, number = rest.partition(":")
        if worker_host != host or not pid.isdigit() or number != str(trial.number):
            continue
        if _pid_alive(int(pid)) and int(pid) != os.getpid():
            continue
        try:
            # What optuna.storages.fail_stale_trials does for a stale heartbeat.
            storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        mark_store_interrupted(store, search.study, trial.number, f"worker {mark} is gone")
        retry(study, storage.get_trial(trial._trial_id))
        recovered += 1
    return recovered
