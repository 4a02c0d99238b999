"""The results store: round trips on every backend, URL resolution, two writing
processes on one SQLite file, schema migration, bad URLs, and the `trials` and
`studies` commands."""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from harness.cli import main
from harness.errors import StoreError
from harness.store import SCHEMA_VERSION, Store, config_hash, migrations, resolve_db_url
from harness.store.frames import EPOCH_FRAME_COLUMNS, STUDY_FRAME_COLUMNS, TRIAL_FRAME_COLUMNS

# --- helpers -----------------------------------------------------------------------------


def sqlite_url(path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request, tmp_path):
    """A fresh, empty database URL on every backend we support."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "results.db")
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def store(backend_url):
    with Store(backend_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path):
    with Store(sqlite_url(tmp_path / "r.db")) as opened:
        yield opened


def add_latency(store: Store, candidate_id: int, **values) -> None:
    """A latency row; `values` override the defaults (device, batch, median_ms, ...)."""
    row = dict(device="cpu", batch=1, threads=2, median_ms=3.0, p90_ms=3.5, min_ms=2.9)
    row.update(max_ms=4.0, repeats=20)
    store.record_latency(candidate_id, **{**row, **values})


# --- one Store method (or concern) per test, on every backend ------------------------------


def test_ensure_study_returns_the_same_study_and_keeps_its_fields(store):
    study_id = store.ensure_study("demo", space="rir_orderings", data_spec="synthetic")
    # Asked again with other fields: the same study, the missing fields filled in.
    assert store.ensure_study("demo", sampler="tpe", objectives="accuracy,flops") == study_id
    assert store.ensure_study("other") != study_id
    studies = store.studies_frame()
    assert list(studies.columns) == list(STUDY_FRAME_COLUMNS)
    row = studies.set_index("study").loc["demo"]
    assert (row["space"], row["sampler"], row["objectives"]) == (
        "rir_orderings",
        "tpe",
        ["accuracy", "flops"],
    )


def test_ensure_candidate_is_one_row_per_arch_and_skeleton(store, record_trial):
    def ensure(arch="RRR|IIII", skeleton=None, **values):
        fields = dict(kind="candidate", family="RI", params=None, flops=None)
        fields.update(input_shape=(1, 48, 48), num_classes=7)
        return store.ensure_candidate(arch, **{**fields, **values}, skeleton=skeleton)

    first = ensure(skeleton={"widths": (64, 128), "stem": "small"})
    # Same arch and skeleton (key order, tuple or list aside): the same candidate, and the
    # numbers it lacked filled in.
    same = ensure(skeleton={"stem": "small", "widths": [64, 128]}, params=1000, flops=2_000_000)
    assert same == first
    other_skeleton = ensure(skeleton={"widths": [32]}, input_shape=None, num_classes=None)
    baseline = ensure("timm:resnet50", kind="baseline", family="baseline", params=23_000_000)
    assert len({first, other_skeleton, baseline}) == 3

    trial = store.trial(record_trial(store, candidate_id=first).trial_id)
    assert (trial["arch"], trial["family"], trial["params"], trial["flops"]) == (
        "RRR|IIII",
        "RI",
        1000,
        2_000_000,
    )


def test_start_trial_records_a_running_trial(store, record_trial):
    np = pytest.importorskip("numpy")
    config = {"protocol": "paper", "lr": 1e-4, "nested": {"b": 1, "a": [1, 2]}}
    trial_id = record_trial(
        store,
        hyperparameters={"lr": np.float32(1e-4), "batch": np.int64(64)},
        config=config,
        optuna_trial_number=7,
        epochs=0,
        status=None,
    ).trial_id
    running = store.trial(trial_id)
    assert running["status"] == "running" and running["finished_at"] is None
    # The hash ignores key order, at every depth.
    assert (
        running["config_hash"]
        == config_hash(config)
        == config_hash({"nested": {"a": [1, 2], "b": 1}, "lr": 1e-4, "protocol": "paper"})
    )
    assert running["config"] == config
    assert running["worker"].endswith(f":{os.getpid()}")
    # numpy scalars are stored as plain numbers.
    assert running["hyperparameters"] == {"lr": pytest.approx(1e-4), "batch": 64}
    assert type(running["hyperparameters"]["batch"]) is int
    assert running["optuna_trial_number"] == 7
    assert (running["study"], running["seed"], running["data_fingerprint"]) == ("demo", 1, "fp0")


def test_record_epoch_replaces_an_epoch_and_stores_nan_as_null(store, record_trial):
    np = pytest.importorskip("numpy")
    trial_id = record_trial(store, epochs=0, status=None).trial_id
    for epoch in range(3):
        store.record_epoch(
            trial_id,
            epoch=epoch,
            train_loss=1.0,
            train_acc=0.5,
            val_loss=float("nan"),
            val_acc=0.4 + epoch / 10,
            lr=1e-4,
            seconds=1.5,
            images_per_s=np.float64(900.0),
        )
    store.record_epoch(
        trial_id,
        epoch=2,
        train_loss=0.5,
        train_acc=0.6,
        val_loss=0.7,
        val_acc=0.65,
        lr=1e-5,
        seconds=1.5,
        images_per_s=950.0,
    )
    epochs = store.epochs(trial_id)
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert epochs[0]["val_loss"] is None and epochs[1]["val_acc"] == pytest.approx(0.5)
    assert epochs[0]["images_per_s"] == pytest.approx(900.0)
    assert (epochs[2]["val_acc"], epochs[2]["lr"]) == (pytest.approx(0.65), pytest.approx(1e-5))


def test_finish_trial_stores_the_results(store, record_trial):
    np = pytest.importorskip("numpy")
    trial_id = record_trial(
        store,
        val_acc=0.65,
        val_loss=float("inf"),
        test_acc=0.6,
        test_loss=0.8,
        per_class_acc=np.array([0.5, 0.7], dtype=np.float32),
        confusion=np.array([[5, 1], [2, 7]]),
        class_names=("a", "b"),
        train_seconds=4.5,
        eval_seconds=0.5,
        images_per_s=940.0,
    ).trial_id
    done = store.trial(trial_id)
    assert done["status"] == "complete" and done["finished_at"] is not None
    assert done["best_epoch"] == 2
    assert (done["val_acc"], done["test_acc"]) == (pytest.approx(0.65), pytest.approx(0.6))
    assert done["val_loss"] is None and done["test_loss"] == pytest.approx(0.8)  # inf: NULL
    assert done["per_class_acc"] == pytest.approx([0.5, 0.7])
    assert done["confusion"] == [[5, 1], [2, 7]]
    assert done["class_names"] == ["a", "b"]
    assert (done["train_seconds"], done["eval_seconds"]) == (4.5, 0.5)


def test_find_complete_trial_matches_arch_config_data_and_seed(store, record_trial):
    config = {"protocol": "paper", "lr": 1e-4}
    trial_id = record_trial(store, config=config, seed=3, data_fingerprint="fp").trial_id
    record_trial(store, config=config, seed=5, data_fingerprint="fp", status="failed")
    key = dict(arch="RRR|IIII", config_hash=config_hash(config), data_fingerprint="fp")
    found = store.find_complete_trial(**key, seed=3)
    assert found is not None and found["id"] == trial_id
    assert store.find_complete_trial(**key, seed=4) is None
    assert store.find_complete_trial(**key, seed=5) is None  # failed: not reused
    assert store.find_complete_trial(**{**key, "arch": "IIII|RRR"}, seed=3) is None
    assert store.find_complete_trial(**{**key, "data_fingerprint": "other"}, seed=3) is None
    assert store.find_complete_trial(**{**key, "config_hash": config_hash({})}, seed=3) is None


def test_record_latency_and_latencies_frame(store, record_trial):
    _, candidate_id, trial_id = record_trial(store)
    add_latency(store, candidate_id, trial_id=trial_id)
    add_latency(store, candidate_id, batch=64, median_ms=40.0)
    latencies = store.latencies_frame()
    assert list(latencies["batch"]) == [1, 64] and set(latencies["arch"]) == {"RRR|IIII"}
    assert list(latencies["median_ms"]) == [3.0, 40.0]


def test_unknown_trial_and_unknown_status_are_refused(store, record_trial):
    trial_id = record_trial(store, status=None).trial_id
    with pytest.raises(StoreError, match="no trial 999"):
        store.trial(999)
    with pytest.raises(StoreError, match="no trial 999"):
        store.finish_trial(999, status="failed")
    with pytest.raises(ValueError, match="status"):
        store.finish_trial(trial_id, status="done")
    assert store.trial(trial_id)["status"] == "running"


# --- frames --------------------------------------------------------------------------------


def test_trials_frame_columns_and_values(sqlite_store, record_trial):
    store = sqlite_store
    _, cand_a, first = record_trial(store, arch="RRR|IIII", val_acc=0.5, test_acc=0.45)
    _, _, second = record_trial(
        store, arch="IIII|RRR", family="IR", val_acc=0.7, test_acc=0.6, epochs=2
    )
    _, _, failed = record_trial(
        store,
        study="other",
        arch="(IR)",
        family="alternated",
        status="failed",
        val_acc=None,
        test_acc=None,
        epochs=1,
    )
    add_latency(store, cand_a, median_ms=5.0)
    add_latency(store, cand_a, device="cuda:0", threads=None, median_ms=0.8)
    add_latency(store, cand_a, batch=64, median_ms=0.1)

    frame = store.trials_frame()
    assert list(frame.columns) == list(TRIAL_FRAME_COLUMNS)
    assert list(frame["trial_id"]) == [first, second, failed]
    by_id = frame.set_index("trial_id")
    assert by_id.loc[first, "arch"] == "RRR|IIII" and by_id.loc[first, "family"] == "RI"
    assert by_id.loc[second, "val_acc"] == pytest.approx(0.7)
    assert by_id.loc[second, "test_acc"] == pytest.approx(0.6)
    assert list(frame["epochs"]) == [3, 2, 1]
    assert by_id.loc[first, "params"] == 1_234_567 and by_id.loc[first, "flops"] == 456_000_000
    # Fastest batch-1 latency of the candidate, with where it was measured.
    assert by_id.loc[first, "latency_ms"] == pytest.approx(0.8)
    assert by_id.loc[first, "latency_device"] == "cuda:0"
    assert math.isnan(by_id.loc[second, "latency_ms"])
    assert by_id.loc[failed, "status"] == "failed" and math.isnan(by_id.loc[failed, "val_acc"])
    assert by_id.loc[first, "hyperparameters"] == {"lr": 1e-4, "batch": 64}
    assert str(frame["started_at"].dtype).startswith("datetime64")

    assert list(store.trials_frame(study="other")["trial_id"]) == [failed]
    assert list(store.trials_frame(status="complete")["trial_id"]) == [first, second]
    nothing = store.trials_frame(study="nope")
    assert nothing.empty and list(nothing.columns) == list(TRIAL_FRAME_COLUMNS)

    epochs = store.epochs_frame()
    assert list(epochs.columns) == list(EPOCH_FRAME_COLUMNS) and len(epochs) == 6
    assert list(store.epochs_frame([second])["epoch"]) == [0, 1]
    assert store.epochs_frame([]).empty

    studies = store.studies_frame().set_index("study")
    assert studies.loc["demo", "trials"] == 2 and studies.loc["demo", "complete"] == 2
    assert studies.loc["demo", "best_val_acc"] == pytest.approx(0.7)
    # The best-val trial's test accuracy, and its arch.
    assert studies.loc["demo", "best_test_acc"] == pytest.approx(0.6)
    assert studies.loc["demo", "best_arch"] == "IIII|RRR"
    assert studies.loc["other", "failed"] == 1 and pd.isna(studies.loc["other", "best_val_acc"])


# --- URL resolution ----------------------------------------------------------------------


def test_default_url_creates_results_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_DB", raising=False)
    assert resolve_db_url(None) == "sqlite:///results/harness.db"
    with Store() as store:
        store.ensure_study("x")
        assert store.url == "sqlite:///results/harness.db"
    assert (tmp_path / "results" / "harness.db").is_file()


def test_env_var_and_flag_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env_url, flag_url = sqlite_url(tmp_path / "env.db"), sqlite_url(tmp_path / "flag.db")
    monkeypatch.setenv("HARNESS_DB", env_url)
    assert resolve_db_url(None) == env_url
    assert resolve_db_url(flag_url) == flag_url
    with Store() as store:
        store.ensure_study("from-env")
    with Store(flag_url) as store:
        store.ensure_study("from-flag")
    assert (tmp_path / "env.db").is_file() and (tmp_path / "flag.db").is_file()
    assert not (tmp_path / "results").exists()
    assert list(Store(env_url).studies_frame()["study"]) == ["from-env"]
    assert list(Store(flag_url).studies_frame()["study"]) == ["from-flag"]


# --- two processes, one SQLite file --------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from harness.store import Store

    url, tag, go = sys.argv[1:4]
    while not os.path.exists(go):
        time.sleep(0.002)
    store = Store(url)
    study = store.ensure_study("race", space="rir_orderings")
    for i in range(50):
        # Candidates are shared between the writers: both race to create them.
        cand = store.ensure_candidate(f"R|I|{'R' * (i % 5)}", kind="candidate", family="other",
                                      params=i, flops=i, input_shape=[1, 8, 8], num_classes=2, skeleton=None)
        trial = store.start_trial(study_id=study, candidate_id=cand, protocol="p", hyperparameters={"i": i},
                                  config={"writer": tag, "i": i}, seed=i, data_spec="s", data_fingerprint="f",
                                  label_mode=None, device="cpu", environment={})
        for epoch in range(4):
            store.record_epoch(trial, epoch=epoch, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=0.5,
                               lr=0.1, seconds=0.01, images_per_s=1.0)
        store.finish_trial(trial, status="complete", val_acc=i / 100, test_acc=i / 100)
    print("ok", tag)
    """
)


def test_two_processes_write_one_database(backend_url, tmp_path):
    """Two processes start at once on a new database (both create the tables,
    both create the same candidates) and write 50 trials of 4 epochs each."""
    url = backend_url
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, tag, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for tag in ("a", "b")
    ]
    time.sleep(0.3)  # both interpreters are up and waiting
    go.touch()
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert out.startswith("ok")

    with Store(url) as store:
        frame = store.trials_frame()
        assert len(frame) == 100 and set(frame["status"]) == {"complete"}
        assert len(store.studies_frame()) == 1
        assert frame["candidate_id"].nunique() == 5
        trials = {
            store.trial(int(t))["config"]["writer"] + str(store.trial(int(t))["config"]["i"])
            for t in frame["trial_id"]
        }
        assert trials == {f"{tag}{i}" for tag in "ab" for i in range(50)}
        epochs = store.epochs_frame()
        assert len(epochs) == 400 and set(epochs.groupby("trial_id").size()) == {4}
    if url.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "results.db") as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        connection.close()


# --- schema versions ---------------------------------------------------------------------

# The schema exactly as version 1 of harness writes it (SQLite), to create a
# version-1 file by hand. When the schema changes, keep this and add V2_SQLITE.
V1_SQLITE = """
CREATE TABLE harness_meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE harness_studies (
    id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, space VARCHAR(255), objectives JSON,
    sampler VARCHAR(255), data_spec TEXT, config JSON, created_at DATETIME NOT NULL,
    PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE harness_candidates (
    id INTEGER NOT NULL, arch TEXT NOT NULL, skeleton_hash VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL,
    family VARCHAR(16) NOT NULL, params BIGINT, flops BIGINT, input_shape JSON, num_classes INTEGER,
    skeleton JSON, created_at DATETIME NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_harness_candidates_arch_skeleton UNIQUE (arch, skeleton_hash));
CREATE TABLE harness_trials (
    id INTEGER NOT NULL, study_id INTEGER NOT NULL, candidate_id INTEGER NOT NULL, optuna_trial_number INTEGER,
    protocol VARCHAR(255), hyperparameters JSON, config JSON, config_hash VARCHAR(64) NOT NULL, seed INTEGER,
    data_spec TEXT, data_fingerprint VARCHAR(255), label_mode VARCHAR(255), status VARCHAR(16) NOT NULL,
    reason TEXT, best_epoch INTEGER, val_acc FLOAT, val_loss FLOAT, test_acc FLOAT, test_loss FLOAT,
    per_class_acc JSON, confusion JSON, class_names JSON, train_seconds FLOAT, eval_seconds FLOAT,
    images_per_s FLOAT, device VARCHAR(255), environment JSON, worker VARCHAR(255),
    started_at DATETIME NOT NULL, finished_at DATETIME, PRIMARY KEY (id),
    FOREIGN KEY(study_id) REFERENCES harness_studies (id),
    FOREIGN KEY(candidate_id) REFERENCES harness_candidates (id));
CREATE INDEX ix_harness_trials_candidate_id ON harness_trials (candidate_id);
CREATE INDEX ix_harness_trials_study_status ON harness_trials (study_id, status);
CREATE INDEX ix_harness_trials_dedup ON harness_trials (config_hash, data_fingerprint, seed);
CREATE TABLE harness_epochs (
    id INTEGER NOT NULL, trial_id INTEGER NOT NULL, epoch INTEGER NOT NULL, train_loss FLOAT, train_acc FLOAT,
    val_loss FLOAT, val_acc FLOAT, lr FLOAT, seconds FLOAT, images_per_s FLOAT, recorded_at DATETIME NOT NULL,
    PRIMARY KEY (id), CONSTRAINT uq_harness_epochs_trial_epoch UNIQUE (trial_id, epoch),
    FOREIGN KEY(trial_id) REFERENCES harness_trials (id) ON DELETE CASCADE);
CREATE TABLE harness_latencies (
    id INTEGER NOT NULL, candidate_id INTEGER NOT NULL, trial_id INTEGER, device VARCHAR(255) NOT NULL,
    batch INTEGER NOT NULL, threads INTEGER, median_ms FLOAT, p90_ms FLOAT, min_ms FLOAT, max_ms FLOAT,
    repeats INTEGER, created_at DATETIME NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(candidate_id) REFERENCES harness_candidates (id),
    FOREIGN KEY(trial_id) REFERENCES harness_trials (id) ON DELETE SET NULL);
CREATE INDEX ix_harness_latencies_candidate_id ON harness_latencies (candidate_id);
INSERT INTO harness_meta VALUES ('schema_version', '1');
INSERT INTO harness_studies VALUES (1, 'old', 'rir_orderings', '["accuracy"]', 'tpe', 'synthetic', '{}', '2025-01-02 03:04:05');
INSERT INTO harness_candidates VALUES (1, 'RRR|IIII', '', 'candidate', 'RI', 1000, 2000000, '[1, 48, 48]', 7, NULL, '2025-01-02 03:04:05');
INSERT INTO harness_trials (id, study_id, candidate_id, protocol, hyperparameters, config, config_hash, seed,
    data_spec, data_fingerprint, status, best_epoch, val_acc, test_acc, confusion, started_at, finished_at)
    VALUES (1, 1, 1, 'paper', '{"lr": 0.0001}', '{"lr": 0.0001}', 'h1', 1, 'synthetic', 'fp', 'complete', 1,
    0.75, 0.7, '[[1, 0], [0, 1]]', '2025-01-02 03:04:05', '2025-01-02 03:05:05');
INSERT INTO harness_epochs VALUES (1, 1, 0, 1.0, 0.5, 1.1, 0.6, 0.0001, 2.0, 1000.0, '2025-01-02 03:04:30');
INSERT INTO harness_epochs VALUES (2, 1, 1, 0.8, 0.6, 0.9, 0.75, 0.0001, 2.0, 1000.0, '2025-01-02 03:05:00');
INSERT INTO harness_latencies VALUES (1, 1, 1, 'cpu', 1, 2, 3.0, 3.5, 2.9, 4.0, 20, '2025-01-02 03:05:05');
"""


# Version 2 adds each trial's per-image test predictions and targets (McNemar's test).
V2_SQLITE = V1_SQLITE.replace(
    "started_at DATETIME NOT NULL, finished_at DATETIME, PRIMARY KEY (id),",
    "started_at DATETIME NOT NULL, finished_at DATETIME, test_predictions JSON, "
    "test_targets JSON, PRIMARY KEY (id),",
).replace("('schema_version', '1')", "('schema_version', '2')")


# Version 4 adds the estimates table (cheap scores of candidates); version 3 only an index.
V4_SQLITE = (
    V2_SQLITE.replace("('schema_version', '2')", "('schema_version', '4')")
    + """
CREATE TABLE harness_estimates (
    id INTEGER NOT NULL, candidate_id INTEGER NOT NULL, estimator VARCHAR(64) NOT NULL, score FLOAT,
    seconds FLOAT, data_fingerprint VARCHAR(255), seed INTEGER, settings JSON,
    settings_hash VARCHAR(64) NOT NULL, device VARCHAR(255), created_at DATETIME NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(candidate_id) REFERENCES harness_candidates (id));
"""
)


# Version 5 adds the weights links (each trial's kept weights, an Optuna artifact).
V5_SQLITE = (
    V4_SQLITE.replace("('schema_version', '4')", "('schema_version', '5')")
    + """
CREATE TABLE harness_weights (
    id INTEGER NOT NULL, trial_id INTEGER NOT NULL, artifact_id VARCHAR(64) NOT NULL,
    location TEXT NOT NULL, filename VARCHAR(255) NOT NULL, sha256 VARCHAR(64) NOT NULL,
    bytes BIGINT NOT NULL, created_at DATETIME NOT NULL, removed_at DATETIME,
    PRIMARY KEY (id), UNIQUE (trial_id),
    FOREIGN KEY(trial_id) REFERENCES harness_trials (id) ON DELETE CASCADE);
CREATE INDEX ix_harness_weights_artifact_id ON harness_weights (artifact_id);
"""
)


def write_by_hand(path, script: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.executescript(script)
    connection.close()


def columns_of(path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as connection:
        tables = [
            r[0]
            for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'harness_%'"
            )
        ]
        found = {t: [r[1] for r in connection.execute(f"PRAGMA table_info({t})")] for t in tables}
    connection.close()
    return found


def assert_old_data_intact(store: Store) -> None:
    trial = store.trial(1)
    assert (trial["study"], trial["arch"], trial["val_acc"], trial["confusion"]) == (
        "old",
        "RRR|IIII",
        0.75,
        [[1, 0], [0, 1]],
    )
    assert [e["val_acc"] for e in store.epochs(1)] == [0.6, 0.75]
    frame = store.trials_frame()
    assert len(frame) == 1 and frame.loc[0, "latency_ms"] == 3.0 and frame.loc[0, "epochs"] == 2
    assert (
        store.find_complete_trial(arch="RRR|IIII", config_hash="h1", data_fingerprint="fp", seed=1)[
            "id"
        ]
        == 1
    )


def test_current_models_match_latest_frozen_schema(tmp_path):
    """Changing models.py without a new schema version (and its frozen DDL) fails here."""
    # Version 3 adds only an index; version 4 the estimates table (V4_SQLITE); version 5
    # the weights links (V5_SQLITE).
    assert SCHEMA_VERSION == 5, "add V{n}_SQLITE for the new version and compare against it"
    write_by_hand(tmp_path / "frozen.db", V5_SQLITE)
    Store(sqlite_url(tmp_path / "fresh.db")).prepare().close()
    assert columns_of(tmp_path / "fresh.db") == columns_of(tmp_path / "frozen.db")


def test_version_1_file_written_by_hand_opens_without_data_loss(tmp_path, record_trial):
    path = tmp_path / "v1.db"
    write_by_hand(path, V1_SQLITE)
    with Store(sqlite_url(path)) as store:
        assert_old_data_intact(store)
        new_trial = record_trial(store, study="old", arch="RRR|IIII").trial_id
        assert new_trial == 2
        store.finish_trial(
            new_trial, status="complete", test_predictions=[1, 0], test_targets=[1, 1]
        )
        assert store.trial_columns([1, new_trial], ["test_predictions", "test_targets"]) == {
            1: {"test_predictions": None, "test_targets": None},
            new_trial: {"test_predictions": [1, 0], "test_targets": [1, 1]},
        }
    # The upgraded file has exactly the columns of a fresh file of the current version.
    write_by_hand(tmp_path / "frozen.db", V5_SQLITE)
    assert columns_of(path) == columns_of(tmp_path / "frozen.db")


def test_migration_steps_run_in_order_and_keep_data(tmp_path, monkeypatch):
    """A version-1 file opened by a (pretend) version-6 harness runs the real step 1->2,
    then pretend steps 2->3, 3->4, 4->5 and 5->6, in order."""
    path = tmp_path / "v1.db"
    write_by_hand(path, V1_SQLITE)
    ran = []
    real_step = migrations.STEPS[1]

    def real(connection):
        real_step(connection)
        ran.append(1)

    def add_notes(connection):
        ops = migrations.operations(connection)
        with ops.batch_alter_table("harness_trials") as batch:
            batch.add_column(
                __import__("sqlalchemy").Column("notes", __import__("sqlalchemy").Text)
            )
        ran.append(2)

    def fill_notes(connection):
        from sqlalchemy import column, table, update

        trials = table("harness_trials", column("notes"))
        connection.execute(update(trials).values(notes="migrated"))
        ran.append(3)

    monkeypatch.setattr(migrations, "SCHEMA_VERSION", 6)
    monkeypatch.setitem(migrations.STEPS, 1, real)
    monkeypatch.setitem(migrations.STEPS, 2, add_notes)
    monkeypatch.setitem(migrations.STEPS, 3, fill_notes)
    monkeypatch.setitem(migrations.STEPS, 4, lambda connection: ran.append(4))
    monkeypatch.setitem(migrations.STEPS, 5, lambda connection: ran.append(5))
    Store(sqlite_url(path)).close()
    assert ran == []  # opening only checks; the first use migrates
    with Store(sqlite_url(path)).prepare() as store:
        assert ran == [1, 2, 3, 4, 5]
        assert_old_data_intact(store)
        with store.engine.connect() as connection:
            assert migrations.schema_version(connection) == 6
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT notes FROM harness_trials").fetchall() == [("migrated",)]
    connection.close()
    # Opening again does not migrate twice.
    Store(sqlite_url(path)).prepare().close()
    assert ran == [1, 2, 3, 4, 5]

    # Back to the real code: the file is now newer than it.
    monkeypatch.undo()
    with pytest.raises(StoreError, match="newer than this harness.*upgrade harness"):
        Store(sqlite_url(path))


def test_failed_migration_step_leaves_old_version(tmp_path, monkeypatch):
    path = tmp_path / "v1.db"
    write_by_hand(path, V1_SQLITE)

    def broken(connection):
        migrations.operations(connection).drop_table("harness_latencies")
        raise RuntimeError("step failed half-way")

    monkeypatch.setattr(migrations, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(migrations.STEPS, 1, broken)
    with pytest.raises(RuntimeError, match="half-way"):
        Store(sqlite_url(path)).prepare()
    monkeypatch.undo()
    with Store(sqlite_url(path)) as store:  # rolled back: still version 1, nothing lost
        assert_old_data_intact(store)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Store(sqlite_url(path)).prepare().close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE harness_meta SET value = '99' WHERE key = 'schema_version'")
    connection.close()
    with pytest.raises(
        StoreError, match=r"schema version 99, newer than this harness knows \(5\): upgrade harness"
    ):
        Store(sqlite_url(path))


def test_shares_a_database_with_optuna(tmp_path, record_trial):
    """Version 0 = no harness tables: created beside Optuna's, before or after them."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for first in ("optuna", "harness"):
        url = sqlite_url(tmp_path / f"{first}-first.db")
        if first == "harness":
            with Store(url) as store:
                record_trial(store)
        study = optuna.create_study(storage=url, study_name="s", load_if_exists=True)
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        if first == "optuna":
            with Store(url) as store:
                record_trial(store)
        with Store(url) as store:
            assert len(store.trials_frame()) == 1
        assert len(optuna.load_study(storage=url, study_name="s").trials) == 2


# --- bad URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nosuchdialect://x", "unknown database kind"),
        ("not a url", "cannot parse database URL"),
        (
            "postgresql://u:hunter2@127.0.0.1:1/db",
            "cannot open database postgresql://u:\\*\\*\\*@127.0.0.1:1/db",
        ),
    ],
)
@pytest.mark.timeout(60)  # a hang guard (the connect timeout is 5 s), not a speed test
def test_bad_url_is_a_quick_store_error(url, expected):
    with pytest.raises(StoreError, match=expected) as raised:
        Store(url)
    message = str(raised.value)
    assert "\n" not in message and "hunter2" not in message


def test_missing_sqlite_file_is_not_created_by_read_only_commands(tmp_path, capsys):
    path = tmp_path / "none" / "x.db"
    assert main(["trials", "--db", sqlite_url(path)]) == 2
    assert "no results database" in capsys.readouterr().err
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize("command", ["trials", "studies"])
def test_cli_bad_db_is_one_line_and_exit_2(command, capsys):
    assert main([command, "--db", "postgresql://u:hunter2@127.0.0.1:1/db"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error:") and "hunter2" not in lines[0]


# --- the commands ------------------------------------------------------------------------


@pytest.fixture
def filled_db(tmp_path, record_trial):
    url = sqlite_url(tmp_path / "r.db")
    with Store(url) as store:
        _, candidate, _ = record_trial(store, arch="RRR|IIII", val_acc=0.5123, test_acc=0.4567)
        record_trial(
            store,
            arch="timm:resnet50",
            kind="baseline",
            family="baseline",
            val_acc=0.6,
            test_acc=0.55,
        )
        record_trial(
            store,
            study="s2",
            arch="(IR)",
            family="alternated",
            status="failed",
            val_acc=None,
            test_acc=None,
        )
        add_latency(store, candidate, median_ms=3.25)
    return url


def test_trials_table(filled_db, capsys):
    assert main(["trials", "--db", filled_db]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for label in (
        "id",
        "study",
        "arch",
        "family",
        "status",
        "val acc %",
        "test acc %",
        "params (M)",
        "GFLOPs (fvcore)",
        "latency ms (b1)",
        "epochs",
        "date",
    ):
        assert label in header
    assert "RRR|IIII" in out and "timm:resnet50" in out and "(IR)" in out
    assert "51.23" in out and "45.67" in out and "60.00" in out and "55.00" in out
    assert "1.23" in out and "0.456" in out and "3.25" in out  # params (M), GFLOPs, latency


def test_trials_filters_and_limit(filled_db, capsys):
    main(["trials", "--db", filled_db, "--status", "failed", "--format", "csv"])
    assert list(pd.read_csv(io.StringIO(capsys.readouterr().out))["arch"]) == ["(IR)"]
    main(["trials", "--db", filled_db, "--study", "demo", "--limit", "1", "--format", "csv"])
    assert list(pd.read_csv(io.StringIO(capsys.readouterr().out))["arch"]) == ["timm:resnet50"]
    assert main(["trials", "--db", filled_db, "--study", "nope"]) == 0
    assert "no trials matching" in capsys.readouterr().err


def test_trials_csv_json_md(filled_db, capsys):
    main(["trials", "--db", filled_db, "--format", "csv"])
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(frame.columns) == list(TRIAL_FRAME_COLUMNS)
    assert frame.loc[0, "val_acc"] == pytest.approx(0.5123) and frame.loc[0, "flops"] == 456_000_000
    assert json.loads(frame.loc[0, "hyperparameters"]) == {"lr": 1e-4, "batch": 64}

    main(["trials", "--db", filled_db, "--format", "json"])
    records = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in records] == ["RRR|IIII", "timm:resnet50", "(IR)"]
    assert records[0]["latency_ms"] == 3.25 and records[2]["val_acc"] is None

    main(["trials", "--db", filled_db, "--format", "md"])
    lines = capsys.readouterr().out.splitlines()
    # A Markdown table (cell padding aside): header, alignment row (ids right-aligned),
    # and the pipes inside an arch escaped.
    assert [cell.strip() for cell in lines[0].split("|")[1:3]] == ["id", "study"]
    assert set(lines[1]) <= set("|-: ") and lines[1].split("|")[1].strip().endswith(":")
    assert "RRR\\|IIII" in lines[2]


def test_studies_command(filled_db, capsys):
    assert main(["studies", "--db", filled_db]) == 0
    out = capsys.readouterr().out
    assert (
        "demo" in out
        and "s2" in out
        and "60.00" in out
        and "55.00" in out
        and "timm:resnet50" in out
    )
    main(["studies", "--db", filled_db, "--format", "json"])
    records = {r["study"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["demo"]["complete"] == 2 and records["demo"]["best_test_acc"] == 0.55
    assert records["s2"]["failed"] == 1 and records["s2"]["best_val_acc"] is None
    main(["studies", "--db", filled_db, "--format", "csv"])
    assert list(pd.read_csv(io.StringIO(capsys.readouterr().out))["study"]) == ["demo", "s2"]


def test_empty_database_says_so(tmp_path, capsys):
    url = sqlite_url(tmp_path / "empty.db")
    Store(url).prepare().close()
    assert main(["trials", "--db", url]) == 0
    assert "no trials in" in capsys.readouterr().err
    assert main(["studies", "--db", url, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_command_modules_import_no_heavy_library():
    code = (
        "import sys, harness.commands.trials, harness.commands.studies; "
        "print(sorted(m for m in ('sqlalchemy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
