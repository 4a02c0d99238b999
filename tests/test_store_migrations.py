"""The migration runner's real step 2 -> 3 (the reuse lookup's index), on a
version-2 file exactly as the harness of schema 2 wrote it."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from harness.errors import StoreError
from harness.store import SCHEMA_VERSION, Store, migrations

# sqlite_master of a new database made by harness at schema 2 (`Store(url)`), verbatim
# but for whitespace, with one study, candidate, complete trial, two epochs, a latency.
V2_SQLITE = """
CREATE TABLE harness_meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE harness_studies (id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, space VARCHAR(255),
    objectives JSON, sampler VARCHAR(255), data_spec TEXT, config JSON, created_at DATETIME NOT NULL,
    PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE harness_candidates (id INTEGER NOT NULL, arch TEXT NOT NULL,
    skeleton_hash VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, family VARCHAR(16) NOT NULL,
    params BIGINT, flops BIGINT, input_shape JSON, num_classes INTEGER, skeleton JSON,
    created_at DATETIME NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_harness_candidates_arch_skeleton UNIQUE (arch, skeleton_hash));
CREATE TABLE harness_trials (id INTEGER NOT NULL, study_id INTEGER NOT NULL,
    candidate_id INTEGER NOT NULL, optuna_trial_number INTEGER, protocol VARCHAR(255),
    hyperparameters JSON, config JSON, config_hash VARCHAR(64) NOT NULL, seed INTEGER,
    data_spec TEXT, data_fingerprint VARCHAR(255), label_mode VARCHAR(255),
    status VARCHAR(16) NOT NULL, reason TEXT, best_epoch INTEGER, val_acc FLOAT, val_loss FLOAT,
    test_acc FLOAT, test_loss FLOAT, per_class_acc JSON, confusion JSON, class_names JSON,
    train_seconds FLOAT, eval_seconds FLOAT, images_per_s FLOAT, device VARCHAR(255),
    environment JSON, worker VARCHAR(255), started_at DATETIME NOT NULL, finished_at DATETIME,
    test_predictions JSON, test_targets JSON, PRIMARY KEY (id),
    FOREIGN KEY(study_id) REFERENCES harness_studies (id),
    FOREIGN KEY(candidate_id) REFERENCES harness_candidates (id));
CREATE INDEX ix_harness_trials_dedup ON harness_trials (config_hash, data_fingerprint, seed);
CREATE INDEX ix_harness_trials_candidate_id ON harness_trials (candidate_id);
CREATE INDEX ix_harness_trials_study_status ON harness_trials (study_id, status);
CREATE TABLE harness_epochs (id INTEGER NOT NULL, trial_id INTEGER NOT NULL, epoch INTEGER NOT NULL,
    train_loss FLOAT, train_acc FLOAT, val_loss FLOAT, val_acc FLOAT, lr FLOAT, seconds FLOAT,
    images_per_s FLOAT, recorded_at DATETIME NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_harness_epochs_trial_epoch UNIQUE (trial_id, epoch),
    FOREIGN KEY(trial_id) REFERENCES harness_trials (id) ON DELETE CASCADE);
CREATE TABLE harness_latencies (id INTEGER NOT NULL, candidate_id INTEGER NOT NULL,
    trial_id INTEGER, device VARCHAR(255) NOT NULL, batch INTEGER NOT NULL, threads INTEGER,
    median_ms FLOAT, p90_ms FLOAT, min_ms FLOAT, max_ms FLOAT, repeats INTEGER,
    created_at DATETIME NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(candidate_id) REFERENCES harness_candidates (id),
    FOREIGN KEY(trial_id) REFERENCES harness_trials (id) ON DELETE SET NULL);
CREATE INDEX ix_harness_latencies_candidate_id ON harness_latencies (candidate_id);
INSERT INTO harness_meta VALUES ('schema_version', '2'), ('created_with', 'harness 0.1.0');
INSERT INTO harness_studies VALUES (1, 'old', 'rir_orderings', '["accuracy"]', 'tpe', 'synthetic',
    '{}', '2025-06-01 10:00:00');
INSERT INTO harness_candidates VALUES (1, 'RRR|IIII', '', 'candidate', 'RI', 1000, 2000000,
    '[1, 48, 48]', 7, NULL, '2025-06-01 10:00:00');
INSERT INTO harness_trials (id, study_id, candidate_id, protocol, hyperparameters, config,
    config_hash, seed, data_spec, data_fingerprint, status, best_epoch, val_acc, test_acc,
    started_at, finished_at, test_predictions, test_targets)
    VALUES (1, 1, 1, 'paper', '{}', '{"lr": 0.0001}', 'h1', 1, 'synthetic', 'fp', 'complete', 1,
    0.75, 0.7, '2025-06-01 10:00:00', '2025-06-01 10:01:00', '[1, 0, 1]', '[1, 1, 1]');
INSERT INTO harness_trials (id, study_id, candidate_id, config_hash, seed, data_fingerprint,
    status, started_at) VALUES (2, 1, 1, 'h1', 1, 'fp', 'failed', '2025-06-01 10:02:00');
INSERT INTO harness_epochs VALUES (1, 1, 0, 1.0, 0.5, 1.1, 0.6, 0.0001, 2.0, 1000.0,
    '2025-06-01 10:00:30'), (2, 1, 1, 0.8, 0.6, 0.9, 0.75, 0.0001, 2.0, 1000.0, '2025-06-01 10:01:00');
INSERT INTO harness_latencies VALUES (1, 1, 1, 'cpu', 1, 2, 3.0, 3.5, 2.9, 4.0, 20,
    '2025-06-01 10:01:00');
"""

REUSE_QUERY = """EXPLAIN QUERY PLAN SELECT harness_trials.id FROM harness_trials
    JOIN harness_candidates ON harness_candidates.id = harness_trials.candidate_id
    WHERE harness_candidates.arch = 'RRR|IIII' AND harness_trials.config_hash = 'h1'
    AND harness_trials.data_fingerprint = 'fp' AND harness_trials.seed = 1
    AND harness_trials.status = 'complete' ORDER BY harness_trials.id DESC LIMIT 1"""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def write_v2(path: Path, script: str = V2_SQLITE) -> Path:
    with sqlite3.connect(path) as connection:
        connection.executescript(script)
    connection.close()
    return path


def sqlite(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(query).fetchall()
    connection.close()
    return rows


def shape(path: Path) -> dict[str, set[str]]:
    """Each harness table's columns and index names."""
    tables = [r[0] for r in sqlite(path, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {
        table: {f"column {r[1]}" for r in sqlite(path, f"PRAGMA table_info({table})")}
        | {f"index {r[1]}" for r in sqlite(path, f"PRAGMA index_list({table})")}
        for table in tables
        if table.startswith("harness_")
    }


def version(path: Path) -> int:
    found = sqlite(path, "SELECT value FROM harness_meta WHERE key = 'schema_version'")
    return int(found[0][0])


def test_version_2_file_is_upgraded_to_the_fresh_shape_and_keeps_its_results(tmp_path):
    path = write_v2(tmp_path / "v2.db")
    assert "ix_harness_trials_dedup" in str(sqlite(path, REUSE_QUERY))  # the old index today
    with Store(sqlite_url(path)) as store:
        assert store.find_complete_trial(
            arch="RRR|IIII", config_hash="h1", data_fingerprint="fp", seed=1
        )["id"] == 1  # fmt: skip
        trial = store.trial(1)
        assert (trial["val_acc"], trial["test_predictions"], trial["status"]) == (
            0.75,
            [1, 0, 1],
            "complete",
        )
        assert [e["val_acc"] for e in store.epochs(1)] == [0.6, 0.75]
        frame = store.trials_frame()
        assert list(frame["status"]) == ["complete", "failed"]
        assert frame.loc[0, "latency_ms"] == 3.0
    assert version(path) == SCHEMA_VERSION == 5
    Store(sqlite_url(tmp_path / "fresh.db")).prepare().close()
    assert shape(path) == shape(tmp_path / "fresh.db")
    plan = str(sqlite(path, REUSE_QUERY))
    assert "ix_harness_trials_reuse" in plan and "status=?" in plan


def test_the_step_runs_once_and_new_results_join_the_old(tmp_path):
    path = write_v2(tmp_path / "v2.db")
    ran = []
    real = migrations.STEPS[2]

    def counted(connection):
        ran.append(2)
        real(connection)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(migrations.STEPS, 2, counted)
        Store(sqlite_url(path)).prepare().close()
        with Store(sqlite_url(path)) as store:
            study = store.ensure_study("old")
            trial = store.start_trial(
                study_id=study, candidate_id=1, protocol="paper", hyperparameters={},
                config={"lr": 0.0001}, seed=2, data_spec="synthetic", data_fingerprint="fp",
                label_mode=None, device="cpu", environment={},
            )  # fmt: skip
            store.finish_trial(trial, status="complete", val_acc=0.8)
            assert store.studies_frame().set_index("study").loc["old", "complete"] == 2
    assert ran == [2]


def test_read_only_open_of_version_2_reads_it_as_it_is(tmp_path):
    path = write_v2(tmp_path / "v2.db")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with Store(sqlite_url(path), create=False) as store:
        assert store.trial(1)["test_targets"] == [1, 1, 1]
        assert len(store.trials_frame()) == 2
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert version(path) == 2


def test_read_only_open_of_a_version_older_than_readable_is_refused(tmp_path):
    v1 = V2_SQLITE.replace(", test_predictions, test_targets)", ")").replace(
        ", '[1, 0, 1]', '[1, 1, 1]')", ")"
    )
    v1 = v1.replace("test_predictions JSON, test_targets JSON, ", "")
    path = write_v2(
        tmp_path / "v1.db", v1.replace("('schema_version', '2')", "('schema_version', '1')")
    )
    assert migrations.OLDEST_READABLE == 2
    with pytest.raises(StoreError, match="schema version 1, too old to read as it is"):
        Store(sqlite_url(path), create=False)
    assert version(path) == 1
    with Store(sqlite_url(path)) as store:  # a writing command upgrades it, 1 -> ... -> 5
        assert store.trial(1)["test_predictions"] is None
    assert version(path) == 5
