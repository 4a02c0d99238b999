"""One candidate trained end to end and recorded: the unit every command runs.

`run_trial` builds the network for the data, measures it (parameters, FLOPs,
latency), rejects it early if it breaks a constraint, trains it with
`Trainer`, and writes each step to the store so that a crash, a NaN, an
out-of-memory error or Ctrl-C leaves a trial with an honest status and
reason instead of a half-written row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import torch

from harness.candidate import Candidate, build_candidate
from harness.config import TrainConfig
from harness.errors import first_line
from harness.measure import count_flops, count_params, environment, measure_latency, resolve_device
from harness.signals import hold_interrupts
from harness.train import EpochMetrics, NonFiniteLoss, Trainer, TrainResult, seed_everything

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.store import Store

__all__ = [
    "Constraints",
    "KeepWeights",
    "TrialOutcome",
    "TrialRecord",
    "candidate_for",
    "candidate_key",
    "load_trial_dataset",
    "run_trial",
    "seeded_candidate",
    "seeded_trainer",
]

# Batch-1 latency is measured for this long at most per candidate on the CPU:
# enough for a stable median of a small network, bounded for a big one.
LATENCY_SECONDS = 2.0


@dataclass(frozen=True)
class Constraints:
    """Limits a candidate must meet before any training is spent on it."""

    max_flops: float | None = None
    max_params: float | None = None
    max_latency_ms: float | None = None

    def violation(self, params: int, flops: int, latency_ms: float | None) -> str | None:
        checks = (
            ("FLOPs", flops, self.max_flops, "{:.4g}"),
            ("parameters", params, self.max_params, "{:.4g}"),
            ("batch-1 latency (ms)", latency_ms, self.max_latency_ms, "{:.3g}"),
        )
        for name, value, limit, fmt in checks:
            if limit is not None and value is not None and value > limit:
                return f"constraint: {name} {fmt.format(value)} > max {fmt.format(limit)}"
        return None

    @property
    def needs_latency(self) -> bool:
        return self.max_latency_ms is not None


@dataclass
class TrialOutcome:
    trial_id: int
    status: str  # complete | failed | pruned | interrupted
    reason: str | None
    reused: bool
    arch: str
    family: str
    params: int
    flops: int
    latency_ms: float | None
    val_acc: float | None = None
    test_acc: float | None = None
    val_loss: float | None = None
    test_loss: float | None = None
    best_epoch: int | None = None
    epochs: list[EpochMetrics] = field(default_factory=list)
    result: TrainResult | None = None
    config: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)


# Called once a trial completed, with its network (holding the best-validation
# weights), its outcome (accuracies, recorded config) and its data: how a search keeps
# the weights (harness.search.keep). `harness train` and other callers pass none.
KeepWeights = Callable[[torch.nn.Module, "TrialOutcome", "Dataset"], None]


class _Pruned(Exception):
    pass


@dataclass
class TrialRecord:
    """One trial's row in the store from `start` to `finish`: what every recorded run
    writes, a candidate's training (`run_trial`) and the supernet's alike."""

    store: Store
    trial_id: int
    epochs: list[EpochMetrics] = field(default_factory=list)  # as recorded, in order
    finished: bool = False  # `finish` wrote the row's end: nothing may overwrite it

    @classmethod
    def start(
        cls,
        store: Store,
        config: TrainConfig,
        dataset: Dataset,
        device: torch.device,
        *,
        study_id: int,
        candidate_id: int,
        recorded: dict[str, Any],
        identity: dict[str, Any],
        optuna_trial_number: int | None = None,
        earlier: Iterable[EpochMetrics] = (),
    ) -> TrialRecord:
        """A trial in status `running`, with `earlier` epochs (a resumed run's) recorded."""
        trial_id = store.start_trial(
            study_id=study_id, candidate_id=candidate_id, protocol=config.protocol,
            hyperparameters=config.hyperparameters(), config=recorded, identity=identity,
            seed=config.seed, data_spec=dataset.spec, data_fingerprint=dataset.fingerprint,
            label_mode=dataset.label_mode, device=str(device), environment=environment(device),
            optuna_trial_number=optuna_trial_number,
        )  # fmt: skip
        record = cls(store, trial_id)
        for metrics in earlier:
            record.epoch(metrics)
        return record

    def epoch(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)
        self.store.record_epoch(self.trial_id, **metrics.to_dict())

    def finish(
        self, status: str, reason: str | None, kept: EpochMetrics | None = None, **results: Any
    ) -> None:
        """End the row with the `kept` epoch's validation numbers (a trial keeps its best,
        the supernet its last) and `results`, which take precedence over them."""
        values = {}
        if kept is not None:
            values = dict(best_epoch=kept.epoch, val_acc=kept.val_acc, val_loss=kept.val_loss)
        self.store.finish_trial(self.trial_id, status=status, reason=reason, **values | results)
        self.finished = True


def load_trial_dataset(spec: str):
    """Load a data spec once, for several trials on the same data."""
    from harness.data import load_dataset, require_trainable

    return require_trainable(load_dataset(spec))  # every split holds images


def _is_prune_signal(error: BaseException) -> bool:
    # Only a search raises optuna.TrialPruned, and a search has imported optuna: a plain
    # `harness train` need not pay for importing it to learn that it was not pruned.
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(error, optuna.TrialPruned)


def _is_out_of_memory(error: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(error, oom):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def candidate_for(config: TrainConfig, dataset: Dataset) -> Candidate:
    """The network `config` asks for, built for `dataset`'s images and classes: what
    training builds, and what the commands show before training."""
    return build_candidate(
        config.arch,
        image_shape=dataset.image_shape,
        num_classes=len(dataset.classes),
        skeleton=config.skeleton,
        resize=config.resize,
        baseline_stem=config.baseline_stem,
        pretrained=config.pretrained,
    )


def seeded_candidate(config: TrainConfig, dataset: Dataset) -> Candidate:
    """`candidate_for`, its initial weights drawn from the seed: how every recorded
    trial builds its network (and `harness export --retrain` builds it again)."""
    seed_everything(config.seed)
    return candidate_for(config, dataset)


def seeded_trainer(
    candidate: Candidate, dataset: Dataset, config: TrainConfig, device: torch.device
) -> Trainer:
    """A Trainer whose batches, augmentation and dropout draw from the seed again,
    whatever measuring the network (latency) drew in between."""
    seed_everything(config.seed)
    return Trainer(candidate.model, dataset, config, device)


def run_trial(
    config: TrainConfig,
    store: Store,
    *,
    study: str = "default",
    dataset: Dataset | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    progress: bool = False,
    reuse: bool = False,
    optuna_trial_number: int | None = None,
    constraints: Constraints | None = None,
    measure_latency: bool = True,
    study_fields: dict[str, Any] | None = None,
    keep_weights: KeepWeights | None = None,
) -> TrialOutcome:
    """Train `config` once and record it in `store` under `study`.

    `on_epoch` runs after each epoch's validation; raising `optuna.TrialPruned`
    there records the trial as pruned (its curves kept) and returns. NaN loss
    and out-of-memory errors are recorded as failed and returned, so a search
    goes on. KeyboardInterrupt is recorded as interrupted and re-raised.

    `keep_weights` runs once the trial completed, before its row is finished; if it
    fails (a full disk, an unreachable bucket) the trial still completes, and its
    reason and stderr say that the weights were not kept. A Ctrl-C or SIGTERM while
    the weights are kept and the row finished is held until the row is complete
    (`harness.signals.hold_interrupts`), then raised.
    """
    if dataset is None:
        dataset = load_trial_dataset(config.data)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    candidate = seeded_candidate(config, dataset)
    architecture = candidate.architecture
    recorded_config = _recorded_config(config, candidate, dataset, device)
    identity = _identity(config, candidate, dataset, device)
    study_id = store.ensure_study(study, data_spec=dataset.spec, **(study_fields or {}))

    if reuse:
        found = store.find_complete_trial(
            arch=architecture.name,
            config_hash=_hash(identity),
            data_fingerprint=dataset.fingerprint,
            seed=config.seed,
        )
        if found is not None and (found["device"] or "").partition(":")[0] != device.type:
            found = None  # before the device counted, CUDA runs had a CPU run's identity
        if found is not None:
            if found["study"] != study:
                # Reused from another study: recorded here too, so that this study's
                # leaderboard, comparisons and paper table have every row they ran.
                copied = store.copy_trial(
                    found["id"], study_id=study_id, optuna_trial_number=optuna_trial_number
                )
                found = {**found, "id": copied, "study": study}
            return _outcome_from_store(found, store, recorded_config, list(dataset.classes))

    params = count_params(candidate.model)
    flops = count_flops(candidate.model, candidate.input_shape)
    candidate_id = store.ensure_candidate(
        architecture.name,
        kind="baseline" if candidate.is_baseline else "candidate",
        family=architecture.family,
        params=params,
        flops=flops,
        input_shape=candidate.input_shape,
        num_classes=len(dataset.classes),
        skeleton=candidate_key(candidate),
    )
    record = TrialRecord.start(
        store, config, dataset, device, study_id=study_id, candidate_id=candidate_id,
        recorded=recorded_config, identity=identity, optuna_trial_number=optuna_trial_number,
    )  # fmt: skip
    outcome = TrialOutcome(
        trial_id=record.trial_id,
        status="running",
        reason=None,
        reused=False,
        arch=architecture.name,
        family=architecture.family,
        params=params,
        flops=flops,
        latency_ms=None,
        epochs=record.epochs,  # the same list: the outcome's curve is the one recorded
        config=recorded_config,
        class_names=list(dataset.classes),
    )
    try:
        _measure_and_train(
            outcome, candidate, config, dataset, device, record, candidate_id,
            constraints, measure_latency, on_epoch, progress, keep_weights,
        )  # fmt: skip
    except KeyboardInterrupt:
        if not record.finished:  # a stop held until the row was complete leaves it complete
            _finish(record, outcome, "interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except _Pruned as pruned:
        _finish(record, outcome, "pruned", str(pruned))
    except NonFiniteLoss as error:
        _finish(record, outcome, "failed", str(error))
    # Any other error is recorded before anything else sees it: no trial stays "running".
    except Exception as error:  # recorded whatever it is (prune, OOM, crash), then re-raised
        if _is_prune_signal(error):
            epoch = outcome.epochs[-1].epoch if outcome.epochs else 0
            _finish(record, outcome, "pruned", f"pruned by the search after epoch {epoch}")
        elif _is_out_of_memory(error):
            _free_device_memory(device)
            _finish(record, outcome, "failed", f"out of memory on {device}: {first_line(error)}")
        else:  # a crash: recorded with its type, then on to the caller
            _finish(record, outcome, "failed", f"{type(error).__name__}: {first_line(error)}")
            raise
    return outcome


def _finish(record: TrialRecord, outcome: TrialOutcome, status: str, reason: str) -> None:
    """End a trial that did not complete: it keeps its best epoch so far."""
    best = max(record.epochs, key=lambda m: m.val_acc, default=None)
    record.finish(status, reason, best)
    outcome.status, outcome.reason = status, reason
    if best is not None:
        outcome.best_epoch = best.epoch
        outcome.val_acc, outcome.val_loss = best.val_acc, best.val_loss


def _measure_and_train(
    outcome: TrialOutcome,
    candidate: Candidate,
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    record: TrialRecord,
    candidate_id: int,
    constraints: Constraints | None,
    want_latency: bool,
    on_epoch: Callable[[EpochMetrics], None] | None,
    progress: bool,
    keep_weights: KeepWeights | None = None,
) -> None:
    if want_latency or (constraints is not None and constraints.needs_latency):
        latency = measure_latency(
            candidate.model,
            candidate.input_shape,
            batch=1,
            device=device,
            threads=config.threads,
            max_seconds=LATENCY_SECONDS,
            channels_last=config.channels_last,
        )
        outcome.latency_ms = latency.median_ms
        record.store.record_latency(
            candidate_id,
            trial_id=outcome.trial_id,
            device=latency.device,
            batch=1,
            threads=latency.threads,
            median_ms=latency.median_ms,
            p90_ms=latency.p90_ms,
            min_ms=latency.min_ms,
            max_ms=latency.max_ms,
            repeats=latency.repeats,
        )
    if constraints is not None:
        violation = constraints.violation(outcome.params, outcome.flops, outcome.latency_ms)
        if violation:
            raise _Pruned(violation)
    trainer = seeded_trainer(candidate, dataset, config, device)

    def after_epoch(metrics: EpochMetrics) -> None:
        record.epoch(metrics)
        if on_epoch is not None:
            on_epoch(metrics)

    result = trainer.fit(on_epoch=after_epoch, progress=progress)
    outcome.result = result
    outcome.status = "complete"
    outcome.best_epoch = result.best_epoch
    outcome.val_acc, outcome.val_loss = result.val.acc, result.val.loss
    outcome.test_acc, outcome.test_loss = result.test.acc, result.test.loss
    reason = "; ".join(result.notes) or (
        f"stopped early after epoch {len(result.epochs)} (patience {config.patience})"
        if result.stopped_early
        else None
    )
    # The network is trained: a stop now waits until its weights are kept and its row is
    # complete, so that it is never trained again for a Ctrl-C during an upload.
    with hold_interrupts(f"recording trial {outcome.trial_id}"):
        if keep_weights is not None:
            reason = _keep(keep_weights, candidate.model, outcome, dataset, reason)
        outcome.reason = reason
        record.finish(
            "complete",
            reason,
            best_epoch=result.best_epoch,
            val_acc=result.val.acc,
            val_loss=result.val.loss,
            test_acc=result.test.acc,
            test_loss=result.test.loss,
            per_class_acc=result.test.per_class_acc,
            confusion=result.test.confusion,
            class_names=list(dataset.classes),
            train_seconds=result.train_seconds,
            eval_seconds=result.eval_seconds,
            images_per_s=result.images_per_s,
            test_predictions=result.test.predictions or None,
            test_targets=result.test.targets or None,
        )


def _keep(
    keep_weights: KeepWeights,
    model: torch.nn.Module,
    outcome: TrialOutcome,
    dataset: Dataset,
    reason: str | None,
) -> str | None:
    """Run `keep_weights`; its failure is said on stderr and added to the trial's reason,
    never allowed to lose the trial's result."""
    from harness.errors import HarnessError

    try:
        keep_weights(model, outcome, dataset)
    except Exception as error:  # disk full, S3 refused, a bug: the result stays
        text = str(error) if isinstance(error, HarnessError) else (
            f"{type(error).__name__}: {first_line(error)}"
        )  # fmt: skip
        note = f"weights not kept: {text}"
        print(f"harness: trial {outcome.trial_id}: {note}", file=sys.stderr)
        return f"{reason}; {note}" if reason else note
    return reason


def candidate_key(candidate: Candidate) -> dict[str, Any]:
    """What makes two networks of one name different: the skeleton (its input
    shape after any resize, its head), for a timm baseline the stem it was given
    (a small stem costs 10-14x the FLOPs at 48 px), and the weights it started from."""
    key = candidate.skeleton.to_dict()
    if candidate.baseline_stem is not None:
        key["baseline_stem"] = candidate.baseline_stem
    if candidate.pretrained:
        key["pretrained"] = candidate.pretrained
    return key


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _recorded_config(
    config: TrainConfig, candidate: Candidate, dataset: Dataset, device: torch.device
) -> dict[str, Any]:
    """The configuration as it actually ran: canonical arch, resolved skeleton and stem.

    A baseline's row is labelled by `arch` (timm:NAME, no options),
    `baseline_stem`, `resize`, `pretrained` and `skeleton["head"]`.
    """
    recorded = config.to_dict()
    recorded.update(
        arch_requested=config.arch,
        **_as_built(candidate, dataset),
        device=str(device),
        input_shape=list(candidate.input_shape),
    )
    return recorded


def _as_built(candidate: Candidate, dataset: Dataset) -> dict[str, Any]:
    """The network as built, not as spelled: `timm:resnet50?stem=small` and
    `timm:resnet50` with --baseline-stem small are one experiment."""
    return dict(
        arch=candidate.architecture.name,
        data=dataset.spec,
        skeleton=candidate.skeleton.to_dict(),
        baseline_stem=candidate.baseline_stem,
        resize=candidate.resize,
        pretrained=candidate.pretrained,
    )


def _identity(
    config: TrainConfig, candidate: Candidate, dataset: Dataset, device: torch.device
) -> dict[str, Any]:
    from harness.train import resolve_precision

    precision = resolve_precision(config.precision, device)
    return {**config.run_identity(device.type, precision), **_as_built(candidate, dataset)}


def _hash(identity: dict[str, Any]) -> str:
    from harness.store import config_hash

    return config_hash(identity)


def _outcome_from_store(
    found: dict[str, Any], store: Store, config: dict[str, Any], class_names: list[str]
) -> TrialOutcome:
    names = [f.name for f in fields(EpochMetrics)]
    epochs = [EpochMetrics(**{n: row[n] for n in names}) for row in store.epochs(found["id"])]
    frame = store.trials_frame(study=found["study"])
    match = frame[frame["trial_id"] == found["id"]]
    latency_ms = None
    if len(match) and match["latency_ms"].notna().any():
        latency_ms = float(match["latency_ms"].iloc[0])
    return TrialOutcome(
        trial_id=found["id"],
        status=found["status"],
        reason=found["reason"],
        reused=True,
        arch=found["arch"],
        family=found["family"],
        params=found["params"],
        flops=found["flops"],
        latency_ms=latency_ms,
        val_acc=found["val_acc"],
        test_acc=found["test_acc"],
        val_loss=found["val_loss"],
        test_loss=found["test_loss"],
        best_epoch=found["best_epoch"],
        epochs=epochs,
        config=config,
        class_names=class_names,
    )
