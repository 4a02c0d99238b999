"""Read-only commands never write to the database, a --db typo starts no new
database, and URLs are shown as typed (password hidden)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import StoreError
from harness.store import Store, mask_url


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A results database with one complete trial of two epochs."""
    path = tmp_path / "filled.db"
    with Store(sqlite_url(path)) as store:
        study = store.ensure_study("demo", space="rir_orderings", objectives=["accuracy"])
        candidate = store.ensure_candidate(
            "R|I", kind="candidate", family="RI", params=10, flops=20,
            input_shape=[1, 16, 16], num_classes=2, skeleton=None,
        )  # fmt: skip
        trial = store.start_trial(
            study_id=study, candidate_id=candidate, protocol="paper", hyperparameters={},
            config={"seed": 0}, seed=0, data_spec="synthetic", data_fingerprint="fp",
            label_mode=None, device="cpu", environment={},
        )  # fmt: skip
        for epoch in range(2):
            store.record_epoch(
                trial, epoch=epoch, train_loss=1.0, train_acc=0.5, val_loss=1.0,
                val_acc=0.5 + epoch / 10, lr=0.1, seconds=1.0, images_per_s=10.0,
            )  # fmt: skip
        store.finish_trial(trial, status="complete", val_acc=0.6, test_acc=0.55, best_epoch=1)
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error:"), captured.err
    return lines[0]


def read_only_commands(url: str, tmp_path: Path) -> list[list[str]]:
    return [
        ["trials", "--db", url],
        ["trials", "--db", url, "--format", "json"],
        ["studies", "--db", url],
        ["report", "--db", url, "--format", "md"],
        ["report", "--db", url, "-o", str(tmp_path / "r.html"), "--quiet"],
    ]


def test_read_only_commands_leave_the_file_byte_for_byte(filled, tmp_path, capsys):
    before = digest(filled)
    for argv in read_only_commands(sqlite_url(filled), tmp_path):
        assert main(argv) == 0, capsys.readouterr().err
        assert digest(filled) == before, argv
    assert (tmp_path / "r.html").is_file()


@pytest.mark.parametrize("kind", ["zero bytes", "sqlite, no tables", "foreign tables"])
def test_read_only_commands_refuse_a_file_without_harness_tables(kind, tmp_path, capsys):
    path = tmp_path / "x.db"
    path.write_bytes(b"")
    if kind != "zero bytes":
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA user_version = 7")  # a valid, table-less file
            if kind == "foreign tables":
                connection.execute("CREATE TABLE notes (x TEXT)")
        connection.close()
    before = digest(path)
    for argv in read_only_commands(sqlite_url(path), tmp_path):
        assert main(argv) == 2, argv
        assert "no harness results in" in one_error_line(capsys)
        assert digest(path) == before, argv
    assert not (tmp_path / "r.html").exists()


def test_read_only_store_refuses_writes(filled):
    with Store(sqlite_url(filled), create=False) as store:
        assert store.read_only and len(store.trials_frame()) == 1
        with pytest.raises(StoreError, match="opened read-only"):
            store.ensure_study("new")
    with Store(sqlite_url(filled)) as store:
        assert list(store.studies_frame()["study"]) == ["demo"]


def test_an_explicit_path_in_a_missing_folder_is_refused(tmp_path):
    path = tmp_path / "typo" / "deeper" / "x.db"
    with pytest.raises(StoreError, match=r"folder .*typo/deeper .* does not exist: create it"):
        Store(sqlite_url(path))
    assert not (tmp_path / "typo").exists()
    (tmp_path / "typo" / "deeper").mkdir(parents=True)
    Store(sqlite_url(path)).prepare().close()  # once the folder exists, a new database is fine
    assert path.is_file()


def test_run_with_a_db_in_a_missing_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = sqlite_url(tmp_path / "nonexistent" / "dir" / "x.db")
    argv = ["run", "--space", "rir_orderings", "--trials", "1", "--no-progress", "--db", url]
    assert main(argv) == 2
    assert "does not exist: create it first" in one_error_line(capsys)
    assert not (tmp_path / "nonexistent").exists() and not (tmp_path / "results").exists()


def test_the_default_database_folder_is_still_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_DB", raising=False)
    Store().prepare().close()
    assert (tmp_path / "results" / "harness.db").is_file()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///file:x.db?mode=ro&uri=true", "sqlite:///file:x.db?mode=ro&uri=true"),
        ("sqlite:////tmp/a b.db?timeout=3", "sqlite:////tmp/a b.db?timeout=3"),
        (
            "postgresql://u:p%40ss@h:5/db?sslmode=require",
            "postgresql://u:***@h:5/db?sslmode=require",
        ),
        (
            "postgresql://u:hunter2@h/db?options=-c%20x@y",
            "postgresql://u:***@h/db?options=-c%20x@y",
        ),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_urls_are_shown_as_typed_without_password(url, shown):
    assert mask_url(url) == shown


def test_a_sqlite_uri_with_options_is_named_as_typed_in_errors(tmp_path, capsys):
    url = f"sqlite:///file:{tmp_path}/none.db?mode=ro&uri=true"
    assert main(["trials", "--db", url]) == 2
    line = one_error_line(capsys)
    assert f"file:{tmp_path}/none.db?mode=ro" in line and "%3A" not in line
