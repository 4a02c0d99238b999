"""Hostile databases (issue 23): in-memory URLs, another program's file, a refused
command, read-only media. Each is one line, exit 2, and the file is left as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _refusal import refused

from harness.cli import main
from harness.errors import StoreError
from harness.store import Store

TRAIN = ["train", "RI", "--data", "synthetic?n=60&size=16", "--epochs", "1"]
TRAIN += ["--max-batches", "1", "--threads", "1", "--no-progress"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_mode(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    return mode


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        names = {name for (name,) in rows}
    connection.close()
    return names


# -- in-memory URLs: nothing recorded would be kept --------------------------------------

IN_MEMORY = [
    "sqlite://",
    "sqlite:///",
    "sqlite:///:memory:",
    "sqlite+pysqlite:///:memory:",
    "sqlite:///file::memory:?uri=true",
    "sqlite:///file:scratch?mode=memory&uri=true",
]


@pytest.mark.parametrize("url", IN_MEMORY)
def test_an_in_memory_url_is_refused_before_training(url, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused([*TRAIN, "--db", url], capsys)
    assert "in-memory database keeps nothing" in line
    assert list(tmp_path.iterdir()) == []


def test_an_unset_variable_in_harness_db_is_refused(capsys, tmp_path, monkeypatch):
    # HARNESS_DB=sqlite:///$UNSET: the shell leaves sqlite:///.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_DB", "sqlite:///")
    line = refused(TRAIN, capsys)
    assert "'sqlite:///' (was a variable in it unset?) names no file" in line


def test_run_with_an_in_memory_url_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--space", "rir_orderings", "--trials", "1", "--db", "sqlite://"]
    assert "in-memory" in refused(argv, capsys)


# -- another program's database ----------------------------------------------------------


def _foreign(path: Path, kind: str) -> Path:
    with sqlite3.connect(path) as connection:  # DELETE journal, SQLite's default
        if kind == "other app":
            connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
            connection.execute("INSERT INTO users (name) VALUES ('ann')")
        elif kind == "named like optuna's":
            connection.execute("CREATE TABLE studies (id INTEGER, title TEXT)")
            connection.execute("CREATE TABLE trials (id INTEGER, patient TEXT)")
        elif kind == "a view only":
            connection.execute("CREATE VIEW answer AS SELECT 42 AS x")
    connection.close()
    return path


FOREIGN = ["other app", "named like optuna's", "a view only"]


@pytest.mark.parametrize("kind", FOREIGN)
def test_another_programs_database_is_refused_and_left_as_it_was(kind, tmp_path, capsys):
    path = _foreign(tmp_path / "app.db", kind)
    before = digest(path)
    line = refused([*TRAIN, "--db", f"sqlite:///{path}"], capsys)
    assert f"sqlite:///{path} is not a harness database" in line
    assert digest(path) == before and journal_mode(path) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, no -shm
    with pytest.raises(StoreError, match="another program's tables"):
        Store(f"sqlite:///{path}")
    assert digest(path) == before


def test_run_on_another_programs_database_is_refused_before_optuna_touches_it(tmp_path, capsys):
    path = _foreign(tmp_path / "app.db", "named like optuna's")
    before = digest(path)
    argv = ["run", "--space", "rir_orderings", "--trials", "1", "--epochs", "1"]
    line = refused([*argv, "--data", "synthetic?n=60&size=16", "--db", f"sqlite:///{path}"], capsys)
    assert "is not a harness database" in line
    assert digest(path) == before


def test_an_empty_file_and_an_optuna_storage_are_ours_to_use(tmp_path, record_trial):
    from harness.store.migrations import OPTUNA_TABLES

    optuna = pytest.importorskip("optuna")
    empty = tmp_path / "touched.db"
    empty.write_bytes(b"")  # `touch results.db` first is fine
    with Store(f"sqlite:///{empty}") as store:
        record_trial(store)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.storages.RDBStorage(url)  # Optuna's tables only: a storage harness shares
    assert tables(tmp_path / "optuna.db") == OPTUNA_TABLES  # the list matches this Optuna
    with Store(url) as store:
        record_trial(store)
        assert len(store.trials_frame()) == 1


def test_doctor_changes_no_journal_mode(tmp_path, capsys):
    ours = tmp_path / "ours.db"
    with Store(f"sqlite:///{ours}") as store:
        store.ensure_study("s")
    with sqlite3.connect(ours) as connection:
        connection.execute("PRAGMA journal_mode = DELETE")  # e.g. copied off a network share
    connection.close()
    foreign = _foreign(tmp_path / "app.db", "other app")
    for path in (ours, foreign):
        before = digest(path)
        assert main(["doctor", "--json", "--db", f"sqlite:///{path}"]) == 0
        out = capsys.readouterr().out
        assert digest(path) == before and journal_mode(path) == "delete", path
    assert '"writable": true' not in out and "is not a harness database" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "ours.db"]


# -- a refused command creates no database --------------------------------------------------


def test_a_refused_command_leaves_no_new_database(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "new.db"
    for argv in (
        ["estimate", "--space", "rir_orderings", "--data", "folder:/nonexistent"],
        ["run", "--space", "rir_orderings", "--trials", "1", "--data", "folder:/nonexistent"],
        [*TRAIN, "--data", "folder:/nonexistent"],
    ):
        refused([*argv, "--db", f"sqlite:///{path}"], capsys)
        refused(argv, capsys)  # the default database: not even results/ is made
        assert list(tmp_path.iterdir()) == [], argv


def test_opening_a_store_changes_nothing_until_it_is_used(tmp_path, monkeypatch):
    path = tmp_path / "lazy.db"
    Store(f"sqlite:///{path}").close()
    assert not path.exists()
    monkeypatch.chdir(tmp_path)
    Store().close()
    assert not (tmp_path / "results").exists()
    with Store(f"sqlite:///{path}") as store:
        store.ensure_study("s")  # the first write makes the file and its tables
    assert "harness_meta" in tables(path) and journal_mode(path) == "wal"


# -- read-only media ---------------------------------------------------------------------


def _in_a_read_only_place(folder: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run Python `code` (with harness importable) where `folder` cannot be written:
    a read-only bind mount of it as root, a chmod 555 folder otherwise."""
    command = [sys.executable, "-c", code]
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False)
        finally:
            folder.chmod(0o755)
    if shutil.which("unshare") is None:
        pytest.skip("root without unshare(1): no way to make a read-only place here")
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh", *command],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if "mount:" in done.stderr or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount read-only here: {done.stderr.strip()}")
    return done


READ = (
    "import sys\n"
    "from harness.cli import main\n"
    "sys.exit(main(['trials', '--db', sys.argv[1] if len(sys.argv) > 1 else {url!r}]))\n"
)


def test_reading_on_read_only_media_says_so(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    url = f"sqlite:///{folder / 'r.db'}"
    with Store(url) as store:
        store.ensure_study("s")  # a WAL-mode file, closed: no -shm beside it
    before = digest(folder / "r.db")
    done = _in_a_read_only_place(folder, READ.format(url=url))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: cannot read "), lines
    assert "read-only file system" in lines[0] or "not writable" in lines[0]
    assert "copy r.db to a writable folder" in lines[0]
    assert "unable to open database file" not in lines[0]
    assert digest(folder / "r.db") == before


def test_recording_on_read_only_media_is_refused_before_work(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    url = f"sqlite:///{folder / 'r.db'}"
    with Store(url) as store:
        store.ensure_study("s")
    code = (
        "from harness.errors import StoreError\n"
        "from harness.store import Store\n"
        "try:\n"
        f"    Store({url!r})\n"
        "except StoreError as error:\n"
        "    print(error)\n"
    )
    done = _in_a_read_only_place(folder, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"cannot record results in {url}: "), done.stdout
    assert "copy r.db to a writable folder" in done.stdout
