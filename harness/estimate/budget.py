"""`budget:NAME`: a cheaper budget as an estimator of a dearer one.

A user who ranks candidates at `smoke` wants to know how far that ranking holds
when the same candidates are trained longer and wider. `budget:smoke` answers in
the words every other estimator is judged in: its score of a candidate is the
candidate trained stand-alone at budget `smoke` (its epochs, batches, stem, width
scale and recipe; with its own seeds, the budget's `named_seeds`, averaged), on
the same data as the reference training, as an ordinary recorded trial that any
later run reuses. Its seconds per candidate are those trainings' seconds, also
when the trials are reused.

The reference search's own training flags shape the reference only: the cheaper
budget trains with its own settings, sharing the data, the seed and the flags it
leaves alone (a learning rate under a budget without a recipe, the device).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.estimate.base import Estimator, register

if TYPE_CHECKING:
    from collections.abc import Callable

    from harness.config import TrainConfig
    from harness.data import Dataset
    from harness.search import RunPlan
    from harness.store import Store

__all__ = ["BudgetEstimator", "budget_cost", "check_cheaper"]

# Settings that a budget sets or that size its training: a reference's flags for
# them are the reference's alone.
_COST_SETTINGS = ("epochs", "batch_size", "batch_size_cuda", "max_batches")
_COST_SKELETON = ("stem", "width_mult")


@register
class BudgetEstimator(Estimator):
    """The validation accuracy of the candidate trained at budget NAME."""

    name = "budget"
    takes_argument = True
    argument_help = "budget:NAME, a cheaper budget's stand-alone training"
    cite = "stand-alone training at a cheaper budget (low-fidelity estimate)"

    def __init__(self, argument: str, search: RunPlan | None = None) -> None:
        from harness.search.budgets import get_budget

        self.budget = get_budget(argument)  # ConfigError naming the known budgets
        self.name = f"budget:{argument}"  # type: ignore[misc]  # one instance per budget
        self.seeds = self.budget.named_seeds
        self.search = search
        self.cheap: RunPlan | None = None
        self.store: Store | None = None
        self.last_seconds: float | None = None
        if search is not None:
            self.cheap = cheaper_search(search, argument)

    def prepare(
        self,
        dataset: Dataset,
        base: TrainConfig,
        *,
        store: Store | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if self.cheap is None:
            raise ConfigError(f"{self.name} scores candidates of a search: use validate-estimators")
        if store is None:
            raise ConfigError(f"{self.name} records its trials: it needs the results store")
        self.store = store

    def settings(self) -> dict[str, Any]:
        from harness.store import config_hash

        # The budget's whole training recipe: a changed budget is scored afresh.
        base = None if self.cheap is None else config_hash(self.cheap.base.identity())
        return {"budget": self.budget.name, "seeds": self.seeds, "base": base}

    def config_for(self, config: TrainConfig) -> TrainConfig:
        """The reference's candidate (`config`) as this budget trains it."""
        assert self.cheap is not None and self.search is not None
        return at_budget(config, self.search, self.cheap)

    def score(self, config: TrainConfig, dataset: Dataset) -> float:
        from harness.trial import run_trial

        assert self.store is not None and self.cheap is not None
        cheap_config = self.config_for(config)
        accuracies, seconds = [], 0.0
        for offset in range(self.seeds):
            outcome = run_trial(
                cheap_config.replace(seed=cheap_config.seed + offset),
                self.store,
                study=f"{self.cheap.study}-validate",
                dataset=dataset,
                reuse=True,
                measure_latency=False,
                study_fields=self.cheap.study_fields(),
            )
            seconds += sum(e.seconds or 0.0 for e in outcome.epochs)
            if outcome.status == "complete" and outcome.val_acc is not None:
                accuracies.append(outcome.val_acc)
        self.last_seconds = seconds
        return sum(accuracies) / len(accuracies) if accuracies else math.nan


def cheaper_search(reference: RunPlan, budget: str) -> RunPlan:
    """The reference search resolved at `budget`: same space, data, seed and
    objectives; the reference's flags for what a budget sizes left out."""
    import dataclasses

    from harness.search import RunPlan
    from harness.search.budgets import get_budget

    settings = reference.settings
    overrides = {k: v for k, v in settings.overrides.items() if k not in _COST_SETTINGS}
    for key in get_budget(budget).train_overrides(reference.base.protocol):
        overrides.pop(key, None)
    skeleton = dict(overrides.get("skeleton") or {})
    for key in _COST_SKELETON:
        skeleton.pop(key, None)
    if skeleton:
        overrides["skeleton"] = skeleton
    else:
        overrides.pop("skeleton", None)
    return RunPlan.resolve(
        dataclasses.replace(
            settings, budget=budget, data=reference.data, overrides=overrides, study=""
        )
    )


def at_budget(config: TrainConfig, reference: RunPlan, cheap: RunPlan) -> TrainConfig:
    """`config` (a trial of `reference`) with `cheap`'s settings: its searched values
    kept, its width multiplier too."""
    skeleton = dict(cheap.base.skeleton)
    searched = {p.key for p in reference.params if p.target == "skeleton"}
    for key in searched:
        if key in config.skeleton:
            skeleton[key] = config.skeleton[key]
    letters = {p.letter for p in reference.params if p.target == "block_params"}
    if letters:
        block_params = {k: dict(v) for k, v in (skeleton.get("block_params") or {}).items()}
        for letter in letters:
            block_params[letter] = dict((config.skeleton.get("block_params") or {}).get(letter, {}))
        skeleton["block_params"] = block_params
    if "width_mult" in config.skeleton:  # searched or given: the candidate's own width
        skeleton["width_mult"] = config.skeleton["width_mult"]
    train = {p.key: getattr(config, p.key) for p in reference.params if p.target == "train"}
    return cheap.base.replace(arch=config.arch, skeleton=skeleton, seed=config.seed, **train)


def budget_cost(config: TrainConfig, dataset: Dataset) -> float:
    """FLOPs of one trial's training, forward only: images seen times forward FLOPs per
    image of `config`'s network. Comparable between budgets on one dataset."""
    from harness.measure import count_flops
    from harness.trial import candidate_for

    candidate = candidate_for(config, dataset)
    flops = count_flops(candidate.model, candidate.input_shape)
    train = len(dataset.splits["train"])
    per_epoch = (
        train if config.max_batches is None else min(train, config.max_batches * config.batch_size)
    )
    return float(flops) * per_epoch * config.epochs


def check_cheaper(
    estimators: list[Estimator], reference: RunPlan, config: TrainConfig, dataset: Dataset
) -> None:
    """ConfigError unless every `budget:` estimator trains `config`'s candidate for fewer
    FLOPs than the reference budget does: a dearer one is no estimate of it."""
    dear = budget_cost(config, dataset)
    for estimator in estimators:
        if not isinstance(estimator, BudgetEstimator):
            continue
        cheap = budget_cost(estimator.config_for(config), dataset)
        if cheap >= dear:
            raise ConfigError(
                f"{estimator.name} is not cheaper than the reference budget "
                f"{reference.budget.name}: {cheap / 1e12:.3g} against {dear / 1e12:.3g} "
                "TFLOPs of training per candidate on this data; choose a cheaper budget or a "
                "dearer --reference-budget"
            )
