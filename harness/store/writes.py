"""`Writes`: the store's write methods, each one short transaction."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from harness.errors import StoreError
from harness.store.base import StoreBase, check_choice
from harness.store.kinds import CANDIDATE_KINDS, FAMILIES, TRIAL_STATUSES
from harness.store.liveness import this_worker, worker_gone
from harness.store.models import Candidate, Epoch, Latency, Study, Trial, utcnow
from harness.store.values import config_hash, json_hash, to_float, to_int, to_json
from harness.store.weights_links import copy_weights_link

__all__ = ["Writes"]


class Writes(StoreBase):
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
        check_choice(kind, CANDIDATE_KINDS, "kind")
        check_choice(family, FAMILIES, "family")
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
        runs the same experiment (not the device or thread count).

        The row records this process as its `worker` (`host:pid`). In the same
        transaction, rows without an Optuna trial that an earlier process on
        this host left `running` are marked `interrupted` (`interrupt_dead_trials`):
        how a killed `harness train` gets cleaned up."""
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
            worker=this_worker(),
            started_at=utcnow(),
        )

        def work(session: Session) -> int:
            _interrupt_dead(session)
            trial = Trial(**values)
            session.add(trial)
            session.flush()
            return trial.id

        return self._write(work, what="cannot start a trial")

    def interrupt_dead_trials(self) -> int:
        """Mark `running` trials without an Optuna trial whose process ran on this host
        and is gone as `interrupted`; return how many. Trials of a search belong to
        Optuna's heartbeat instead (`harness.store.liveness`)."""
        return self._write(_interrupt_dead, what="cannot mark interrupted trials")

    def interrupt_optuna_trial(self, study: str, number: int, reason: str) -> int:
        """Mark the `running` rows of Optuna trial `number` of `study` as `interrupted`
        (the heartbeat found its worker dead); return how many."""

        def work(session: Session) -> int:
            ids = select(Trial.id).join(Study, Study.id == Trial.study_id)
            ids = ids.where(
                Study.name == study,
                Trial.optuna_trial_number == int(number),
                Trial.status == "running",
            )
            return _mark_interrupted(session, list(session.scalars(ids)), reason)

        return self._write(work, what=f"cannot mark trial {number} of {study!r} interrupted")

    def copy_trial(
        self, trial_id: int, *, study_id: int, optuna_trial_number: int | None = None
    ) -> int:
        """A copy of a finished trial (its results, epochs and weights link) recorded under another
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
            copy_weights_link(session, trial_id, copy.id)  # the copy shares the weights
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
        finished = tuple(s for s in TRIAL_STATUSES if s != "running")
        check_choice(status, finished, "a finished trial's status")
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


def _interrupt_dead(session: Session) -> int:
    """The rows `Writes.interrupt_dead_trials` marks, marked in `session`."""
    rows = session.execute(
        select(Trial.id, Trial.worker).where(
            Trial.status == "running",
            Trial.optuna_trial_number.is_(None),
            # A cheap first cut in SQL; `worker_gone` decides (LIKE's "_" matches any one).
            Trial.worker.like(f"{socket.gethostname()}:%"),
        )
    ).all()
    marked = 0
    for trial_id, worker in rows:
        if worker_gone(worker):
            marked += _mark_interrupted(session, [trial_id], f"worker {worker} is gone")
    return marked


def _mark_interrupted(session: Session, trial_ids: list[int], reason: str) -> int:
    if not trial_ids:
        return 0
    # `status == running` again: another process may have finished one meanwhile.
    result = session.execute(
        update(Trial)
        .where(Trial.id.in_(trial_ids), Trial.status == "running")
        .values(status="interrupted", reason=reason, finished_at=utcnow())
    )
    return int(result.rowcount or 0)
