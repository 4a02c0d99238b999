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
Read transactions use a plain (deferred) BEGIN.
"""

from __future__ import annotations

import importlib.util
import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import StoreError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

__all__ = [
    "BUSY_TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
    "DEFAULT_DB_URL",
    "ENV_VAR",
    "create_store_engine",
    "mask_url",
    "resolve_db_url",
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
    """The URL with its password replaced by ***, for messages and printing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        text = str(url)
        # Unparseable: hide anything between "://user:" and "@".
        head, sep, rest = text.partition("://")
        if sep and "@" in rest:
            auth, _, host = rest.rpartition("@")
            user = auth.split(":", 1)[0]
            return f"{head}://{user}:***@{host}" if ":" in auth else text
        return text


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


def create_store_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for `url`, checked by connecting once; StoreError on any failure.

    `create=False` refuses to create a missing SQLite file (for read-only commands).
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise StoreError(f"cannot parse database URL {shown!r}: {first_line(error)}") from None

    backend = parsed.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            if not path.exists() and not create:
                raise StoreError(
                    f"no results database at {path} ({shown}); record a trial first or pass --db"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(
                    f"cannot create the folder for {shown}: {error.strerror or error}"
                ) from None
        connect_args["timeout"] = BUSY_TIMEOUT_S
    elif backend in ("postgresql", "mysql", "mariadb"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S

    try:
        engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=backend != "sqlite")
    except NoSuchModuleError:
        raise StoreError(
            f"unknown database kind in URL {shown!r} (try sqlite:///PATH or postgresql://...)"
        ) from None
    except (ImportError, ArgumentError, TypeError, ValueError) as error:
        raise StoreError(f"cannot use database URL {shown!r}: {first_line(error)}") from None

    if backend == "sqlite":
        _setup_sqlite(engine, event)
    try:
        with engine.connect():
            pass
    except (SQLAlchemyError, OSError) as error:
        engine.dispose()
        raise StoreError(f"cannot open database {shown}: {describe_error(error)}") from None
    return engine


def _setup_sqlite(engine: Engine, event: Any) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's implicit BEGIN off: the `begin` listener below issues ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            mode = _set_wal(cursor)
            if mode and str(mode[0]).lower() == "wal":
                # Safe with WAL: a crash loses no committed transaction that a
                # checkpoint reached, and the file is never corrupted.
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


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
