"""`Store`: the few reads and writes the rest of the harness needs.

Each write is one short transaction of its own, so a process killed at any
point leaves the database consistent (at worst a trial stays `running`, which
`mark_stale_running` turns into `interrupted`). There is no module-level
engine or session: every `Store` owns its engine; `close()` releases it.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from harness.errors import StoreError
from harness.store.engine import (
    WRITE_OPTION,
    create_store_engine,
    describe_error,
    is_locked_error,
    mask_url,
    resolve_db_url,
)
from harness.store.frames import (
    EPOCH_FRAME_COLUMNS,
    LATENCY_FRAME_COLUMNS,
    NOT_TRIAL_COLUMNS,
    STUDY_FRAME_COLUMNS,
    TRIAL_FRAME_COLUMNS,
    tidy,
)
from harness.store.migrations import migrate
from harness.store.models import (
    CANDIDATE_KINDS,
    FAMILIES,
    TRIAL_STATUSES,
    Candidate,
    Epoch,
    Latency,
    Study,
    Trial,
    utcnow,
)
from harness.store.values import config_hash, json_hash, plain, to_float, to_int, to_json

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Store", "config_hash", "plain"]

T = TypeVar("T")

# A write that still finds the database locked after the busy timeout is retried this often.
_LOCK_RETRIES = 3


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _columns(model: type, row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in model.__table__.columns}


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


class Store:
    """The results database at one URL (see `resolve_db_url`).

    Opening creates the tables or migrates an older schema; any failure to
    reach or read the database is a `StoreError` naming the (masked) URL.
    `create=False` refuses to create a missing SQLite file (read-only commands).
    """

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        self.raw_url = resolve_db_url(url)
        self.url = mask_url(self.raw_url)
        self.engine = create_store_engine(self.raw_url, create=create)
        try:
            migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._reader = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            bind=self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions ------------------------------------------------------------------

    def _write(self, work: Callable[[Session], T], *, what: str, retry_conflict: bool = False) -> T:
        """Run `work` in one write transaction; retry it if the database stayed locked
        (or, with `retry_conflict`, if a concurrent insert won a unique constraint)."""
        for attempt in range(_LOCK_RETRIES):
            last = attempt == _LOCK_RETRIES - 1
            try:
                with self._writer() as session, session.begin():
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
            with self._reader() as session, session.begin():
                return work(session)
        except SQLAlchemyError as error:
            raise StoreError(f"{what} from {self.url}: {describe_error(error)}") from None

    # -- writes ------------------------------------------------------------------------

    def ensure_study(
        self,
        name: str,
        *,
        space: str | None = None,
        objectives: Iterable[str] | str | None = None,
        sampler: str | None = None,
        data_spec: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> int:
        """The id of study `name`, created on first use. Fields left empty on an
        existing study are filled in; fields already set are kept."""
        if isinstance(objectives, str):
            objectives = [part.strip() for part in objectives.split(",") if part.strip()]
        values = {
            "space": space,
            "objectives": to_json(list(objectives)) if objectives is not None else None,
            "sampler": sampler,
            "data_spec": data_spec,
            "config": to_json(config),
        }

        def work(session: Session) -> int:
            study = session.scalars(select(Study).where(Study.name == name)).one_or_none()
            if study is None:
                study = Study(name=name, **values)
                session.add(study)
                session.flush()
            else:
                for key, value in values.items():
                    if value is not None and getattr(study, key) is None:
                        setattr(study, key, value)
            return study.id

        return self._write(work, what=f"cannot record study {name!r}", retry_conflict=True)

    def ensure_candidate(
        self,
        arch: str,
        *,
        kind: str,
        family: str,
        params: int | None,
        flops: int | None,
        input_shape: Iterable[int] | None,
        num_classes: int | None,
        skeleton: dict[str, Any] | None,
    ) -> int:
        """The id of (arch, skeleton), created on first use. `flops` are fvcore forward
        MACs per image at `input_shape`. Missing measurements of an existing
        candidate are filled in."""
        _check(kind, CANDIDATE_KINDS, "kind")
        _check(family, FAMILIES, "family")
        skeleton_json = to_json(skeleton)
        skeleton_hash = "" if skeleton is None else json_hash(skeleton)
        measured = {
            "params": to_int(params),
            "flops": to_int(flops),
            "input_shape": to_json(list(input_shape)) if input_shape is not None else None,
            "num_classes": to_int(num_classes),
        }

        def work(session: Session) -> int:
            query = select(Candidate).where(
                Candidate.arch == arch, Candidate.skeleton_hash == skeleton_hash
            )
            candidate = session.scalars(query).one_or_none()
            if candidate is None:
                candidate = Candidate(
                    arch=arch,
                    skeleton_hash=skeleton_hash,
                    kind=kind,
                    family=family,
                    skeleton=skeleton_json,
                    **measured,
                )
                session.add(candidate)
                session.flush()
            else:
                for key, value in measured.items():
                    if value is not None and getattr(candidate, key) is None:
                        setattr(candidate, key, value)
            return candidate.id

        return self._write(work, what=f"cannot record candidate {arch!r}", retry_conflict=True)

    def start_trial(
        self,
        *,
        study_id: int,
        candidate_id: int,
        protocol: str | None,
        hyperparameters: dict[str, Any] | None,
        config: dict[str, Any],
        seed: int | None,
        data_spec: str | None,
        data_fingerprint: str | None,
        label_mode: str | None,
        device: str | None,
        environment: dict[str, Any] | None,
        optuna_trial_number: int | None = None,
        identity: dict[str, Any] | None = None,
    ) -> int:
        """A new trial in status `running`; returns its id. `config_hash` is
        `config_hash(identity or config)`: the dedup key with arch, data
        fingerprint and seed. `identity` is the part of `config` that makes two
        runs the same experiment (not the device or thread count)."""
        values = dict(
            study_id=study_id,
            candidate_id=candidate_id,
            optuna_trial_number=to_int(optuna_trial_number),
            protocol=protocol,
            hyperparameters=to_json(hyperparameters),
            config=to_json(config),
            config_hash=config_hash(identity if identity is not None else config),
            seed=to_int(seed),
            data_spec=data_spec,
            data_fingerprint=data_fingerprint,
            label_mode=label_mode,
            status="running",
            device=device,
            environment=to_json(environment),
            worker=_this_worker(),
            started_at=utcnow(),
        )

        def work(session: Session) -> int:
            trial = Trial(**values)
            session.add(trial)
            session.flush()
            return trial.id

        return self._write(work, what="cannot start a trial")

    def copy_trial(
        self, trial_id: int, *, study_id: int, optuna_trial_number: int | None = None
    ) -> int:
        """A copy of a finished trial (its results and epochs) recorded under another
        study; returns the new id. A result reused from another study then counts in
        this study's leaderboard and comparisons like one trained for it."""

        def work(session: Session) -> int:
            source = session.get(Trial, trial_id)
            if source is None:
                raise StoreError(f"no trial {trial_id} in {self.url}")
            values = {
                c.key: getattr(source, c.key) for c in Trial.__table__.columns if c.key != "id"
            }
            values.update(
                study_id=study_id,
                optuna_trial_number=to_int(optuna_trial_number),
                reason=f"reused from trial {trial_id}"
                + (f"; {source.reason}" if source.reason else ""),
            )
            copy = Trial(**values)
            session.add(copy)
            session.flush()
            epochs = session.scalars(select(Epoch).where(Epoch.trial_id == trial_id)).all()
            for epoch in epochs:
                row = {c.key: getattr(epoch, c.key) for c in Epoch.__table__.columns}
                row.pop("id")
                session.add(Epoch(**{**row, "trial_id": copy.id}))
            return copy.id

        return self._write(work, what=f"cannot copy trial {trial_id}")

    def record_epoch(
        self,
        trial_id: int,
        *,
        epoch: int,
        train_loss: float | None,
        train_acc: float | None,
        val_loss: float | None,
        val_acc: float | None,
        lr: float | None,
        seconds: float | None,
        images_per_s: float | None,
    ) -> None:
        """Metrics of one epoch; writing the same epoch again replaces them."""
        values = {
            "train_loss": to_float(train_loss),
            "train_acc": to_float(train_acc),
            "val_loss": to_float(val_loss),
            "val_acc": to_float(val_acc),
            "lr": to_float(lr),
            "seconds": to_float(seconds),
            "images_per_s": to_float(images_per_s),
            "recorded_at": utcnow(),
        }

        def work(session: Session) -> None:
            query = select(Epoch).where(Epoch.trial_id == trial_id, Epoch.epoch == int(epoch))
            row = session.scalars(query).one_or_none()
            if row is None:
                session.add(Epoch(trial_id=trial_id, epoch=int(epoch), **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

        self._write(
            work, what=f"cannot record epoch {epoch} of trial {trial_id}", retry_conflict=True
        )

    def finish_trial(
        self,
        trial_id: int,
        *,
        status: str,
        reason: str | None = None,
        best_epoch: int | None = None,
        val_acc: float | None = None,
        val_loss: float | None = None,
        test_acc: float | None = None,
        test_loss: float | None = None,
        per_class_acc: list[float] | None = None,
        confusion: list[list[int]] | None = None,
        class_names: list[str] | None = None,
        train_seconds: float | None = None,
        eval_seconds: float | None = None,
        images_per_s: float | None = None,
        test_predictions: list[int] | None = None,
        test_targets: list[int] | None = None,
    ) -> None:
        """Set the final status and results; arguments left None keep what is stored."""
        _check(
            status, tuple(s for s in TRIAL_STATUSES if s != "running"), "a finished trial's status"
        )
        values = {
            "reason": reason,
            "best_epoch": to_int(best_epoch),
            "val_acc": to_float(val_acc),
            "val_loss": to_float(val_loss),
            "test_acc": to_float(test_acc),
            "test_loss": to_float(test_loss),
            "per_class_acc": to_json(per_class_acc),
            "confusion": to_json(confusion),
            "class_names": to_json(class_names),
            "train_seconds": to_float(train_seconds),
            "eval_seconds": to_float(eval_seconds),
            "images_per_s": to_float(images_per_s),
            "test_predictions": to_json(test_predictions),
            "test_targets": to_json(test_targets),
        }

        def work(session: Session) -> None:
            trial = session.get(Trial, trial_id)
            if trial is None:
                raise StoreError(f"no trial {trial_id} in {self.url}")
            trial.status = status
            trial.finished_at = utcnow()
            for key, value in values.items():
                if value is not None:
                    setattr(trial, key, value)

        self._write(work, what=f"cannot finish trial {trial_id}")

    def record_latency(
        self,
        candidate_id: int,
        *,
        device: str,
        batch: int,
        threads: int | None,
        median_ms: float | None,
        p90_ms: float | None,
        min_ms: float | None,
        max_ms: float | None,
        repeats: int | None,
        trial_id: int | None = None,
    ) -> None:
        values = dict(
            candidate_id=candidate_id,
            trial_id=trial_id,
            device=device,
            batch=int(batch),
            threads=to_int(threads),
            median_ms=to_float(median_ms),
            p90_ms=to_float(p90_ms),
            min_ms=to_float(min_ms),
            max_ms=to_float(max_ms),
            repeats=to_int(repeats),
            created_at=utcnow(),
        )
        self._write(
            lambda session: session.add(Latency(**values)),
            what=f"cannot record latency of candidate {candidate_id}",
        )

    def mark_stale_running(self, older_than_s: float) -> int:
        """Mark `running` trials whose worker is gone as `interrupted`; return how many.

        A trial is stale when its worker ran on this host and that process no
        longer exists, or when it showed no sign of life (start or last epoch)
        for `older_than_s` seconds, wherever it ran.
        """
        host = socket.gethostname()
        cutoff = utcnow() - dt.timedelta(seconds=older_than_s)

        def work(session: Session) -> int:
            last_epoch = (
                select(Epoch.trial_id, func.max(Epoch.recorded_at).label("last"))
                .group_by(Epoch.trial_id)
                .subquery()
            )
            rows = session.execute(
                select(Trial, last_epoch.c.last)
                .outerjoin(last_epoch, last_epoch.c.trial_id == Trial.id)
                .where(Trial.status == "running")
            ).all()
            marked = 0
            for trial, last in rows:
                worker_host, _, pid = (trial.worker or "").rpartition(":")
                reason = None
                if worker_host == host and pid.isdigit() and not _pid_alive(int(pid)):
                    reason = f"worker {trial.worker} is gone"
                elif max(filter(None, (trial.started_at, last))) < cutoff:
                    reason = f"no progress for more than {older_than_s:g} s (worker {trial.worker})"
                if reason:
                    trial.status = "interrupted"
                    trial.reason = reason
                    trial.finished_at = utcnow()
                    marked += 1
            return marked

        return self._write(work, what="cannot mark stale trials")

    # -- reads -------------------------------------------------------------------------

    def find_complete_trial(
        self, *, arch: str, config_hash: str, data_fingerprint: str | None, seed: int | None
    ) -> dict[str, Any] | None:
        """The latest complete trial with this architecture, config hash, data and seed."""

        def work(session: Session) -> dict[str, Any] | None:
            query = (
                select(Trial.id)
                .join(Candidate, Candidate.id == Trial.candidate_id)
                .where(
                    Candidate.arch == arch,
                    Trial.config_hash == config_hash,
                    Trial.data_fingerprint == data_fingerprint
                    if data_fingerprint is not None
                    else Trial.data_fingerprint.is_(None),
                    Trial.seed == seed if seed is not None else Trial.seed.is_(None),
                    Trial.status == "complete",
                )
                .order_by(Trial.id.desc())
                .limit(1)
            )
            trial_id = session.scalars(query).first()
            return None if trial_id is None else self._trial_dict(session, trial_id)

        return self._read(work, what="cannot look up trials")

    def trial(self, trial_id: int) -> dict[str, Any]:
        """Every column of the trial, plus `study`, `arch`, `kind`, `family`, `params`, `flops`."""

        def work(session: Session) -> dict[str, Any]:
            found = self._trial_dict(session, trial_id)
            if found is None:
                raise StoreError(f"no trial {trial_id} in {self.url}")
            return found

        return self._read(work, what=f"cannot read trial {trial_id}")

    @staticmethod
    def _trial_dict(session: Session, trial_id: int) -> dict[str, Any] | None:
        row = session.execute(
            select(Trial, Study.name, Candidate)
            .join(Study, Study.id == Trial.study_id)
            .join(Candidate, Candidate.id == Trial.candidate_id)
            .where(Trial.id == trial_id)
        ).first()
        if row is None:
            return None
        trial, study_name, candidate = row
        found = _columns(Trial, trial)
        found.update(
            study=study_name,
            arch=candidate.arch,
            kind=candidate.kind,
            family=candidate.family,
            params=candidate.params,
            flops=candidate.flops,
        )
        return found

    def epochs(self, trial_id: int) -> list[dict[str, Any]]:
        """The trial's epochs in order, as dicts of the epoch columns (without `id`)."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.scalars(
                select(Epoch).where(Epoch.trial_id == trial_id).order_by(Epoch.epoch)
            )
            return [{k: v for k, v in _columns(Epoch, row).items() if k != "id"} for row in rows]

        return self._read(work, what=f"cannot read the epochs of trial {trial_id}")

    # -- frames ------------------------------------------------------------------------

    def trials_frame(self, study: str | None = None, status: str | None = None) -> pd.DataFrame:
        """One row per trial (columns `TRIAL_FRAME_COLUMNS`), ordered by id, joined with
        its study and candidate, its number of recorded epochs, and the candidate's
        fastest batch-1 latency (`latency_ms` median, with its p90, device, threads)."""
        if status is not None:
            _check(status, TRIAL_STATUSES, "status")

        def work(session: Session) -> tuple[list[Any], list[Any]]:
            epoch_counts = (
                select(Epoch.trial_id, func.count().label("epochs"))
                .group_by(Epoch.trial_id)
                .subquery()
            )
            query = (
                select(
                    Trial.id.label("trial_id"),
                    Study.name.label("study"),
                    Candidate.arch,
                    Candidate.kind,
                    Candidate.family,
                    Candidate.params,
                    Candidate.flops,
                    Candidate.input_shape,
                    Candidate.num_classes,
                    func.coalesce(epoch_counts.c.epochs, 0).label("epochs"),
                    *(
                        getattr(Trial, name)
                        for name in TRIAL_FRAME_COLUMNS
                        if name not in NOT_TRIAL_COLUMNS and name != "trial_id"
                    ),
                )
                .join(Study, Study.id == Trial.study_id)
                .join(Candidate, Candidate.id == Trial.candidate_id)
                .outerjoin(epoch_counts, epoch_counts.c.trial_id == Trial.id)
                .order_by(Trial.id)
            )
            if study is not None:
                query = query.where(Study.name == study)
            if status is not None:
                query = query.where(Trial.status == status)
            trials = [dict(row) for row in session.execute(query).mappings()]
            latencies = session.execute(
                select(
                    Latency.candidate_id,
                    Latency.median_ms.label("latency_ms"),
                    Latency.p90_ms.label("latency_p90_ms"),
                    Latency.device.label("latency_device"),
                    Latency.threads.label("latency_threads"),
                )
                .where(Latency.batch == 1, Latency.median_ms.is_not(None))
                .order_by(Latency.candidate_id, Latency.median_ms)
            ).mappings()
            return trials, [dict(row) for row in latencies]

        import pandas as pd

        trials, latencies = self._read(work, what="cannot read trials")
        frame = pd.DataFrame(
            trials, columns=[c for c in TRIAL_FRAME_COLUMNS if not c.startswith("latency")]
        )
        fastest = pd.DataFrame(
            latencies,
            columns=[
                "candidate_id",
                "latency_ms",
                "latency_p90_ms",
                "latency_device",
                "latency_threads",
            ],
        ).drop_duplicates("candidate_id", keep="first")
        frame = frame.merge(fastest, on="candidate_id", how="left")
        return tidy(frame[list(TRIAL_FRAME_COLUMNS)])

    def epochs_frame(self, trial_ids: Iterable[int] | None = None) -> pd.DataFrame:
        """One row per recorded epoch (columns `EPOCH_FRAME_COLUMNS`), by trial and epoch."""
        wanted = None if trial_ids is None else sorted({int(t) for t in trial_ids})

        def work(session: Session) -> list[dict[str, Any]]:
            query = select(*(getattr(Epoch, c) for c in EPOCH_FRAME_COLUMNS)).order_by(
                Epoch.trial_id, Epoch.epoch
            )
            if wanted is not None:
                query = query.where(Epoch.trial_id.in_(wanted))
            return [dict(row) for row in session.execute(query).mappings()]

        import pandas as pd

        if wanted == []:
            return tidy(pd.DataFrame([], columns=list(EPOCH_FRAME_COLUMNS)))
        rows = self._read(work, what="cannot read epochs")
        return tidy(pd.DataFrame(rows, columns=list(EPOCH_FRAME_COLUMNS)))

    def trial_columns(self, trial_ids: Iterable[int], columns: Iterable[str]) -> dict[int, dict]:
        """Some columns of the trials table (JSON ones too) for the given trials, by id:
        what `trials_frame` leaves out because it is large (config, test predictions)."""
        wanted = sorted({int(t) for t in trial_ids})
        names = list(dict.fromkeys(columns))
        unknown = [n for n in names if not hasattr(Trial, n)]
        if unknown:
            raise StoreError(f"no trial column {unknown[0]!r}")

        def work(session: Session) -> dict[int, dict]:
            found: dict[int, dict] = {}
            for start in range(0, len(wanted), 500):  # bounded IN lists
                chunk = wanted[start : start + 500]
                query = select(Trial.id, *(getattr(Trial, n) for n in names)).where(
                    Trial.id.in_(chunk)
                )
                for row in session.execute(query).mappings():
                    found[int(row["id"])] = {n: row[n] for n in names}
            return found

        return self._read(work, what="cannot read trials") if wanted else {}

    def studies_frame(self) -> pd.DataFrame:
        """One row per study: trial counts per status, and the complete trial with the
        best validation accuracy (`best_val_acc`, its `best_test_acc`, id and arch).
        The test accuracy is the best-val trial's, never a maximum over test scores."""

        def work(session: Session) -> tuple[list[Any], list[Any]]:
            studies = session.execute(
                select(
                    Study.id.label("study_id"),
                    Study.name.label("study"),
                    Study.space,
                    Study.objectives,
                    Study.sampler,
                    Study.data_spec,
                    Study.created_at,
                ).order_by(Study.id)
            ).mappings()
            trials = session.execute(
                select(
                    Trial.id,
                    Trial.study_id,
                    Trial.status,
                    Trial.val_acc,
                    Trial.test_acc,
                    Candidate.arch,
                )
                .join(Candidate, Candidate.id == Trial.candidate_id)
                .order_by(Trial.id)
            ).mappings()
            return [dict(r) for r in studies], [dict(r) for r in trials]

        import pandas as pd

        studies, trials = self._read(work, what="cannot read studies")
        rows = []
        for study in studies:
            mine = [t for t in trials if t["study_id"] == study["study_id"]]
            counts = {name: sum(t["status"] == name for t in mine) for name in TRIAL_STATUSES}
            scored = [t for t in mine if t["status"] == "complete" and t["val_acc"] is not None]
            # Best validation accuracy; the earlier trial wins a tie.
            best = max(scored, key=lambda t: (t["val_acc"], -t["id"]), default=None)
            rows.append(
                {
                    **study,
                    "trials": len(mine),
                    **counts,
                    "best_val_acc": best["val_acc"] if best else None,
                    "best_test_acc": best["test_acc"] if best else None,
                    "best_trial_id": best["id"] if best else None,
                    "best_arch": best["arch"] if best else None,
                }
            )
        return tidy(pd.DataFrame(rows, columns=list(STUDY_FRAME_COLUMNS)))

    def latencies_frame(self) -> pd.DataFrame:
        """Every latency measurement (columns `LATENCY_FRAME_COLUMNS`) with its candidate."""

        def work(session: Session) -> list[dict[str, Any]]:
            query = (
                select(
                    Latency.id.label("latency_id"),
                    Latency.candidate_id,
                    Candidate.arch,
                    Candidate.kind,
                    Candidate.family,
                    *(getattr(Latency, c) for c in LATENCY_FRAME_COLUMNS[5:]),
                )
                .join(Candidate, Candidate.id == Latency.candidate_id)
                .order_by(Latency.id)
            )
            return [dict(row) for row in session.execute(query).mappings()]

        import pandas as pd

        rows = self._read(work, what="cannot read latencies")
        return tidy(pd.DataFrame(rows, columns=list(LATENCY_FRAME_COLUMNS)))
