"""Who decides that a worker died: Optuna's heartbeat for a search's trials,
host:pid for every other trial; and the worker entry point's import direction."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.store import Store
from harness.store.liveness import worker_gone

ROOT = Path(__file__).resolve().parents[1]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def start(store: Store, *, optuna_trial_number: int | None = None, study: str = "s") -> int:
    study_id = store.ensure_study(study)
    candidate = store.ensure_candidate(
        "R|I", kind="candidate", family="RI", params=1, flops=1,
        input_shape=[1, 8, 8], num_classes=2, skeleton=None,
    )  # fmt: skip
    return store.start_trial(
        study_id=study_id, candidate_id=candidate, protocol="p", hyperparameters={},
        config={"n": optuna_trial_number}, seed=0, data_spec="d", data_fingerprint="f",
        label_mode=None, device="cpu", environment={}, optuna_trial_number=optuna_trial_number,
    )  # fmt: skip


def dead_pid() -> int:
    probe = subprocess.Popen([sys.executable, "-c", "pass"])
    probe.wait()
    return probe.pid


def set_worker(store: Store, trial_id: int, worker: str) -> None:
    from sqlalchemy import update

    from harness.store.models import Trial

    with store.engine.begin() as connection:
        connection.execute(update(Trial).where(Trial.id == trial_id).values(worker=worker))


def test_worker_gone_only_for_a_dead_process_of_this_host():
    host = socket.gethostname()
    assert worker_gone(f"{host}:{dead_pid()}")
    assert not worker_gone(f"{host}:{os.getpid()}")
    assert not worker_gone(f"{host}:{os.getppid()}")
    assert not worker_gone(f"elsewhere-{host}:{dead_pid()}")
    assert not worker_gone(None) and not worker_gone("") and not worker_gone(f"{host}:x")


KILLED_TRAIN = textwrap.dedent(
    """
    import os, sys
    from harness.store import Store
    store = Store(sys.argv[1])
    study = store.ensure_study("s")
    cand = store.ensure_candidate("R|I", kind="candidate", family="RI", params=1, flops=1,
                                  input_shape=[1, 8, 8], num_classes=2, skeleton=None)
    store.start_trial(study_id=study, candidate_id=cand, protocol="p", hyperparameters={},
                      config={"killed": True}, seed=0, data_spec="d", data_fingerprint="f",
                      label_mode=None, device="cpu", environment={})
    os._exit(9)  # as SIGKILL would: no finish_trial, no cleanup
    """
)


def test_next_trial_on_this_host_interrupts_a_killed_train(tmp_path):
    url = sqlite_url(tmp_path / "r.db")
    subprocess.run([sys.executable, "-c", KILLED_TRAIN, url], check=False)
    with Store(url) as store:
        killed = int(store.trials_frame()["trial_id"].iloc[0])
        assert store.trial(killed)["status"] == "running"
        alive = start(store)  # this process: alive
        elsewhere = start(store)
        set_worker(store, elsewhere, f"elsewhere-{socket.gethostname()}:{dead_pid()}")
        searched = start(store, optuna_trial_number=0)  # the heartbeat's, not ours
        set_worker(store, searched, f"{socket.gethostname()}:{dead_pid()}")

        row = store.trial(killed)
        assert row["status"] == "interrupted" and "is gone" in row["reason"]
        assert row["worker"] in row["reason"] and row["finished_at"] is not None
        assert store.interrupt_dead_trials() == 0  # the next start already did it
        statuses = {t: store.trial(t)["status"] for t in (alive, elsewhere, searched)}
        assert set(statuses.values()) == {"running"}

        set_worker(store, alive, f"{socket.gethostname()}:{dead_pid()}")
        assert store.interrupt_dead_trials() == 1
        assert store.trial(alive)["status"] == "interrupted"
        assert store.trial(searched)["status"] == "running"


def test_interrupt_optuna_trial_marks_only_that_trial_of_that_study(tmp_path):
    with Store(sqlite_url(tmp_path / "r.db")) as store:
        target = start(store, optuna_trial_number=3)
        other_number = start(store, optuna_trial_number=4)
        other_study = start(store, optuna_trial_number=3, study="other")
        assert store.interrupt_optuna_trial("s", 3, "worker h:1 is gone") == 1
        assert store.interrupt_optuna_trial("s", 3, "again") == 0  # no longer running
        assert store.trial(target)["reason"] == "worker h:1 is gone"
        assert store.trial(other_number)["status"] == "running"
        assert store.trial(other_study)["status"] == "running"


def test_stale_heartbeat_interrupts_our_row_and_retries_the_trial(tmp_path):
    optuna = pytest.importorskip("optuna")
    from harness.search.study import WORKER_ATTR, StaleTrials, fail_stale, storage_at

    url = sqlite_url(tmp_path / "r.db")
    store = Store(url)
    search = SimpleNamespace(study="t", settings=SimpleNamespace(grace_s=1))
    on_stale = StaleTrials(search, store)  # type: ignore[arg-type]
    storage = storage_at(url, heartbeat_s=1, grace_s=1, on_stale=on_stale)
    study = optuna.create_study(storage=storage, study_name="t")
    with pytest.warns(UserWarning, match="Heartbeat"):  # ask() is not optimize(): fine here
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr(WORKER_ATTR, f"elsewhere:123:{trial.number}")
    storage.record_heartbeat(trial._trial_id)  # one beat, then the worker is gone
    ours = start(store, optuna_trial_number=trial.number, study="t")

    fail_stale(study)  # within the grace period: nothing happens
    assert store.trial(ours)["status"] == "running" and on_stale.recovered == 0
    # SQLite's clock (CURRENT_TIMESTAMP, Optuna's) counts whole seconds: up to 2 s.
    deadline = time.monotonic() + 10
    while on_stale.recovered == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
        fail_stale(study)

    assert on_stale.recovered == 1
    row = store.trial(ours)
    assert row["status"] == "interrupted" and "worker elsewhere:123 is gone" in row["reason"]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    retried = study.get_trials()[1]
    assert retried.system_attrs["failed_trial"] == trial.number
    assert retried.params == {"x": trial.params["x"]}
    store.close()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_runner_imports_the_workers_and_nothing_imports_back():
    search = ROOT / "harness" / "search"
    assert "harness.search.workers" in _imports(search / "runner.py")
    assert _imports(search / "workers.py").isdisjoint(
        {"harness.search.runner", "harness.search.worker_main", "harness.search"}
    )
    importers = {p.name for p in search.glob("*.py") if "harness.search.runner" in _imports(p)}
    assert importers <= {"__init__.py", "worker_main.py"}
    from harness.search import workers

    assert workers.WORKER_MODULE == "harness.search.worker_main"


def test_no_private_optuna_attribute_in_search_code():
    private = {"_storage", "_trial_id", "_study_id"}
    for path in (ROOT / "harness" / "search").glob("*.py"):
        names = {
            node.attr
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute)
        }
        assert not names & private, (path.name, names & private)
