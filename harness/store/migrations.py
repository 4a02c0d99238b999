"""Schema versions and the steps between them.

The version lives in `harness_meta` (key `schema_version`). A database with no
`harness_meta` table is version 0: it has none of our tables yet (it may hold
Optuna's), and migrating it creates the current schema in one step. An older
database is upgraded one version at a time by the functions in `STEPS`, each
inside the same transaction as the version bump, so an interrupted upgrade
leaves the old version intact (SQLite and PostgreSQL both have transactional
DDL). A database newer than this code is refused: upgrade harness.

To change the schema: edit `models.py`, bump `SCHEMA_VERSION`, and add
`STEPS[old] = step` where `step(connection)` brings a version-`old` database
to `old + 1`, using `operations(connection)` (Alembic's operations, with
`batch_alter_table` for SQLite). Add the old shape's DDL to the migration
tests (tests/test_store.py, tests/test_store_migrations.py) so that a file
written by the old version keeps being opened.

Only our own databases are changed: `check_ours` refuses one that has no
`harness_meta` but holds tables, unless they are all Optuna's (its storage, which
harness shares). Another program's file gets no tables and keeps its journal mode.

Read-only commands (`Store(create=False)`) never migrate: they read a database
of version `OLDEST_READABLE` or newer as it is, so a step after that version
must not drop or rename anything the reads use (2 -> 3 only swaps an index, 3 -> 4
only adds a table: reading estimates from a version-3 file finds none; 4 -> 5 the
same for weights links).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.errors import StoreError
from harness.store.engine import WRITE_OPTION, describe_error, explain_open_error, mask_url
from harness.store.models import Base, Meta

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "OLDEST_READABLE",
    "OPTUNA_TABLES",
    "SCHEMA_VERSION",
    "STEPS",
    "check_migratable",
    "check_ours",
    "check_readable",
    "migrate",
    "operations",
    "schema_version",
]

SCHEMA_VERSION = 5
OLDEST_READABLE = 2


def _add_test_predictions(connection: Connection) -> None:
    """1 -> 2: per-image test predictions and targets of each trial (McNemar's test)."""
    from sqlalchemy import JSON, Column

    with operations(connection).batch_alter_table("harness_trials") as batch:
        batch.add_column(Column("test_predictions", JSON, nullable=True))
        batch.add_column(Column("test_targets", JSON, nullable=True))


def _reuse_index(connection: Connection) -> None:
    """2 -> 3: the reuse lookup's index covers status too; it replaces its prefix
    (config_hash, data_fingerprint, seed), which every query of the old one can use."""
    from sqlalchemy import inspect

    ops = operations(connection)
    ops.create_index(
        "ix_harness_trials_reuse",
        "harness_trials",
        ["config_hash", "data_fingerprint", "seed", "status"],
    )
    names = {index["name"] for index in inspect(connection).get_indexes("harness_trials")}
    if "ix_harness_trials_dedup" in names:
        ops.drop_index("ix_harness_trials_dedup", table_name="harness_trials")


def _add_estimates(connection: Connection) -> None:
    """3 -> 4: the table of cheap estimates (zero-cost proxies, supernet scores)."""
    from harness.store.models import Estimate

    Estimate.__table__.create(connection)


def _add_weights(connection: Connection) -> None:
    """4 -> 5: the table linking trials to their kept weights (Optuna artifacts)."""
    from harness.store.models import WeightsLink

    WeightsLink.__table__.create(connection)


# STEPS[v] upgrades a version-v database to v + 1 (v >= 1; version 0 is created fresh).
STEPS: dict[int, Callable[[Connection], None]] = {
    1: _add_test_predictions,
    2: _reuse_index,
    3: _add_estimates,
    4: _add_weights,
}

# The tables of Optuna's RDBStorage (optuna/storages/_rdb/models.py; a test compares
# them with the installed Optuna's) and the Alembic stamp it writes beside them.
OPTUNA_TABLES = frozenset(
    {
        "studies",
        "study_directions",
        "study_system_attributes",
        "study_user_attributes",
        "trial_heartbeats",
        "trial_intermediate_values",
        "trial_params",
        "trial_system_attributes",
        "trial_user_attributes",
        "trial_values",
        "trials",
        "version_info",
        "alembic_version",
    }
)

# Key of PostgreSQL's advisory lock held while migrating ("harness" in ASCII, fits a bigint).
_PG_LOCK_KEY = 0x68_61_72_6E_65_73_73


def schema_version(connection: Connection) -> int:
    """The version stamped in the database; 0 when it has no harness tables."""
    from sqlalchemy import inspect, select

    if not inspect(connection).has_table(Meta.__tablename__):
        return 0
    value = connection.execute(
        select(Meta.value).where(Meta.key == "schema_version")
    ).scalar_one_or_none()
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        raise StoreError(
            f"harness_meta.schema_version is {value!r}, not a number: not a harness database?"
        ) from None


def check_ours(connection: Connection, url: str) -> None:
    """StoreError unless a database without harness tables (version 0) is empty or
    Optuna's storage: another program's tables are not ours to add to."""
    from sqlalchemy import inspect

    inspector = inspect(connection)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    if not names:
        return
    if names <= OPTUNA_TABLES and "version_info" in names:
        columns = {column["name"] for column in inspector.get_columns("version_info")}
        if {"schema_version", "library_version"} <= columns:
            return
    listed = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
    raise StoreError(
        f"{url} is not a harness database: it holds another program's tables ({listed}), "
        "and harness changes nothing in it; give harness a file of its own with --db"
    )


def check_migratable(engine: Engine, *, shown: str | None = None) -> int:
    """The database's version, once known to be ours (or empty, or Optuna's) and not
    newer than this code; StoreError otherwise. Writes nothing: `engine` may be
    read-only, so that a refused file is left as it was."""
    from sqlalchemy.exc import SQLAlchemyError

    url = shown or mask_url(engine.url)
    try:
        with engine.connect() as connection:
            found = schema_version(connection)
            if found == 0:
                check_ours(connection, url)
    except SQLAlchemyError as error:
        explain_open_error(engine.url, error, url, reading=True)
        raise StoreError(f"cannot read {url}: {describe_error(error)}") from None
    _check_not_newer(found, url)
    return found


def operations(connection: Connection) -> Any:
    """Alembic's `Operations` bound to `connection`, for writing migration steps."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    return Operations(MigrationContext.configure(connection))


def check_readable(engine: Engine, *, shown: str | None = None) -> int:
    """The database's version, refusing (StoreError) one that a read-only command
    cannot read as it is: no harness tables (an empty or a foreign file), older
    than `OLDEST_READABLE`, or newer than this code. Writes nothing."""
    from sqlalchemy.exc import SQLAlchemyError

    url = shown or mask_url(engine.url)
    try:
        with engine.connect() as connection:
            found = schema_version(connection)
    except SQLAlchemyError as error:
        explain_open_error(engine.url, error, url, reading=True)
        raise StoreError(f"cannot read {url}: {describe_error(error)}") from None
    if found == 0:
        raise StoreError(
            f"no harness results in {url} (an empty file, or not a harness database); "
            "record a trial first or check --db"
        )
    _check_not_newer(found, url)
    if found < OLDEST_READABLE:
        raise StoreError(
            f"{url} has results schema version {found}, too old to read as it is: run any "
            f"command that records results (harness train, run) on it once to upgrade it"
        )
    return found


def migrate(engine: Engine, *, shown: str | None = None) -> int:
    """Bring the database to `SCHEMA_VERSION`; return the version it had before.

    Safe to call from several processes at once: the upgrade runs under the
    database's write lock (BEGIN IMMEDIATE on SQLite, an advisory lock on
    PostgreSQL) and re-reads the version once it holds it.
    """
    from sqlalchemy.exc import SQLAlchemyError

    url = shown or mask_url(engine.url)
    try:
        found = check_migratable(engine, shown=url)
        if found == SCHEMA_VERSION:
            return found
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
            if connection.dialect.name == "postgresql":
                from sqlalchemy import func, select

                connection.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
            found = schema_version(connection)
            if found == 0:
                check_ours(connection, url)  # another process may have written it meanwhile
            _check_not_newer(found, url)
            _upgrade(connection, found)
        return found
    except StoreError:
        raise
    except SQLAlchemyError as error:
        raise StoreError(f"cannot prepare the tables in {url}: {describe_error(error)}") from None


def _check_not_newer(found: int, url: str) -> None:
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"{url} has results schema version {found}, newer than this harness knows "
            f"({SCHEMA_VERSION}): upgrade harness (pip install -U harness) to open it"
        )


def _upgrade(connection: Connection, found: int) -> None:
    if found == 0:
        from harness import __version__

        Base.metadata.create_all(connection)
        _stamp(connection, SCHEMA_VERSION)
        _set_meta(connection, "created_with", f"harness {__version__}")
        return
    for version in range(found, SCHEMA_VERSION):
        step = STEPS.get(version)
        if step is None:
            raise StoreError(f"no migration from results schema version {version} to {version + 1}")
        step(connection)
        _stamp(connection, version + 1)


def _stamp(connection: Connection, version: int) -> None:
    _set_meta(connection, "schema_version", str(version))


def _set_meta(connection: Connection, key: str, value: str) -> None:
    from sqlalchemy import insert, select, update

    if connection.execute(select(Meta.key).where(Meta.key == key)).first():
        connection.execute(update(Meta).where(Meta.key == key).values(value=value))
    else:
        connection.execute(insert(Meta).values(key=key, value=value))
