"""`Reads`: single trials and their epochs, as plain dicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.errors import StoreError
from harness.store.base import StoreBase, columns_of
from harness.store.models import Candidate, Epoch, Study, Trial

__all__ = ["Reads"]


class Reads(StoreBase):
    def find_complete_trial(
        self, *, arch: str, config_hash: str, data_fingerprint: str | None, seed: int | None
    ) -> dict[str, Any] | None:
        """The latest complete trial with this architecture, config hash, data and seed
        (the reuse lookup; index `ix_harness_trials_reuse`)."""

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
            return None if trial_id is None else _trial_dict(session, trial_id)

        return self._read(work, what="cannot look up trials")

    def trial(self, trial_id: int) -> dict[str, Any]:
        """Every column of the trial, plus `study`, `arch`, `kind`, `family`, `params`, `flops`."""

        def work(session: Session) -> dict[str, Any]:
            found = _trial_dict(session, trial_id)
            if found is None:
                raise StoreError(f"no trial {trial_id} in {self.url}")
            return found

        return self._read(work, what=f"cannot read trial {trial_id}")

    def epochs(self, trial_id: int) -> list[dict[str, Any]]:
        """The trial's epochs in order, as dicts of the epoch columns (without `id`)."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.scalars(
                select(Epoch).where(Epoch.trial_id == trial_id).order_by(Epoch.epoch)
            )
            return [{k: v for k, v in columns_of(Epoch, row).items() if k != "id"} for row in rows]

        return self._read(work, what=f"cannot read the epochs of trial {trial_id}")

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
    found = columns_of(Trial, trial)
    found.update(
        study=study_name,
        arch=candidate.arch,
        kind=candidate.kind,
        family=candidate.family,
        params=candidate.params,
        flops=candidate.flops,
    )
    return found
