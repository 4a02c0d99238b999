"""Database URLs and engines: resolution, masking, SQLite concurrency, errors.

One URL names the database for everything (our tables and Optuna's):
the `--db` flag beats the `HARNESS_DB` variable, which beats the default
`sqlite:///results/harness.db` (relative to the current directory).

SQLite and several writers: every connection runs in WAL mode (readers never
block the writer) with a 30 s busy timeout, and write transactions start with
`BEGIN IMMEDIATE`, so that a writer takes the lock up front and waits for it
instead of failing with "database is locked" when it upgrades a read lock.
That needs pysqlite's own transaction handling off (`isolation_level=None`)
and SQLAlchemy's `begin` event emitting our BEGIN: the recipe of SQLAlchemy's
SQLite dialect docs ("Serializable isolation / Savepoints / Transactional DDL").
Read transactions use a plain (deferred) BEGIN. `setup_sqlite` is that recipe's
one home: Optuna's engine on the same file uses it too (`harness.search.study`).

WAL mode stays with the file, so it is switched on only by the engine that
writes (`create_store_engine` without `read_only`, which `Store` opens once
it has checked, read-only, that the file is ours). An in-memory SQLite URL
(`sqlite://`, what `sqlite:///$UNSET` becomes) is refused: every connection
would get a database of its own, and nothing recorded would outlive the command.
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from harness.errors import StoreError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

__all__ = [
    "BUSY_TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
    "DEFAULT_DB_URL",
    "ENV_VAR",
    "check_not_in_memory",
    "check_writable_location",
    "create_store_engine",
    "engine_options",
    "explain_open_error",
    "is_in_memory",
    "probe_engine",
    "mask_url",
    "resolve_db_url",
    "read_only_location",
    "setup_sqlite",
    "sqlite_path",
]

DEFAULT_DB_URL = "sqlite:///results/harness.db"
ENV_VAR = "HARNESS_DB"
BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5
# Execution option that marks an engine's transactions as writes (BEGIN IMMEDIATE on SQLite).
WRITE_OPTION = "harness_write"


def resolve_db_url(url: str | None = None) -> str:
    """The database URL to use: `url` (the --db flag) > $HARNESS_DB > the default.

    A bare `postgresql://` URL is pinned to psycopg 3 when psycopg2 is not
    installed and this SQLAlchemy would otherwise pick psycopg2 (SQLAlchemy < 2.1).
    """
    chosen = (url or "").strip() or os.environ.get(ENV_VAR, "").strip() or DEFAULT_DB_URL
    return _pin_postgres_driver(chosen)


def _pin_postgres_driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            import sqlalchemy

            major_minor = tuple(int(p) for p in sqlalchemy.__version__.split(".")[:2])
            if major_minor < (2, 1) and importlib.util.find_spec("psycopg2") is None:
                return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, for messages and printing.

    A string is shown as it was typed: SQLAlchemy's own rendering escapes the
    database part (`sqlite:///file:x.db?mode=ro` would read `file%3Ax.db`)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(url, str):
        return url.render_as_string(hide_password=True)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Unparseable: hide anything between "://user:" and the last "@".
        head, sep, rest = url.partition("://")
        if sep and "@" in rest:
            auth, _, host = rest.rpartition("@")
            user = auth.split(":", 1)[0]
            return f"{head}://{user}:***@{host}" if ":" in auth else url
        return url
    if parsed.password is None:
        return url
    # SQLAlchemy's URL grammar: user is [^:/]*, password [^@]*, then "@host".
    return re.sub(r"^([^:/]+://[^:/]*):[^@]*@", r"\1:***@", url, count=1)


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL; None for other backends and in-memory databases."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if (
        database in ("", ":memory:")
        or database.startswith("file:")
        or parsed.query.get("mode") == "memory"
    ):
        return None
    return Path(database)


def is_in_memory(url: str | URL) -> bool:
    """Whether a SQLite URL names a database that lives only as long as its connection:
    `sqlite://`, `sqlite:///`, `sqlite:///:memory:` and the `file::memory:` and
    `mode=memory` URI forms."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or parsed.query.get("mode") == "memory"
        or (database.startswith("file:") and "mode=memory" in database)
    )


def create_store_engine(
    url: str, *, create: bool = True, read_only: bool = False, wal: bool = True
) -> Engine:
    """An engine for `url`, checked by connecting once; StoreError on any failure.

    `create=False` refuses to create a missing SQLite file. Only the default
    database's folder (results/) is created: the folder of a path given with
    --db or $HARNESS_DB must exist, so that a typo does not start a new,
    empty database somewhere else. `read_only` opens a SQLite file with
    `mode=ro`, so that SQLite itself refuses any write (and a 0-byte file
    stays 0 bytes); it implies `create=False`. `wal=False` leaves a SQLite
    file's journal mode as it is (`harness doctor`'s write check).
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise StoreError(f"cannot parse database URL {shown!r}: {first_line(error)}") from None

    backend = parsed.get_backend_name()
    path = None
    if backend == "sqlite":
        check_not_in_memory(url, shown)
        path = sqlite_path(parsed)
        if path is not None:
            _check_sqlite_path(path, url, shown, create=create and not read_only)
            if read_only:
                parsed = parsed.set(
                    database="file:" + quote(str(path.absolute())),
                    query={**parsed.query, "mode": "ro", "uri": "true"},
                )

    try:
        engine = create_engine(parsed, **engine_options(url))
    except NoSuchModuleError:
        raise StoreError(
            f"unknown database kind in URL {shown!r} (try sqlite:///PATH or postgresql://...)"
        ) from None
    except (ImportError, ArgumentError, TypeError, ValueError) as error:
        raise StoreError(f"cannot use database URL {shown!r}: {first_line(error)}") from None

    if backend == "sqlite":
        setup_sqlite(engine, wal=wal and not read_only)
    try:
        with engine.connect():
            pass
    except (SQLAlchemyError, OSError) as error:
        engine.dispose()
        explain_open_error(url, error, shown, reading=read_only)
        raise StoreError(f"cannot open database {shown}: {describe_error(error)}") from None
    return engine


def check_not_in_memory(url: str, shown: str | None = None) -> None:
    """StoreError for an in-memory SQLite URL (see `is_in_memory`)."""
    if is_in_memory(url):
        shown = shown or mask_url(url)
        unset = " (was a variable in it unset?)" if shown.endswith(":///") else ""
        raise StoreError(
            f"database URL {shown!r}{unset} names no file: an in-memory database keeps "
            f"nothing after the command ends; give a path, e.g. {DEFAULT_DB_URL}"
        )


def explain_open_error(url: str | URL, error: BaseException, shown: str, *, reading: bool) -> None:
    """SQLite's "unable to open database file" or "attempt to write a readonly database"
    about a file in a read-only place, as a StoreError that says which place and what
    to do; nothing for any other error (the caller reports it). `url` may be the
    `file:` URI of a read-only engine."""
    from sqlalchemy.engine import make_url

    text = describe_error(error).lower()
    if "unable to open" not in text and "readonly" not in text:
        return
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or is_in_memory(parsed):
        return
    database = parsed.database or ""
    if database.startswith("file:"):
        database = unquote(database.removeprefix("file:").partition("?")[0])
    path = Path(database)
    if database and path.exists():
        _check_location(path, shown, reading=reading)


def check_writable_location(path: Path, shown: str) -> None:
    """StoreError, before any work, when results cannot be written to the SQLite file
    `path` (see `read_only_location`)."""
    _check_location(path, shown, reading=False)


def _check_location(path: Path, shown: str, *, reading: bool) -> None:
    problem = read_only_location(path)
    if problem is None:
        return
    if reading:
        # Reading a WAL-mode file needs its -shm file, which SQLite creates beside it.
        raise StoreError(
            f"cannot read {shown}: {problem}, and SQLite must create {path.name}-shm "
            f"beside a WAL-mode database to read it; copy {path.name} to a writable "
            "folder and pass the copy with --db"
        )
    raise StoreError(
        f"cannot record results in {shown}: {problem}; copy {path.name} to a writable "
        "folder (or get write permission) and pass the copy with --db"
    )


def read_only_location(path: Path) -> str | None:
    """Why results cannot be written to the SQLite file `path` (a read-only file system,
    a folder or file without write permission), or None. SQLite needs the folder too:
    a WAL-mode database keeps its -wal and -shm files beside the file."""
    folder = path.absolute().parent
    try:
        read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_fs = False
    if read_only_fs:
        return f"{folder} is on a read-only file system"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is read-only"
    return None


def probe_engine(url: str) -> Engine | None:
    """A read-only engine on the database that a writing `Store` will use, so that it is
    checked before anything in it changes; None for a SQLite file not created yet, once
    its folder is known to be writable (or to be the default's results/, made later)."""
    from sqlalchemy.exc import ArgumentError

    shown = mask_url(url)
    try:
        in_memory, path = is_in_memory(url), sqlite_path(url)
    except (ArgumentError, ValueError):
        in_memory, path = False, None  # create_store_engine says what is wrong with it
    if in_memory:
        check_not_in_memory(url, shown)
    if path is not None and not path.exists():
        folder = path.parent
        if not folder.is_dir() and url != DEFAULT_DB_URL:
            _check_sqlite_path(path, url, shown, create=True)  # the missing-folder error
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreError(f"cannot create {shown}: no write permission in {folder}")
        return None
    if path is not None:
        check_writable_location(path, shown)
    return create_store_engine(url, create=False, read_only=True)


def _check_sqlite_path(path: Path, url: str, shown: str, *, create: bool) -> None:
    if path.exists():
        return
    if not create:
        raise StoreError(
            f"no results database at {path} ({shown}); record a trial first or pass --db"
        )
    if path.parent.is_dir():
        return
    if url != DEFAULT_DB_URL:
        raise StoreError(
            f"folder {path.parent} of database {shown} does not exist: "
            f"create it first (mkdir -p {path.parent}) or check the path"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"cannot create the folder for {shown}: {error.strerror or error}"
        ) from None


def engine_options(url: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> dict[str, Any]:
    """`create_engine` keyword arguments for `url`: lock waits on SQLite, connect
    timeouts and pre-ping (a server may drop idle connections) on servers."""
    backend = url.partition(":")[0].partition("+")[0]
    if backend == "sqlite":
        return {"connect_args": {"timeout": busy_timeout_s}}
    if backend in ("postgresql", "postgres", "mysql", "mariadb"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {"pool_pre_ping": True}


def setup_sqlite(
    engine: Engine,
    *,
    every_transaction: bool = False,
    foreign_keys: bool = True,
    wal: bool = True,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
) -> None:
    """Serialise writers on a SQLite engine: write transactions take the lock up
    front (BEGIN IMMEDIATE). Every transaction does with `every_transaction`
    (Optuna's engine: its SELECT ... FOR UPDATE is ignored by SQLite). WAL mode
    and synchronous=NORMAL unless `wal` is False (a read-only connection cannot
    switch modes). Connections opened before this call are dropped."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's implicit BEGIN off: the `begin` listener below issues ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if foreign_keys:
                cursor.execute("PRAGMA foreign_keys = ON")
            mode = _set_wal(cursor) if wal else None
            if mode and str(mode[0]).lower() == "wal":
                # Safe with WAL: a crash loses no committed transaction that a
                # checkpoint reached, and the file is never corrupted.
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = every_transaction or connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    engine.dispose()


def _set_wal(cursor: Any) -> Any:
    """`PRAGMA journal_mode = WAL`, retried while the file is locked.

    Switching a new file to WAL needs an exclusive lock, and SQLite answers
    "database is locked" at once (without its busy handler) when another
    process opens the same new file at that moment; once in WAL this is a no-op."""
    import sqlite3

    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as error:
            if not is_locked_error(error) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.1))


def describe_error(error: BaseException) -> str:
    """One line about a database error: the driver's message, not SQLAlchemy's wrapper."""
    original = getattr(error, "orig", None)
    return first_line(original if original is not None else error)


def is_locked_error(error: BaseException) -> bool:
    text = str(getattr(error, "orig", None) or error).lower()
    return "database is locked" in text or "database table is locked" in text
