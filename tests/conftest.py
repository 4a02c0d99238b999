"""Shared fixtures.

Recorded trials (`record_trial`): one factory that writes a study, a candidate
and a trial with N epochs through the public Store API, for every test and
benchmark that needs a trial in a store.

PostgreSQL (`postgres_server`, `postgres_url`, `fresh_postgres_url`): a real
server started for the test session with pytest-postgresql's executor on the
local `pg_ctl` (Debian: the `postgresql` package, binaries in
/usr/lib/postgresql/<version>/bin, which is not on PATH). Tests that use them
are marked `postgres` and skip with the reason when no server binary exists.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

if TYPE_CHECKING:
    from harness.store import Store

# --- Recorded trials ------------------------------------------------------------------


class RecordedTrial(NamedTuple):
    study_id: int
    candidate_id: int
    trial_id: int


def record_trial(
    store: Store,
    *,
    study: str = "demo",
    study_id: int | None = None,
    arch: str = "RRR|IIII",
    kind: str = "candidate",
    family: str = "RI",
    candidate_id: int | None = None,
    params: int | None = 1_234_567,
    flops: int | None = 456_000_000,
    input_shape: tuple[int, ...] = (1, 48, 48),
    skeleton: Mapping[str, Any] | None = None,
    protocol: str = "paper",
    hyperparameters: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    seed: int = 1,
    data_spec: str = "synthetic",
    data_fingerprint: str = "fp0",
    optuna_trial_number: int | None = None,
    epochs: int = 3,
    status: str | None = "complete",
    val_acc: float | None = 0.5,
    test_acc: float | None = 0.45,
    **finish: Any,
) -> RecordedTrial:
    """A trial of `epochs` epochs in `store`, written as the trainer writes one.

    The study and the candidate are made (or found) unless their ids are given,
    so a benchmark can time the trial's own writes: start, one per epoch,
    finish. `status=None` leaves the trial running (not finished); other
    keywords go to `finish_trial` (reason, confusion, test_loss, ...).
    """
    if study_id is None:
        study_id = store.ensure_study(
            study, space="rir_orderings", objectives=["accuracy"], sampler="tpe"
        )
    if candidate_id is None:
        candidate_id = store.ensure_candidate(
            arch,
            kind=kind,
            family=family,
            params=params,
            flops=flops,
            input_shape=input_shape,
            num_classes=7,
            skeleton=skeleton,
        )
    trial_id = store.start_trial(
        study_id=study_id,
        candidate_id=candidate_id,
        protocol=protocol,
        hyperparameters={"lr": 1e-4, "batch": 64} if hyperparameters is None else hyperparameters,
        config={"protocol": protocol, "lr": 1e-4, "seed": seed} if config is None else config,
        seed=seed,
        data_spec=data_spec,
        data_fingerprint=data_fingerprint,
        label_mode="majority",
        device="cpu",
        environment={"torch": "2.x"},
        optuna_trial_number=optuna_trial_number,
    )
    for epoch in range(epochs):
        store.record_epoch(
            trial_id,
            epoch=epoch,
            train_loss=1.0 / (epoch + 1),
            train_acc=0.3 + 0.1 * epoch,
            val_loss=1.1 / (epoch + 1),
            val_acc=0.25 + 0.1 * epoch,
            lr=1e-4,
            seconds=2.0,
            images_per_s=1000.0,
        )
    if status is not None:
        finish.setdefault("best_epoch", epochs - 1 if epochs else None)
        store.finish_trial(trial_id, status=status, val_acc=val_acc, test_acc=test_acc, **finish)
    return RecordedTrial(study_id, candidate_id, trial_id)


@pytest.fixture(name="record_trial", scope="session")
def record_trial_fixture() -> Any:
    """`record_trial` (above) for tests: `record_trial(store, epochs=30, ...)`."""
    return record_trial


# --- PostgreSQL ------------------------------------------------------------------------

PG_USER = "postgres"  # the server's superuser name (initdb --username), trust auth on 127.0.0.1


def find_pg_ctl() -> str | None:
    """pg_ctl from $HARNESS_PG_CTL, PATH, `pg_config --bindir`, or Debian's and other
    usual install folders (newest version first); None when there is none."""
    candidates = [os.environ.get("HARNESS_PG_CTL", ""), shutil.which("pg_ctl") or ""]
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        candidates.append(os.path.join(bindir, "pg_ctl"))
    except (OSError, subprocess.SubprocessError):
        pass

    def version_key(path: str) -> tuple[int, ...]:
        parts = Path(path).parts
        digits = [p for p in parts if p.replace(".", "").isdigit()]
        return tuple(int(x) for x in digits[-1].split(".")) if digits else (0,)

    patterns = (
        "/usr/lib/postgresql/*/bin/pg_ctl",  # Debian, Ubuntu
        "/usr/pgsql-*/bin/pg_ctl",  # RHEL (PGDG)
        "/usr/local/pgsql/bin/pg_ctl",
        "/opt/homebrew/opt/postgresql@*/bin/pg_ctl",
        "/usr/local/opt/postgresql@*/bin/pg_ctl",
    )
    for pattern in patterns:
        candidates.extend(sorted(glob.glob(pattern), key=version_key, reverse=True))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _unprivileged_account() -> Any:
    """The passwd entry of `postgres` (made by Debian's package) or `nobody`; None if neither."""
    import pwd

    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _pg_ctl_as(account: Any, pg_ctl: str, folder: Path) -> str:
    """A pg_ctl stand-in that drops root to `account` first.

    PostgreSQL refuses to run as root, and pytest-postgresql calls its
    `executable` directly (initdb, start, status, stop), so when the tests run
    as root (containers, CI) it gets this wrapper instead of pg_ctl."""
    wrapper = folder / "pg_ctl_as_user"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"os.chdir({str(folder)!r})\n"
        "os.setgroups([])\n"
        f"os.setgid({account.pw_gid})\n"
        f"os.setuid({account.pw_uid})\n"
        f"os.environ['HOME'] = {str(folder)!r}\n"
        f"os.environ['USER'] = os.environ['LOGNAME'] = {account.pw_name!r}\n"
        f"os.execv({pg_ctl!r}, [{pg_ctl!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(stat.S_IRWXU)
    return str(wrapper)


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of database `dbname` on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        from pytest_postgresql.janitor import DatabaseJanitor

        DatabaseJanitor(user=self.user, host=self.host, port=self.port, dbname=dbname).init()
        return self.url(dbname)

    def drop_database(self, dbname: str) -> None:
        from pytest_postgresql.janitor import DatabaseJanitor

        DatabaseJanitor(user=self.user, host=self.host, port=self.port, dbname=dbname).drop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of our own for the session (skips when there is no pg_ctl)."""
    pg_ctl = find_pg_ctl()
    if pg_ctl is None:
        pytest.skip(
            "no PostgreSQL server binary (pg_ctl): install Debian's `postgresql` package "
            "or set HARNESS_PG_CTL=/path/to/pg_ctl"
        )
    try:
        import port_for
        from pytest_postgresql.executors import PostgreSQLExecutor
    except ImportError as error:
        pytest.skip(f"pytest-postgresql is not installed: {error}")

    folder = Path(tempfile.mkdtemp(prefix="harness-pg-"))
    executable = pg_ctl
    if os.geteuid() == 0:
        account = _unprivileged_account()
        if account is None:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip(
                "running as root and no unprivileged account (postgres, nobody) to run PostgreSQL"
            )
        os.chown(folder, account.pw_uid, account.pw_gid)
        executable = _pg_ctl_as(account, pg_ctl, folder)

    port = port_for.select_random()
    executor = PostgreSQLExecutor(
        executable=executable,
        host="127.0.0.1",
        port=port,
        datadir=str(folder / "data"),
        unixsocketdir=str(folder),
        logfile=str(folder / "postgresql.log"),
        startparams="-w",
        dbname="harness",
        user=PG_USER,
        # A throwaway cluster: durability off for speed.
        postgres_options="-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
    )
    try:
        executor.start()
    except Exception as error:
        log = folder / "postgresql.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        if executor.running():
            executor.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL ({pg_ctl}) did not start: {error}\n{tail}") from error
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user=PG_USER)
    finally:
        try:
            executor.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh database on the session's server, shared by the session."""
    dbname = f"harness_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(dbname)
    yield url
    postgres_server.drop_database(dbname)


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database for one test."""
    dbname = f"harness_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(dbname)
    yield url
    postgres_server.drop_database(dbname)


# --- Dataset cache and artifacts -------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Searches keep weights (`--keep-weights top`) in $HARNESS_ARTIFACTS: one folder per
    test session, never results/artifacts under the working directory (a PostgreSQL
    database has no folder of its own to put them beside)."""
    yield from _env_folder(tmp_path_factory, "HARNESS_ARTIFACTS", "harness-artifacts")


@pytest.fixture(scope="session", autouse=True)
def data_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Parsed datasets are cached in $HARNESS_CACHE: one folder per test session, never ~/.cache."""
    yield from _env_folder(tmp_path_factory, "HARNESS_CACHE", "harness-cache")


def _env_folder(factory: pytest.TempPathFactory, variable: str, name: str) -> Iterator[Path]:
    """A fresh folder named in $`variable` for the session, the variable put back after
    (session fixtures cannot take the function-scoped `monkeypatch`)."""
    folder = factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, str(folder))
        yield folder
