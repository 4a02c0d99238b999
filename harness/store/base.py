"""`StoreBase`: opening the database and running one transaction at a time.

Each write is one short transaction of its own, so a process killed at any
point leaves the database consistent (at worst a trial stays `running`; see
`harness.store.liveness` for who marks it `interrupted`). There is no
module-level engine or session: every store owns its engine; `close()`
releases it.

A writing store changes nothing until it is first used: opening it checks the
database read-only (reachable, ours, empty or Optuna's, not newer than this
code, in a writable place); the file, its tables, a migration and WAL mode come
with the first read or write. So a command refused after opening its store
(bad data, say) leaves no new file and no changed one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from harness.errors import StoreError
from harness.store.engine import (
    WRITE_OPTION,
    create_store_engine,
    describe_error,
    is_locked_error,
    mask_url,
    probe_engine,
    resolve_db_url,
)
from harness.store.migrations import check_migratable, check_readable, migrate

__all__ = ["StoreBase", "check_choice", "columns_of"]

T = TypeVar("T")
S = TypeVar("S", bound="StoreBase")

# A write that still finds the database locked after the busy timeout is retried this often.
_LOCK_RETRIES = 3


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def columns_of(model: type, row: Any) -> dict[str, Any]:
    """Every column of an ORM row, by name."""
    return {column.key: getattr(row, column.key) for column in model.__table__.columns}


class StoreBase:
    """The results database at one URL (see `resolve_db_url`).

    Opening checks the database without changing it; the first use creates the
    tables or migrates an older schema (see the module's docstring). Any failure
    to reach or read the database is a `StoreError` naming the (masked) URL.
    `create=False` opens it read-only, for commands that only read (trials,
    studies, report): no file, folder, table or migration is created, SQLite
    opens the file with `mode=ro`, and every write method raises StoreError.
    """

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        self.raw_url = resolve_db_url(url)
        self.url = mask_url(self.raw_url)
        self.read_only = not create
        self._engine: Engine | None = None
        if self.read_only:
            self._bind(create_store_engine(self.raw_url, read_only=True), check_readable)
            return
        probe = probe_engine(self.raw_url)
        if probe is not None:
            try:
                check_migratable(probe, shown=self.url)
            finally:
                probe.dispose()

    @property
    def engine(self) -> Engine:
        """The engine; a writing store's first use creates or migrates the tables."""
        return self._prepared()

    def prepare(self: S) -> S:
        """Create or migrate the tables now rather than at the first read or write (a
        database made ready before its workers start, say); returns the store."""
        self._prepared()
        return self

    def _prepared(self) -> Engine:
        if self._engine is None:
            self._bind(create_store_engine(self.raw_url), migrate)
        assert self._engine is not None
        return self._engine

    def _bind(self, engine: Engine, prepare: Callable[..., int]) -> None:
        try:
            prepare(engine, shown=self.url)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        self._reader = sessionmaker(bind=engine, expire_on_commit=False)
        self._writer = sessionmaker(
            bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def _session(self, *, write: bool) -> Session:
        self._prepared()
        return (self._writer if write else self._reader)()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _write(self, work: Callable[[Session], T], *, what: str, retry_conflict: bool = False) -> T:
        """Run `work` in one write transaction; retry it if the database stayed locked
        (or, with `retry_conflict`, if a concurrent insert won a unique constraint)."""
        if self.read_only:
            raise StoreError(f"{what} in {self.url}: the store was opened read-only")
        for attempt in range(_LOCK_RETRIES):
            last = attempt == _LOCK_RETRIES - 1
            try:
                with self._session(write=True) as session, session.begin():
                    return work(session)
            except IntegrityError as error:
                if retry_conflict and not last:
                    continue
                raise StoreError(f"{what} in {self.url}: {describe_error(error)}") from None
            except OperationalError as error:
                if is_locked_error(error) and not last:
                    time.sleep(random.uniform(0.05, 0.5))
                    continue
                raise StoreError(f"{what} in {self.url}: {describe_error(error)}") from None
            except SQLAlchemyError as error:
                raise StoreError(f"{what} in {self.url}: {describe_error(error)}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, work: Callable[[Session], T], *, what: str) -> T:
        try:
            with self._session(write=False) as session, session.begin():
                return work(session)
        except SQLAlchemyError as error:
            raise StoreError(f"{what} from {self.url}: {describe_error(error)}") from None
