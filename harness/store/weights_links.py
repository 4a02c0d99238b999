"""`WeightsLinks`: which trials kept their best-validation weights, and where.

    store.link_weights(trial_id, artifact_id=..., location="results/artifacts",
                       filename="trial-12-model.safetensors", sha256=..., bytes=...)
    store.weights_of(trial_id)            # the link as a dict, or None
    store.weights_links([12, 13])         # {trial id: link} for those that have one

The weights themselves live in an Optuna artifact store (`harness.artifacts`); a row
here only says which artifact holds them. A version-4 database opened read-only has
no such table yet: it has no links.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from harness.errors import StoreError
from harness.store.base import StoreBase, columns_of
from harness.store.models import Trial, WeightsLink, utcnow

__all__ = ["WeightsLinks", "copy_weights_link"]


def copy_weights_link(session: Session, source_id: int, copy_id: int) -> None:
    """The link of trial `source_id`, if any, given to `copy_id` too (a reused trial
    shares the weights of the one it copies)."""
    link = session.scalars(select(WeightsLink).where(WeightsLink.trial_id == source_id)).first()
    if link is None:
        return
    values = {k: v for k, v in columns_of(WeightsLink, link).items() if k != "id"}
    session.add(WeightsLink(**{**values, "trial_id": copy_id}))


class WeightsLinks(StoreBase):
    def link_weights(
        self,
        trial_id: int,
        *,
        artifact_id: str,
        location: str,
        filename: str,
        sha256: str,
        bytes: int,
    ) -> None:
        """Record that trial `trial_id`'s weights are artifact `artifact_id` at `location`;
        a link the trial had already is replaced."""
        values = dict(
            artifact_id=artifact_id,
            location=location,
            filename=filename,
            sha256=sha256,
            bytes=int(bytes),
            created_at=utcnow(),
            removed_at=None,
        )

        def work(session: Session) -> None:
            if session.get(Trial, trial_id) is None:
                raise StoreError(f"no trial {trial_id} in {self.url}")
            link = session.scalars(
                select(WeightsLink).where(WeightsLink.trial_id == trial_id)
            ).first()
            if link is None:
                session.add(WeightsLink(trial_id=trial_id, **values))
            else:
                for key, value in values.items():
                    setattr(link, key, value)

        self._write(work, what=f"cannot link the weights of trial {trial_id}", retry_conflict=True)

    def weights_of(self, trial_id: int) -> dict[str, Any] | None:
        """Trial `trial_id`'s link (every column), or None when it has none."""
        return self.weights_links([trial_id]).get(int(trial_id))

    def weights_links(self, trial_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """The links of these trials (every link when None), by trial id; a trial without
        weights is left out. Removed links are included (their `removed_at` is set)."""
        wanted = None if trial_ids is None else sorted({int(t) for t in trial_ids})

        def work(session: Session) -> dict[int, dict[str, Any]]:
            if not self._has_links(session):
                return {}
            found: dict[int, dict[str, Any]] = {}
            chunks = [None] if wanted is None else [
                wanted[i : i + 500] for i in range(0, len(wanted), 500)
            ]  # fmt: skip
            for chunk in chunks:
                query = select(WeightsLink)
                if chunk is not None:
                    query = query.where(WeightsLink.trial_id.in_(chunk))
                for link in session.scalars(query):
                    found[link.trial_id] = columns_of(WeightsLink, link)
            return found

        if wanted == []:
            return {}
        return self._read(work, what="cannot read the weights links")

    def mark_weights_removed(self, artifact_ids: Iterable[str]) -> int:
        """Mark the links to these artifacts as removed (`harness clean` deleted the
        files); returns how many links were marked. The trials and their results stay."""
        ids = sorted(set(artifact_ids))

        def work(session: Session) -> int:
            marked = 0
            for start in range(0, len(ids), 500):
                result = session.execute(
                    update(WeightsLink)
                    .where(
                        WeightsLink.artifact_id.in_(ids[start : start + 500]),
                        WeightsLink.removed_at.is_(None),
                    )
                    .values(removed_at=utcnow())
                )
                marked += int(result.rowcount or 0)
            return marked

        return self._write(work, what="cannot mark removed weights") if ids else 0

    def _has_links(self, session: Session) -> bool:
        # Only a read-only open of a version-4 file lacks the table (writers migrate).
        return not self.read_only or inspect(session.connection()).has_table(
            WeightsLink.__tablename__
        )
