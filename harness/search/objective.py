"""The Optuna objective: trial -> parameters -> `run_trial` -> objective values.

Training, measuring and recording are `run_trial`'s; this only translates.
Validation accuracy goes to the pruner each epoch (single objective only:
Optuna does not prune multi-objective studies). Pruned and constraint-rejected
candidates end as Optuna PRUNED; candidates that failed (NaN loss, out of
memory in training, cannot be built) as FAIL with the reason, and count as done.
An error of the run instead (`RunError`) is retried, not counted, and so is a
trial that Ctrl-C stopped. The seed is a parameter (`SEED_PARAM`): a queued
seed repeat is an ordinary trial with its own seed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from harness.errors import DataError, HarnessError, ModelError, StoreError, first_line
from harness.search.params import suggest
from harness.search.samplers import objective_values
from harness.search.study import (
    REPEAT_ATTR,
    SEED_PARAM,
    SEED_RANGE,
    STATUS_ATTR,
    STORE_ID_ATTR,
    WORKER_ATTR,
    retry_trial,
    this_worker,
)

if TYPE_CHECKING:
    import optuna

    from harness.data import Dataset
    from harness.search.plan import RunPlan
    from harness.search.progress import Progress
    from harness.store import Store
    from harness.trial import Constraints

__all__ = ["CandidateFailed", "Objective", "RunError", "best_text", "is_protected"]


class CandidateFailed(Exception):
    """The candidate itself failed (not the worker): recorded, counted, not retried."""


class RunError(Exception):
    """The run failed, not the candidate (out of memory while measuring, a driver error,
    a bug of ours): the trial is FAIL with status "error" and the error's type, not
    counted, and queued again with its parameters like a dead worker's trial; after
    MAX_RETRY retries the error itself stops the search."""


class Objective:
    def __init__(
        self,
        search: RunPlan,
        store: Store,
        dataset: Dataset,
        *,
        constraints: Constraints | None,
        progress: Progress | None,
    ) -> None:
        self.search = search
        self.store = store
        self.dataset = dataset
        self.constraints = constraints
        self.progress = progress
        from harness.search.keep import WeightsKeeper

        self.keeper = WeightsKeeper(search, store)

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        import optuna

        from harness.folds import run_folds

        search = self.search
        try:
            trial.set_user_attr(WORKER_ATTR, this_worker(trial.number))
            # Pinned to --seed for the sampler's trials (harness.search.study).
            seed = trial.suggest_int(SEED_PARAM, *SEED_RANGE)
            values = suggest(trial, search.space, search.params)
            config = search.trial_config(values, seed=seed)
        except KeyboardInterrupt:  # while the sampler thinks: the next run measures it
            retry_trial(trial.study, trial.number, capped=False)
            raise
        shown = config.arch
        if self.progress is not None:
            self.progress.started(trial.number, shown)
        single = not search.multi_objective
        # The named architectures (the paper's orderings, the controls) and every choice
        # of a choices space are the rows a comparison needs: never pruned.
        prunable = not is_protected(trial, search)

        def on_epoch(metrics: Any) -> None:
            if self.progress is not None:
                self.progress.epoch(trial.number, shown, metrics.epoch, metrics.val_acc)
            if single:
                trial.report(metrics.val_acc, metrics.epoch)
                # Pruning after the last epoch would save nothing and lose the test score.
                if prunable and metrics.epoch < config.epochs and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {metrics.epoch}")

        try:
            # With --folds K: mean validation accuracy over the K folds; the pruner
            # sees fold 0's epochs (harness.folds.run_folds).
            outcome = run_folds(
                config,
                self.store,
                folds=search.settings.folds,
                study=search.study,
                dataset=self.dataset,
                on_epoch=on_epoch,
                reuse=True,
                optuna_trial_number=trial.number,
                constraints=self.constraints,
                measure_latency=search.settings.measure_latency,
                study_fields=search.study_fields(),
                keep_weights=self.keeper.hook(trial),
            )
        except ModelError as error:
            # This candidate cannot be built for this data (e.g. a stem too big for
            # the images): a property of the candidate, so the search goes on.
            self._finish(trial, shown, "failed", {"reason": str(error)})
            raise CandidateFailed(str(error)) from None
        except optuna.TrialPruned:
            raise
        except (StoreError, DataError):
            # The environment (the database, the data) stops the run with one line; the
            # candidate is not to blame, so the next run measures it (skip_if_exists
            # would otherwise count this failed trial as done). Bad input for this
            # candidate (ConfigError, GrammarError) is not retried: it would fail again.
            retry_trial(trial.study, trial.number, capped=False)
            raise
        except HarnessError:
            raise
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: our row is `interrupted`; the next run measures it.
            retry_trial(trial.study, trial.number, capped=False)
            raise
        except Exception as error:  # an error of the run, whatever its type: see RunError
            reason = f"{type(error).__name__}: {first_line(error)}"
            retried = retry_trial(trial.study, trial.number)
            self._finish(trial, shown, "error", {"reason": reason})
            if not retried:
                raise  # the same error MAX_RETRY times over: the run stops with it
            raise RunError(reason) from error

        attrs = {
            STORE_ID_ATTR: outcome.trial_id,
            "arch": outcome.arch,
            "family": outcome.family,
            "params": outcome.params,
            "flops": outcome.flops,
            "latency_ms": outcome.latency_ms,
            "val_acc": outcome.val_acc,
            "test_acc": outcome.test_acc,
            "reused": outcome.reused,
            "reason": outcome.reason,
        }
        if outcome.reused and outcome.status == "complete":
            self.keeper.keep_reused(trial, outcome)
        if outcome.reused and single:
            # The pruner compares curves: give it the stored one.
            for metrics in outcome.epochs:
                trial.report(metrics.val_acc, metrics.epoch)
        self._finish(trial, outcome.arch, outcome.status, attrs)
        if outcome.status == "pruned":
            raise optuna.TrialPruned(outcome.reason or "pruned")
        if outcome.status != "complete":
            raise CandidateFailed(outcome.reason or outcome.status)
        result = objective_values(search.settings.objectives, outcome)
        return result[0] if single else result

    def _finish(self, trial: optuna.Trial, arch: str, status: str, attrs: dict[str, Any]) -> None:
        from harness.search.progress import format_trial_line

        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr(STATUS_ATTR, status)
        seed = trial.params.get(SEED_PARAM) if trial.user_attrs.get(REPEAT_ATTR) else None
        line = format_trial_line(trial.number, arch, status, attrs, seed=seed)
        if self.progress is not None:
            self.progress.finished(line)
        elif self.search.settings.progress:
            print(line, file=sys.stderr)


def is_protected(trial: optuna.Trial, search: RunPlan) -> bool:
    """True for a trial the pruner must leave alone: an enqueued (named) architecture, a
    seed repeat, or any trial of a choices space (each choice is a row of the study's table)."""
    attrs = trial.user_attrs
    return search.space.kind == "choices" or bool(attrs.get("enqueued") or attrs.get(REPEAT_ATTR))


def best_text(study: optuna.Study) -> str:
    """'best 54.2% RRI|...' (one objective) or 'Pareto front: 4 trials'."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return ""
    if len(study.directions) > 1:
        return f"Pareto front: {len(study.best_trials)} trials"
    best = max(complete, key=lambda t: (t.value, -t.number))
    return f"best {100 * best.value:.1f}% {best.user_attrs.get('arch', '')}"
