"""Kept weights that nothing uses any more, and removing them (`harness clean --weights`).

Deleting an Optuna study (`optuna delete-study`, `optuna.delete_study`) deletes its
trials and their attributes but not the artifacts they linked: the files stay in the
artifact store. Our trial rows stay too (results are never lost), with their links.
An artifact is unused when no Optuna study or trial in the database links it and no
trial row of a study Optuna still has links it (a row reused in another study shares
its source's artifact). Staged files (`--keep-weights top`) of this database's studies
are stale once their study has no running trial: a `top` run stages finished trials
and settles them only at its end, so a study with a running trial keeps all of them.
Every location the links name is looked at (plus the --artifacts or default one).

Removal is Optuna's own (`ArtifactStore.remove`, the way Optuna's FAQ removes
artifacts); the links are then marked removed, so that export says what happened.
Files in the store that no row of this database links (another database's, sharing
the folder, or an upload cut short) are counted and left alone, and so are links to a
folder that does not exist on this machine (a database shared by several machines:
another machine's weights are not ours to mark removed).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import (
    artifact_metas,
    artifact_store,
    error_line,
    is_remote,
    staging_dir,
)
from harness.errors import ConfigError, HarnessError, StoreError, first_line
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
    staged_running: int = 0  # staged files of studies with a running trial (left alone)
    unknown: int = 0  # files in a store folder that no row links (left alone)
    # links of unused artifacts in a folder this machine does not have (left alone)
    not_here: int = 0

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
            "staged_running": self.staged_running,
            "unknown_files": self.unknown,
            "links_not_here": self.not_here,
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
        if artifact in in_use:
            sizes[artifact] = int(link["bytes"])
        elif _not_here(link["location"]):
            usage.not_here += 1
        else:
            entry = usage.unused.setdefault(artifact, (link["location"], int(link["bytes"]), []))
            entry[2].append(trial_id)
    usage.kept = len(sizes)
    usage.kept_bytes = sum(sizes.values())
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
    usage.staged, usage.staged_running = _stale_staged(store, usage.locations)
    return usage


def remove_unused(store: Store, usage: WeightsUsage) -> tuple[int, int, int]:
    """Remove the unused artifacts (Optuna's `ArtifactStore.remove`) and the stale staged
    files, mark the links removed; returns (artifacts, staged files, bytes freed). An
    artifact missing from an existing folder counts as gone; a folder missing here is
    left alone (counted in `usage.not_here`)."""
    from optuna.artifacts.exceptions import ArtifactNotFound

    removed: list[str] = []
    freed = 0
    stores: dict[str, Any] = {}
    try:
        for artifact, (location, size, trial_ids) in sorted(usage.unused.items()):
            if _not_here(location):  # gone since weights_usage looked
                usage.not_here += len(trial_ids)
                continue
            try:
                if location not in stores:
                    stores[location] = artifact_store(location, create=False)
                stores[location].remove(artifact)
                freed += size
            except ArtifactNotFound:
                pass  # gone already from a folder that is here: the link is marked all the same
            except HarnessError:
                raise
            except OSError as error:
                raise ConfigError(
                    f"cannot remove artifact {artifact} from {location}: {first_line(error)}"
                ) from None
            except Exception as error:  # S3's or GCS's client errors: one line
                raise ConfigError(
                    f"cannot remove artifact {artifact} from {location}: {error_line(error)}"
                ) from None
            removed.append(artifact)
    finally:
        # Also when one removal failed: the ones before it are gone, and their links
        # must not say present.
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
        with contextlib.suppress(OSError):  # not empty: a run staged a file meanwhile
            folder.rmdir()
    return len(removed), staged, freed


def _not_here(location: str) -> bool:
    """A folder this machine does not have (another machine's, sharing the database)."""
    return not is_remote(location) and not Path(location).is_dir()


def _study_names(store: Store, trial_ids: set[int]) -> dict[int, str]:
    """Each trial's study name."""
    if not trial_ids:
        return {}
    frame = store.trials_frame()
    frame = frame[frame["trial_id"].isin(trial_ids)]
    return {int(t): str(s) for t, s in zip(frame["trial_id"], frame["study"], strict=True)}


def _stale_staged(store: Store, locations: list[str]) -> tuple[list[Path], int]:
    """(staged files of this database's studies that have no running trial, how many
    staged files were left because their study has one), in the staging folders of
    `locations` (a bucket's are beside the database's default folder)."""
    running = set(store.trials_frame(status="running")["study"].astype(str))
    studies = set(store.studies_frame()["study"].astype(str)) | running
    found, left = [], 0
    seen: set[Path] = set()
    for location in locations:
        for study in sorted(studies):
            folder = staging_dir(location, store.raw_url, study)
            if folder in seen or not folder.is_dir():
                continue
            seen.add(folder)
            for path in sorted(folder.iterdir()):
                if not (_STAGED.match(path.name) and path.is_file()):
                    continue
                if study in running:
                    left += 1
                else:
                    found.append(path)
    return found, left


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
