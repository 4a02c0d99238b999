"""Kept weights that nothing uses any more, and removing them (`harness clean --weights`).

Deleting an Optuna study (`optuna delete-study`, `optuna.delete_study`) deletes its
trials and their attributes but not the artifacts they linked: the files stay in the
artifact store. Our trial rows stay too (results are never lost), with their links.
An artifact is unused when no Optuna study or trial in the database links it and no
trial row of a study Optuna still has links it (a row reused in another study shares
its source's artifact). Staged files (`--keep-weights top`) of this database's studies
are stale once their trial is no longer running: a run stopped before its end left them.

Removal is Optuna's own (`ArtifactStore.remove`, the way Optuna's FAQ removes
artifacts); the links are then marked removed, so that export says what happened.
Files in the store that no row of this database links (another database's, sharing
the folder, or an upload cut short) are counted and left alone.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import artifact_metas, artifact_store, is_remote, staging_dir
from harness.errors import ConfigError, StoreError, first_line
from harness.weights import WEIGHTS_FILE

if TYPE_CHECKING:
    from harness.store import Store

__all__ = ["WeightsUsage", "remove_unused", "weights_usage"]

# A staged file, and the temporary file `harness.weights.save_weights` writes it through.
_STAGED = re.compile(r"^\.?trial-(\d+)-" + re.escape(WEIGHTS_FILE) + r"(\.\w+\.partial)?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class WeightsUsage:
    """The kept weights of one database, by what may be removed."""

    locations: list[str] = field(default_factory=list)
    kept: int = 0  # artifacts in use
    kept_bytes: int = 0
    # artifact id -> (location, bytes, our trial ids linking it)
    unused: dict[str, tuple[str, int, list[int]]] = field(default_factory=dict)
    staged: list[Path] = field(default_factory=list)  # stale staged files
    unknown: int = 0  # files in a store folder that no row links (left alone)

    @property
    def unused_bytes(self) -> int:
        return sum(size for _, size, _ in self.unused.values())

    @property
    def staged_bytes(self) -> int:
        return sum(_size(p) for p in self.staged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "locations": self.locations,
            "kept": self.kept,
            "kept_bytes": self.kept_bytes,
            "unused": len(self.unused),
            "unused_bytes": self.unused_bytes,
            "unused_trial_ids": sorted({t for _, _, ids in self.unused.values() for t in ids}),
            "staged": len(self.staged),
            "staged_bytes": self.staged_bytes,
            "unknown_files": self.unknown,
        }


def live_optuna_artifacts(store: Store) -> tuple[set[str], set[str]]:
    """(artifact ids linked by an Optuna study or trial, names of Optuna's studies) in
    the store's database; empty when it has no Optuna tables (nothing created)."""
    from sqlalchemy import inspect

    if not {"studies", "trials", "version_info"} <= set(inspect(store.engine).get_table_names()):
        return set(), set()
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        storage = optuna.storages.RDBStorage(
            store.raw_url, skip_table_creation=True, skip_compatibility_check=True
        )
        ids: set[str] = set()
        names = set()
        for frozen in storage.get_all_studies():
            names.add(frozen.study_name)
            ids.update(meta["artifact_id"] for meta in artifact_metas(frozen.system_attrs))
            study_id = storage.get_study_id_from_name(frozen.study_name)
            for trial in storage.get_all_trials(study_id, deepcopy=False):
                ids.update(meta["artifact_id"] for meta in artifact_metas(trial.system_attrs))
        storage.remove_session()
    except (optuna.exceptions.OptunaError, SQLAlchemyError) as error:
        raise StoreError(
            f"cannot read Optuna's studies in {store.url}: {first_line(error)}"
        ) from None
    return ids, names


def weights_usage(store: Store, location: str | None = None) -> WeightsUsage:
    """What `harness clean --weights` would remove from `store`'s kept weights: every
    location its links name, or only `location` (a resolved --artifacts)."""
    from harness.artifacts import resolve_location

    live_ids, optuna_studies = live_optuna_artifacts(store)
    links = store.weights_links()
    studies = _study_names(store, {link["trial_id"] for link in links.values()})
    usage = WeightsUsage()
    in_use: set[str] = set(live_ids)
    for trial_id, link in links.items():
        if link["removed_at"] is None and studies.get(trial_id) in optuna_studies:
            in_use.add(link["artifact_id"])
    sizes: dict[str, int] = {}
    for trial_id, link in sorted(links.items()):
        if link["removed_at"] is not None:
            continue
        if location is not None and link["location"] != location:
            continue
        if link["location"] not in usage.locations:
            usage.locations.append(link["location"])
        artifact = link["artifact_id"]
        sizes[artifact] = int(link["bytes"])
        if artifact in in_use:
            continue
        entry = usage.unused.setdefault(artifact, (link["location"], int(link["bytes"]), []))
        entry[2].append(trial_id)
    usage.kept = sum(1 for a in sizes if a not in usage.unused)
    usage.kept_bytes = sum(size for a, size in sizes.items() if a not in usage.unused)
    here = location or resolve_location(None, store.raw_url)
    if here not in usage.locations:
        usage.locations.append(here)
    linked = {link["artifact_id"] for link in links.values()}
    for folder in usage.locations:
        if not is_remote(folder) and Path(folder).is_dir():
            usage.unknown += sum(
                1
                for p in Path(folder).iterdir()
                if p.is_file() and _UUID.match(p.name) and p.name not in linked
            )
    usage.staged = _stale_staged(store, here)
    return usage


def remove_unused(store: Store, usage: WeightsUsage) -> tuple[int, int, int]:
    """Remove the unused artifacts (Optuna's `ArtifactStore.remove`) and the stale staged
    files, mark the links removed; returns (artifacts, staged files, bytes freed)."""
    from optuna.artifacts.exceptions import ArtifactNotFound

    removed, freed = [], 0
    for artifact, (location, size, _) in sorted(usage.unused.items()):
        try:
            artifact_store(location).remove(artifact)
            freed += size
        except ArtifactNotFound:
            pass  # gone already: the link is marked all the same
        except OSError as error:
            raise ConfigError(
                f"cannot remove artifact {artifact} from {location}: {first_line(error)}"
            ) from None
        removed.append(artifact)
    store.mark_weights_removed(removed)
    staged = 0
    for path in usage.staged:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue  # the run it belongs to settled it meanwhile
        except OSError as error:
            raise ConfigError(f"cannot delete {path}: {first_line(error)}") from None
        staged += 1
        freed += size
    for folder in {p.parent for p in usage.staged}:
        with contextlib.suppress(OSError):  # not empty: a running trial's files stay
            folder.rmdir()
    return len(removed), staged, freed


def _study_names(store: Store, trial_ids: set[int]) -> dict[int, str]:
    """Each trial's study name."""
    if not trial_ids:
        return {}
    frame = store.trials_frame()
    frame = frame[frame["trial_id"].isin(trial_ids)]
    return {int(t): str(s) for t, s in zip(frame["trial_id"], frame["study"], strict=True)}


def _stale_staged(store: Store, location: str) -> list[Path]:
    """Staged files of this database's studies whose trial is not running."""
    frame = store.trials_frame()
    running = set(frame.loc[frame["status"] == "running", "trial_id"].astype(int))
    found = []
    for study in sorted(set(frame["study"]) | set(store.studies_frame()["study"])):
        folder = staging_dir(location, store.raw_url, str(study))
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = _STAGED.match(path.name)
            if match and path.is_file() and int(match.group(1)) not in running:
                found.append(path)
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
