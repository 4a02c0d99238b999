"""The estimates table (schema 4): written, found again by its key, framed, and added
to a version-3 database by the real 3 -> 4 step."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from harness.store import SCHEMA_VERSION, Store, migrations


def _url(path) -> str:
    return f"sqlite:///{path}"


def _version_3(path, record_trial) -> None:
    """A version-3 file: 3 -> 4 only adds harness_estimates (and 4 -> 5 harness_weights),
    so a fresh file without them, stamped 3, is what the harness of schema 3 wrote."""
    with Store(_url(path)) as store:
        record_trial(store, study="old", arch="RRR|IIII")
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE harness_estimates")
        connection.execute("DROP TABLE harness_weights")
        connection.execute("UPDATE harness_meta SET value = '3' WHERE key = 'schema_version'")
    connection.close()


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    connection.close()
    return {r[0] for r in rows}


def test_version_3_file_gets_the_table_once_and_keeps_its_trials(tmp_path, record_trial):
    path = tmp_path / "v3.db"
    _version_3(path, record_trial)
    assert "harness_estimates" not in _tables(path)
    ran = []
    real = migrations.STEPS[3]

    def counted(connection):
        ran.append(3)
        real(connection)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(migrations.STEPS, 3, counted)
        with Store(_url(path)) as store:
            assert list(store.trials_frame()["arch"]) == ["RRR|IIII"]
            candidate = int(store.trials_frame()["candidate_id"].iloc[0])
            store.record_estimate(
                candidate, "synflow", 12.5, seconds=0.2, data_fingerprint="fp", seed=0
            )
            assert store.find_estimate(candidate, "synflow", data_fingerprint="fp", seed=0)
        Store(_url(path)).prepare().close()
    assert ran == [3] and SCHEMA_VERSION >= 4
    assert "harness_estimates" in _tables(path)


def test_read_only_version_3_has_no_estimates_and_stays_unchanged(tmp_path, record_trial):
    path = tmp_path / "v3.db"
    _version_3(path, record_trial)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with Store(_url(path), create=False) as store:
        assert store.estimates_frame().empty
        assert store.find_estimate(1, "params", data_fingerprint="fp", seed=None) is None
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_an_estimate_is_found_by_its_whole_key_and_replaced_not_duplicated(tmp_path, record_trial):
    with Store(_url(tmp_path / "r.db")) as store:
        candidate = record_trial(store).candidate_id
        key = {"data_fingerprint": "fp", "seed": 3, "settings": {"batch_size": 64}}
        first = store.record_estimate(candidate, "naswot", 700.0, seconds=1.5, **key)
        found = store.find_estimate(candidate, "naswot", **key)
        assert (found["id"], found["score"], found["seconds"]) == (first, 700.0, 1.5)
        assert found["settings"] == {"batch_size": 64}
        # Any other part of the key is another estimate.
        for other in (
            {**key, "seed": 4},
            {**key, "data_fingerprint": "other"},
            {**key, "settings": {"batch_size": 32}},
        ):
            assert store.find_estimate(candidate, "naswot", **other) is None
        assert store.find_estimate(candidate, "snip", **key) is None
        again = store.record_estimate(candidate, "naswot", 701.0, seconds=1.0, **key)
        assert again == first
        assert store.find_estimate(candidate, "naswot", **key)["score"] == 701.0


def test_unseeded_estimates_match_on_a_null_seed_and_non_finite_scores_are_null(
    tmp_path, record_trial
):
    with Store(_url(tmp_path / "n.db")) as store:
        candidate = record_trial(store).candidate_id
        store.record_estimate(
            candidate, "params", 1e6, seconds=0.01, data_fingerprint="fp", seed=None
        )
        assert store.find_estimate(candidate, "params", data_fingerprint="fp", seed=None)
        assert store.find_estimate(candidate, "params", data_fingerprint="fp", seed=0) is None
        store.record_estimate(
            candidate, "synflow", float("-inf"), seconds=0.1, data_fingerprint="fp", seed=0
        )
        assert store.find_estimate(candidate, "synflow", data_fingerprint="fp", seed=0)[
            "score"
        ] is None  # fmt: skip


def test_estimates_frame_joins_the_candidate_and_filters(tmp_path, record_trial):
    with Store(_url(tmp_path / "f.db")) as store:
        a = record_trial(store, arch="RRR|IIII").candidate_id
        b = record_trial(store, arch="III|RRRR").candidate_id
        for candidate, score in ((a, 1.0), (b, 2.0)):
            for name in ("params", "synflow"):
                store.record_estimate(
                    candidate, name, score, seconds=0.5, data_fingerprint="fp", seed=0
                )
        frame = store.estimates_frame()
        assert len(frame) == 4 and set(frame["arch"]) == {"RRR|IIII", "III|RRRR"}
        assert str(frame["candidate_id"].dtype) == "Int64" and frame["score"].dtype == "float64"
        only = store.estimates_frame(estimators=["synflow"], candidate_ids=[b])
        assert list(only["score"]) == [2.0] and list(only["estimator"]) == ["synflow"]
