"""Where a search keeps its trials' weights: Optuna's artifact stores.

A trial's best-validation weights are one safetensors file (`harness.weights`)
uploaded with `optuna.artifacts.upload_artifact`, so optuna-dashboard lists and
downloads them beside the trial, and linked to our trial row
(`Store.link_weights`) with the store's location, so that export finds them later
from the row alone.

    location = resolve_location(None, db_url)   # --artifacts, $HARNESS_ARTIFACTS, default
    store = artifact_store(location)            # a folder, s3://bucket, gs://bucket
    state, metadata = trial_weights(results, trial_id)   # WeightsError: none, gone, corrupt

The default location is the folder `artifacts/` beside a SQLite database
(`sqlite:///results/harness.db` -> `results/artifacts/`), else `results/artifacts`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, first_line
from harness.weights import (
    WEIGHTS_FILE,
    WeightsError,
    WeightsFile,
    file_sha256,
    load_weights,
    save_weights,
)

if TYPE_CHECKING:
    import optuna
    import torch
    from optuna.artifacts._protocol import ArtifactStore

    from harness.store import Store

__all__ = [
    "ARTIFACTS_ENV_VAR",
    "KEEP_POLICIES",
    "artifact_store",
    "default_location",
    "download_to",
    "error_line",
    "is_remote",
    "resolve_location",
    "staging_dir",
    "trial_weights",
    "upload_weights",
    "weights_filename",
    "trials_with_weights",
]

ARTIFACTS_ENV_VAR = "HARNESS_ARTIFACTS"
# What `harness run --keep-weights` keeps (harness.search.keep says how each works).
KEEP_POLICIES = ("all", "top", "named", "none")
# The key prefix under which `optuna.artifacts.upload_artifact` links an artifact to a
# trial (a system attribute whose value is the artifact's meta as JSON). Read here
# directly, not through `get_all_artifact_meta`, because optuna-dashboard deletes an
# artifact by setting that attribute to JSON null, which `get_all_artifact_meta` cannot
# read.
OPTUNA_ARTIFACT_PREFIX = "artifacts:"
STAGED = ".staged"
_REMOTE = ("s3://", "gs://")


def is_remote(location: str) -> bool:
    return location.startswith(_REMOTE)


def default_location(db_url: str) -> str:
    """`artifacts/` beside a SQLite database's file, else `results/artifacts`."""
    from harness.store.engine import sqlite_path

    path = sqlite_path(db_url)
    folder = path.parent / "artifacts" if path is not None else Path("results", "artifacts")
    return str(folder.absolute())


def resolve_location(location: str | None, db_url: str) -> str:
    """`location` (--artifacts), else $HARNESS_ARTIFACTS, else `default_location`; a
    folder is made absolute, so that the location recorded with a link works from any
    directory."""
    chosen = location or os.environ.get(ARTIFACTS_ENV_VAR) or default_location(db_url)
    chosen = chosen.strip()
    if is_remote(chosen):
        bucket = chosen.split("://", 1)[1].strip("/")
        if not bucket or "/" in bucket:
            raise ConfigError(
                f"--artifacts {chosen}: give a bucket, {chosen[:5]}BUCKET (no folder in it)"
            )
        return chosen[:5] + bucket
    if "://" in chosen:
        raise ConfigError(f"--artifacts {chosen}: give a folder, s3://BUCKET or gs://BUCKET")
    return str(Path(chosen).expanduser().absolute())


def artifact_store(location: str, create: bool = True) -> ArtifactStore:
    """Optuna's artifact store for `location`: a folder (made if missing, unless
    `create` is false: readers must not make a recorded folder or a typo), `s3://bucket`
    (boto3, configured the usual way: AWS_* variables, ~/.aws, AWS_ENDPOINT_URL for an
    S3-compatible server) or `gs://bucket` (google-cloud-storage)."""
    from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore, GCSArtifactStore

    if is_remote(location):
        if location.startswith("s3://"):
            _require("boto3", "s3://", "boto3")
        else:
            _require("google.cloud.storage", "gs://", "google-cloud-storage")
        import warnings

        try:
            if location.startswith("s3://"):
                return Boto3ArtifactStore(location[5:])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" since Optuna 3.4
                return GCSArtifactStore(location[5:])
        except Exception as error:  # the client's own errors (credentials, region)
            raise ConfigError(
                f"cannot open the artifact store {location}: {error_line(error)}"
            ) from None
    folder = Path(location)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--artifacts {folder} is a file, not a folder")
    if not create:
        if not folder.is_dir():
            raise ConfigError(
                f"artifacts folder {folder} does not exist (on this machine): "
                "pass --artifacts LOCATION where the weights are"
            )
        return FileSystemArtifactStore(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot make the artifacts folder {folder}: {first_line(error)}"
        ) from None
    return FileSystemArtifactStore(folder)


def error_line(error: BaseException) -> str:
    """`TypeName: first line`: a client library's error (botocore's, google's), which
    is neither an OSError nor ours, shown on one line."""
    return f"{type(error).__name__}: {first_line(error)}"


def _require(module: str, scheme: str, package: str) -> None:
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ConfigError(f"--artifacts {scheme}BUCKET needs {package}: pip install {package}")


def weights_filename(trial_id: int) -> str:
    """`trial-12-model.safetensors`: the name optuna-dashboard shows (our trial id: the
    one `harness export` takes)."""
    return f"trial-{int(trial_id)}-{WEIGHTS_FILE}"


def staging_dir(location: str, db_url: str, study: str) -> Path:
    """Where `--keep-weights top` stages a study's weights until the run's end: under the
    artifacts folder, or beside the database's default folder when the store is remote.
    One folder per database and study: two databases may share one artifacts folder
    (a $HARNESS_ARTIFACTS), and their trial ids and study names may be the same."""
    from harness.store.engine import mask_url, sqlite_path

    root = Path(default_location(db_url) if is_remote(location) else location)
    path = sqlite_path(db_url)
    database = str(path.resolve()) if path is not None else mask_url(db_url)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)[:64] or "_"
    digest = hashlib.sha256(f"{database}\n{study}".encode()).hexdigest()[:12]
    return root / STAGED / f"{safe}-{digest}"


def save_trial_weights(
    state_dict: dict[str, torch.Tensor], folder: Path, trial_id: int, metadata: dict[str, Any]
) -> WeightsFile:
    """The trial's weights as `folder/trial-ID-model.safetensors`, written atomically."""
    return save_weights(state_dict, folder / weights_filename(trial_id), metadata)


def upload_weights(
    store: Store,
    location: str,
    file: WeightsFile,
    *,
    trial_id: int,
    optuna_trial: optuna.Trial | optuna.Study,
    storage: Any = None,
) -> str:
    """Upload `file` to the artifact store at `location`, linked to `optuna_trial` (so
    optuna-dashboard shows it; a running trial, or the study once the trial is finished:
    Optuna freezes a finished trial's attributes) and to our row `trial_id`; returns the
    artifact id."""
    from optuna.artifacts import upload_artifact

    artifact_id = upload_artifact(
        artifact_store=artifact_store(location),
        file_path=str(file.path),
        study_or_trial=optuna_trial,
        storage=storage,
    )
    store.link_weights(
        trial_id, artifact_id=artifact_id, location=location, filename=file.path.name,
        sha256=file.sha256, bytes=file.bytes,
    )  # fmt: skip
    return artifact_id


def artifact_metas(system_attrs: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for key, value in system_attrs.items():
        if not key.startswith(OPTUNA_ARTIFACT_PREFIX):
            continue
        try:
            meta = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            continue
        if isinstance(meta, dict) and meta.get("artifact_id"):
            found.append(meta)
    return found


@contextmanager
def download_to(location: str, artifact_id: str, filename: str) -> Iterator[Path]:
    """The artifact copied to a temporary `filename` (removed after the block);
    WeightsError when the store does not have it or its client fails, ConfigError when
    the folder is not on this machine (it is never made here)."""
    from optuna.artifacts import download_artifact
    from optuna.artifacts.exceptions import ArtifactNotFound

    store = artifact_store(location, create=False)
    with tempfile.TemporaryDirectory(prefix="harness-weights-") as folder:
        path = Path(folder) / filename
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        except ArtifactNotFound:
            raise WeightsError(
                f"artifact {artifact_id} ({filename}) is not in {location}: it was deleted "
                "or --artifacts names another store"
            ) from None
        except OSError as error:
            raise WeightsError(
                f"cannot read artifact {artifact_id} from {location}: {first_line(error)}"
            ) from None
        except Exception as error:  # S3's or GCS's client errors: one line, not a traceback
            raise WeightsError(
                f"cannot read artifact {artifact_id} from {location}: {error_line(error)}"
            ) from None
        yield path


def trial_weights(
    store: Store, trial_id: int, location: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The saved best-validation weights of our trial row `trial_id` (state dict,
    metadata), fetched from the artifact store recorded with them (or `location`, which
    overrides it: a path, s3://bucket, gs://bucket), SHA-256 checked.

    WeightsError (one line, says what to do) when the trial does not exist or has no
    saved weights, when they were removed, or when the file is gone, corrupt or
    truncated."""
    from harness.errors import StoreError

    trial_id = int(trial_id)
    link = store.weights_of(trial_id)
    if link is None:
        try:
            found = store.trial_columns([trial_id], ["status"]).get(trial_id)
        except StoreError as error:
            raise WeightsError(str(error)) from None
        if found is None:
            raise WeightsError(f"no trial {trial_id} in {store.url}: see harness trials for ids")
        raise WeightsError(
            f"trial {trial_id} has no saved weights (status {found['status']}): its run did not "
            "keep them (--keep-weights top keeps the named orderings and the best --top rows); "
            f"`harness export {trial_id} --retrain` trains it again with its seed"
        )
    if link["removed_at"] is not None:
        raise WeightsError(
            f"trial {trial_id}'s weights were removed by harness clean on "
            f"{link['removed_at']:%Y-%m-%d} (their Optuna study was deleted); "
            f"`harness export {trial_id} --retrain` trains it again with its seed"
        )
    where = resolve_location(location, store.raw_url) if location else link["location"]
    shown = f"trial {trial_id}'s weights ({link['filename']} in {where})"
    with download_to(where, link["artifact_id"], link["filename"]) as path:
        if file_sha256(path) != link["sha256"]:
            raise WeightsError(
                f"{shown} are not the file that was saved (SHA-256 differs): changed or "
                f"truncated; `harness export {trial_id} --retrain` trains it again with its seed"
            )
        try:
            # The digest is checked above (not with load_weights' sha256=): the two
            # failures say different things.
            return load_weights(path)
        except WeightsError:
            raise WeightsError(
                f"{shown} cannot be read as safetensors: the saved file is corrupt; "
                f"`harness export {trial_id} --retrain` trains it again with its seed"
            ) from None


def trials_with_weights(store: Store, trial_ids: Iterable[int]) -> frozenset[int]:
    """Those of these trials that have saved weights (for the report's and run's export
    commands): a link that was not removed, and, in a folder, whose file is there."""
    ids = [int(t) for t in trial_ids]
    links = store.weights_links(ids)
    folders: dict[str, ArtifactStore | None] = {}
    kept = set()
    for trial_id in ids:
        link = links.get(trial_id)
        ok = link is not None and link["removed_at"] is None
        # A bucket is trusted as linked: a report asks no network. A folder is asked
        # through Optuna's own reader, which knows where it keeps each artifact.
        if ok and not is_remote(link["location"]):
            location = link["location"]
            if location not in folders:
                folders[location] = (
                    artifact_store(location, create=False) if Path(location).is_dir() else None
                )
            folder = folders[location]
            ok = folder is not None and _holds(folder, link["artifact_id"])
        if ok:
            kept.add(trial_id)
    return frozenset(kept)


def _holds(folder: ArtifactStore, artifact_id: str) -> bool:
    from optuna.artifacts.exceptions import ArtifactNotFound

    try:
        with folder.open_reader(artifact_id):
            return True
    except ArtifactNotFound:
        return False
