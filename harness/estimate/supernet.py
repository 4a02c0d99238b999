"""The supernet estimator: train one weight-sharing supernet, then score orderings with it.

Single-path one-shot (Guo et al., ECCV 2020): every position holds one R and one
I block (`supernet_model.Supernet`), each training step runs one path drawn
uniformly from the space's members, and an ordering is scored by the validation
accuracy of its path with the shared weights, after its BatchNorm statistics are
recomputed on a few training batches.

Training is a recorded run: a trial of architecture `supernet:SPACE` (kind
candidate, family other) in its own study (`supernet:SPACE` unless named), with
one epoch row per epoch, whose val accuracy is that of a reference path (the
space's first enqueued member, else the first path drawn) after recalibration.
It runs through `harness.train.Trainer` (device, AMP, channels_last, optimiser
and schedule as a trial) and saves a weights-only checkpoint after every epoch;
a checkpoint of the same identity (space, settings, data) is resumed where it
stopped, or loaded when finished, so a second `estimate` trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harness.config import TIMM_PREFIX, TrainConfig
from harness.errors import ConfigError, GrammarError, HarnessError, first_line
from harness.estimate.base import Estimator, register
from harness.estimate.supernet_model import (
    PathSampler,
    Supernet,
    SupernetRun,
    fit,
    read_supernet_checkpoint,
)
from harness.search.space import SearchSpace, load_space
from harness.train import EpochMetrics

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.store import Store
    from harness.trial import TrialRecord

__all__ = [
    "DEFAULT_RECALIBRATION_BATCHES",
    "SUPERNET_LETTERS",
    "SupernetEstimator",
    "SupernetRun",
    "check_supernet_space",
    "space_sampler",
    "train_supernet",
]

SUPERNET_LETTERS = ("I", "R")
# Training batches per BatchNorm recalibration: at the smoke budget's batch of 32,
# 256 images, enough for stable per-channel means (SPOS used a few thousand).
DEFAULT_RECALIBRATION_BATCHES = 8
Progress = Callable[[str], None]


def check_supernet_space(
    space: SearchSpace | str, overrides: Mapping[str, Any] | None = None
) -> SearchSpace:
    """The space, if a supernet of R and I blocks can hold every member; ConfigError
    (one line) if not: timm baselines, block kinds other than R and I, or anything
    searched besides the ordering (widths, depths, a block parameter, a training
    setting) that `overrides` (the run's explicit flags) do not fix."""
    if isinstance(space, str):
        space = load_space(space)
    where = f"the supernet cannot hold space {space.name!r}"
    if space.kind == "choices":
        timm = [c for c in space.choices if c.strip().startswith(TIMM_PREFIX)]
        if timm:
            raise ConfigError(f"{where}: it lists timm baselines ({', '.join(timm)})")
    letters = set(space.letters) | {ch for flat in _choice_flats(space) for ch in flat}
    other = sorted(letters - set(SUPERNET_LETTERS))
    if other:
        raise ConfigError(
            f"{where}: it has block kinds {', '.join(other)} (a supernet position holds R and I)"
        )
    from harness.search.params import searched_params

    searched = searched_params(space, dict(overrides or {}))
    if searched:
        names = ", ".join(p.name for p in searched)
        raise ConfigError(
            f"{where}: it also searches {names}; the supernet shares weights across orderings "
            "of one skeleton (fix them with flags, or use a space that searches only the ordering)"
        )
    return space


def _choice_flats(space: SearchSpace) -> list[str]:
    if space.kind != "choices":
        return []
    from harness.grammar import resolve

    try:
        return [resolve(c, space.depths, known=SUPERNET_LETTERS).flat for c in space.choices]
    except GrammarError as error:
        raise ConfigError(f"the supernet cannot hold space {space.name!r}: {error}") from None


def space_sampler(space: SearchSpace, seed: int) -> PathSampler:
    """Uniform paths over `space`'s members (see `PathSampler`)."""
    encoding = space.encoding
    members: list[str] = []
    if space.kind == "split":
        members = encoding.members()  # type: ignore[attr-defined]
    elif space.kind == "choices":
        members = _choice_flats(space)
    return PathSampler(encoding, seed, members)


def reference_path(space: SearchSpace, seed: int) -> str:
    """The path whose accuracy each epoch records: the first enqueued member, else the
    first path a sampler of `seed` draws."""
    if space.enqueue:
        from harness.grammar import resolve

        return resolve(space.enqueue[0], space.depths, known=SUPERNET_LETTERS).flat
    return space_sampler(space, seed)()


def build_supernet(config: TrainConfig, dataset: Dataset) -> Supernet:
    """The supernet on `config`'s skeleton for `dataset`: stand-alone `I*n` and `R*n`
    networks as `harness.trial` builds candidates, their blocks shared per position."""
    from harness.models import Skeleton
    from harness.trial import candidate_for

    n = sum(Skeleton.from_dict(dict(config.skeleton)).depths)
    networks = {}
    for letter in SUPERNET_LETTERS:
        candidate = candidate_for(config.replace(arch=letter * n), dataset)
        networks[letter] = candidate.model
    return Supernet(networks)


def supernet_identity(
    space: SearchSpace, config: TrainConfig, dataset: Dataset, reference: str
) -> dict[str, Any]:
    """What makes two supernets the same: the members sampled, the training, the data."""
    return {
        "estimator": "supernet",
        "space": {
            "name": space.name,
            "kind": space.kind,
            "letters": list(space.letters),
            "counts": list(space.counts),
            "choices": list(space.choices),
            "depths": list(space.depths),
        },
        # Not the arch: any candidate's configuration may serve as the base.
        "training": {k: v for k, v in config.identity().items() if k != "arch"},
        "data_fingerprint": dataset.fingerprint,
        "reference": reference,
    }


def default_checkpoint(space: SearchSpace, key: str) -> Path:
    from harness.data.cache import default_cache_dir

    return default_cache_dir() / "supernets" / f"{space.name}-{key[:16]}.pt"


def train_supernet(
    space: SearchSpace,
    base: TrainConfig,
    dataset: Dataset,
    *,
    epochs: int,
    recalibration_batches: int = DEFAULT_RECALIBRATION_BATCHES,
    checkpoint: str | Path | None = None,
    store: Store | None = None,
    study: str | None = None,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> SupernetRun:
    """Train the supernet of `space` on `base`'s skeleton and settings for `epochs`,
    resuming from (or loading) `checkpoint`; each epoch is recorded in `store`."""
    from harness.measure import resolve_device
    from harness.models import Skeleton
    from harness.output import check_writable
    from harness.store import config_hash
    from harness.train import Trainer, seed_everything

    depths = Skeleton.from_dict(dict(base.skeleton)).depths
    if depths != space.depths:
        raise ConfigError(
            f"space {space.name!r} has depths {space.depths} but the supernet's skeleton {depths}"
        )
    # A path changes from step to step: a compiled graph would recompile on each.
    config = base.replace(epochs=int(epochs), compile=False, patience=None)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    reference = reference_path(space, config.seed)
    identity = supernet_identity(space, config, dataset, reference)
    path = Path(checkpoint).expanduser() if checkpoint else None
    path = path or default_checkpoint(space, config_hash(identity))
    state = read_supernet_checkpoint(path)
    if state is not None and state["identity"] != identity:
        raise ConfigError(
            f"supernet checkpoint {path} was trained with other settings (space, training or "
            "data); name another checkpoint file or delete it"
        )
    seed_everything(config.seed)
    supernet = build_supernet(config, dataset)
    trainer = Trainer(supernet, dataset, config, device)
    run = SupernetRun(
        supernet, trainer, space_sampler(space, config.seed), identity, path, reference
    )
    if state is not None:
        run.restore(state)
    if run.epochs_done >= epochs:
        if progress:
            progress(f"supernet of {space.name}: loaded {path} ({run.epochs_done} epochs)")
        return run
    # A checkpoint is written after every epoch: a folder that cannot take it fails now,
    # not after the first epoch with a failed trial recorded.
    check_writable(path, flag="supernet checkpoint", example="supernet.pt")
    if progress and run.epochs_done:
        progress(f"supernet of {space.name}: resuming {path} after epoch {run.epochs_done}")
    study = study or f"supernet:{space.name}"
    record = None if store is None else _start_trial(store, study, space, run, config, dataset)
    # Without a store no trial: the one a checkpoint names ended with its own run.
    run.trial_id = None if record is None else record.trial_id

    def finish(status: str, reason: str | None) -> None:
        if record is not None:  # the last epoch's reference-path accuracy, not the best
            last = EpochMetrics(**run.history[-1]) if run.history else None
            seconds, images_per_s = run.train_seconds, _images_per_s(run.history)
            record.finish(status, reason, last, train_seconds=seconds, images_per_s=images_per_s)

    def after_epoch(metrics: EpochMetrics) -> None:
        if record is not None:
            record.epoch(metrics)
        if progress:
            progress(
                f"supernet epoch {metrics.epoch}/{epochs}: train loss {metrics.train_loss:.4f} "
                f"acc {metrics.train_acc:.3f} | {reference} val acc {metrics.val_acc:.3f} "
                f"| {metrics.seconds:.1f} s"
            )
        if on_epoch is not None:
            on_epoch(metrics)

    try:
        fit(
            run, recalibration_batches=recalibration_batches, seed=config.seed, on_epoch=after_epoch
        )
    except KeyboardInterrupt:
        finish("interrupted", "interrupted by the user (Ctrl-C); the checkpoint resumes")
        raise
    except Exception as error:  # any failure is recorded as the supernet trial's, then raised
        finish("failed", f"{type(error).__name__}: {first_line(error)}")
        raise
    finish("complete", None)
    return run


def _start_trial(
    store: Store,
    study: str,
    space: SearchSpace,
    run: SupernetRun,
    config: TrainConfig,
    dataset: Dataset,
) -> TrialRecord:
    """The supernet's training as a trial of `supernet:SPACE`; a resumed run's trial has
    the whole curve, the epochs before the checkpoint too."""
    from harness.measure import count_params
    from harness.trial import TrialRecord

    supernet = run.supernet
    arch = f"supernet:{space.name}"
    study_id = store.ensure_study(study, space=space.name, data_spec=dataset.spec)
    candidate_id = store.ensure_candidate(
        arch, kind="candidate", family="other", params=count_params(supernet), flops=None,
        input_shape=supernet.skeleton.input_shape, num_classes=len(dataset.classes),
        skeleton=supernet.skeleton.to_dict(),
    )  # fmt: skip
    recorded = {
        **config.to_dict(),
        "arch": arch,
        "estimator": "supernet",
        "space": space.name,
        "reference_path": run.reference,
        "resumed_after_epoch": run.epochs_done or None,
    }
    return TrialRecord.start(
        store, config, dataset, run.trainer.device, study_id=study_id, candidate_id=candidate_id,
        recorded=recorded, identity=run.identity,
        earlier=[EpochMetrics(**row) for row in run.history],
    )  # fmt: skip


def _images_per_s(history: list[dict[str, Any]]) -> float | None:
    seconds = sum(row["seconds"] for row in history)
    images = sum(row["images_per_s"] * row["seconds"] for row in history)
    return images / seconds if seconds > 0 else None


@register
class SupernetEstimator(Estimator):
    """Validation accuracy of an ordering's path through a trained supernet."""

    name = "supernet"
    cite = (
        "single-path one-shot supernet (Guo et al., ECCV 2020): one R and one I block per "
        "position, one path per step drawn uniformly from the space's members; per path, "
        "BatchNorm statistics recomputed (cumulative average) on training batches, then "
        "validation accuracy with the shared weights"
    )
    seeded = True

    def __init__(
        self,
        space: SearchSpace | str = "rir_orderings",
        *,
        epochs: int | None = None,
        recalibration_batches: int = DEFAULT_RECALIBRATION_BATCHES,
        checkpoint: str | Path | None = None,
        study: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        # Refused before any data is loaded or any network is built.
        self.space = check_supernet_space(space, overrides)
        for name, value in (("epochs", epochs), ("recalibration batches", recalibration_batches)):
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ConfigError(f"supernet {name} must be a whole number >= 1, got {value!r}")
        self.epochs = epochs
        self.recalibration_batches = int(recalibration_batches)
        self.checkpoint = checkpoint
        self.study = study
        self.run: SupernetRun | None = None
        self._fingerprint: str | None = None
        self._skeleton: dict[str, Any] | None = None

    def prepare(
        self,
        dataset: Dataset,
        base: TrainConfig,
        *,
        store: Store | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Train the supernet (or load it) on `base`'s skeleton: `base` must be a
        candidate's configuration as it trains (the budget's width applied)."""
        epochs = self.epochs or base.epochs
        self.run = train_supernet(
            self.space,
            base,
            dataset,
            epochs=epochs,
            recalibration_batches=self.recalibration_batches,
            checkpoint=self.checkpoint,
            store=store,
            study=self.study,
            progress=progress,
        )
        self.epochs = epochs
        self._fingerprint = dataset.fingerprint
        self._skeleton = _built_skeleton(base, dataset)

    def score(self, config: TrainConfig, dataset: Dataset) -> float:
        if self.run is None:
            self.prepare(dataset, config)
        assert self.run is not None and self._skeleton is not None
        if dataset.fingerprint != self._fingerprint:
            raise ConfigError("the supernet was trained on other data than it is asked to score")
        skeleton = _built_skeleton(config, dataset)
        if skeleton != self._skeleton:
            changed = sorted(k for k in skeleton if skeleton[k] != self._skeleton.get(k))
            raise ConfigError(
                f"{config.arch}: its skeleton differs from the supernet's in {', '.join(changed)}"
            )
        path = self.path_of(config)
        evaluation = self.run.evaluate(path, self.recalibration_batches, config.seed)
        return float(evaluation.acc)

    def path_of(self, config: TrainConfig) -> str:
        """The supernet path of `config`'s ordering; a one-line HarnessError if it has none."""
        assert self.run is not None
        from harness.models import resolve_architecture

        try:
            architecture = resolve_architecture(config.arch, self.run.supernet.skeleton)
        except HarnessError as error:
            raise ConfigError(f"the supernet cannot score {config.arch!r}: {error}") from None
        if architecture.genotype is None:
            raise ConfigError(f"the supernet cannot score {config.arch!r}: it is a timm baseline")
        flat = architecture.genotype.flat
        try:
            return self.run.supernet.check_path(flat)
        except HarnessError as error:
            raise ConfigError(f"the supernet cannot score {config.arch!r}: {error}") from None

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "space": self.space.name,
            "supernet_epochs": self.epochs,
            "recalibration_batches": self.recalibration_batches,
        }
        if self.run is not None:
            from harness.store import config_hash

            key = config_hash(self.run.identity)[:16]
            out.update(supernet=key, supernet_trial=self.run.trial_id)
        return out


def _built_skeleton(config: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    """`config`'s skeleton as the model builder completes it for `dataset`."""
    from harness.candidate import model_input_shape
    from harness.models import Skeleton

    values = dict(config.skeleton)
    values.update(
        input_shape=model_input_shape(dataset.image_shape, config.resize),
        num_classes=len(dataset.classes),
    )
    return Skeleton.from_dict(values).to_dict()
