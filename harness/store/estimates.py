"""`Estimates`: cheap scores of candidates (zero-cost proxies, a supernet), stored and reused.

    candidate = store.ensure_candidate(...)
    found = store.find_estimate(candidate, "synflow", data_fingerprint=fp, seed=0, settings={})
    if found is None:
        store.record_estimate(candidate, "synflow", score, seconds=0.4, data_fingerprint=fp,
                              seed=0, settings={})
    frame = store.estimates_frame(estimators=["synflow"])

A version-3 database opened read-only has no estimates table yet: its frame is empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from harness.store.base import StoreBase, columns_of
from harness.store.models import Candidate, Estimate, utcnow
from harness.store.values import json_hash, to_float, to_int, to_json

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ESTIMATE_FRAME_COLUMNS", "Estimates"]

ESTIMATE_FRAME_COLUMNS = (
    "estimate_id",
    "candidate_id",
    "arch",
    "kind",
    "family",
    "params",
    "flops",
    "estimator",
    "score",
    "seconds",
    "data_fingerprint",
    "seed",
    "settings",
    "device",
    "created_at",
)


def _key(
    candidate_id: int,
    estimator: str,
    data_fingerprint: str | None,
    seed: int | None,
    settings: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "candidate_id": int(candidate_id),
        "estimator": estimator,
        "data_fingerprint": data_fingerprint,
        "seed": to_int(seed),
        "settings_hash": json_hash(settings or {}),
    }


def _where(key: dict[str, Any]) -> list[Any]:
    # `seed IS NULL` for estimators without one: `= NULL` would match nothing.
    return [
        getattr(Estimate, name).is_(None) if value is None else getattr(Estimate, name) == value
        for name, value in key.items()
    ]


class Estimates(StoreBase):
    def record_estimate(
        self,
        candidate_id: int,
        estimator: str,
        score: float | None,
        *,
        seconds: float | None,
        data_fingerprint: str | None,
        seed: int | None,
        settings: dict[str, Any] | None = None,
        device: str | None = None,
    ) -> int:
        """Store one score (a non-finite one as NULL); an estimate with the same key
        (candidate, estimator, data, seed, settings) is replaced. Returns its id."""
        key = _key(candidate_id, estimator, data_fingerprint, seed, settings)
        values = {
            "score": to_float(score),
            "seconds": to_float(seconds),
            "settings": to_json(settings or {}),
            "device": device,
            "created_at": utcnow(),
        }

        def work(session: Session) -> int:
            row = session.scalars(select(Estimate).where(*_where(key))).first()
            if row is None:
                row = Estimate(**key, **values)
                session.add(row)
                session.flush()
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            return row.id

        return self._write(
            work, what=f"cannot record the {estimator} estimate of candidate {candidate_id}"
        )

    def find_estimate(
        self,
        candidate_id: int,
        estimator: str,
        *,
        data_fingerprint: str | None,
        seed: int | None,
        settings: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """The stored estimate with this key (every column), or None."""
        key = _key(candidate_id, estimator, data_fingerprint, seed, settings)

        def work(session: Session) -> dict[str, Any] | None:
            if not self._has_estimates(session):
                return None
            query = select(Estimate).where(*_where(key)).order_by(Estimate.id.desc())
            row = session.scalars(query).first()
            return None if row is None else columns_of(Estimate, row)

        return self._read(work, what="cannot read estimates")

    def estimates_frame(
        self,
        estimators: Iterable[str] | None = None,
        candidate_ids: Iterable[int] | None = None,
    ) -> pd.DataFrame:
        """One row per stored estimate (columns `ESTIMATE_FRAME_COLUMNS`) with its candidate."""
        wanted = None if estimators is None else sorted(set(estimators))
        ids = None if candidate_ids is None else sorted({int(i) for i in candidate_ids})

        def work(session: Session) -> list[dict[str, Any]]:
            if not self._has_estimates(session):
                return []
            query = (
                select(
                    Estimate.id.label("estimate_id"),
                    Estimate.candidate_id,
                    Candidate.arch,
                    Candidate.kind,
                    Candidate.family,
                    Candidate.params,
                    Candidate.flops,
                    *(getattr(Estimate, c) for c in ESTIMATE_FRAME_COLUMNS[7:]),
                )
                .join(Candidate, Candidate.id == Estimate.candidate_id)
                .order_by(Estimate.id)
            )
            if wanted is not None:
                query = query.where(Estimate.estimator.in_(wanted))
            if ids is not None:
                query = query.where(Estimate.candidate_id.in_(ids))
            return [dict(row) for row in session.execute(query).mappings()]

        import pandas as pd

        from harness.store.frames import tidy

        rows = self._read(work, what="cannot read estimates")
        frame = pd.DataFrame(rows, columns=list(ESTIMATE_FRAME_COLUMNS))
        frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype("float64")
        return tidy(frame)

    def _has_estimates(self, session: Session) -> bool:
        # Only a read-only open of a version-3 file lacks the table (writers migrate).
        return not self.read_only or inspect(session.connection()).has_table(Estimate.__tablename__)
