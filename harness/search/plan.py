"""`RunPlan`: one run's settings, resolved and checked once.

Flags (or a library caller) give `SearchSettings`; `RunPlan.resolve` loads the
space file, takes the budget, the data spec and the protocol, checks how they
meet (one `harness.limits.Limit` per setting, checked where each value enters:
a flag, a space file, `TrainConfig`), and builds the frozen plan: the study's
name and size, the base `TrainConfig` (protocol < space < budget < flags) and the
parameters left to search. Every layer below receives the plan and reads it;
each worker process resolves the same plan from the same settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.config import TRAIN_LIMITS, TrainConfig
from harness.errors import ConfigError
from harness.search.budgets import Budget, get_budget
from harness.search.params import base_config, searched_params, trial_config
from harness.search.settings import SearchSettings
from harness.search.space import Param, SearchSpace, load_space

__all__ = ["RunPlan", "default_study_name"]


@dataclass(frozen=True)
class RunPlan:
    """A run's plan: the settings resolved and checked once (the space loaded, the budget,
    the data spec, the study's name and size, the base `TrainConfig`, the parameters
    left to search). Every layer below receives it and reads it; every worker process
    rebuilds the same one from the same `SearchSettings`."""

    settings: SearchSettings
    space: SearchSpace
    budget: Budget
    study: str
    data: str
    n_trials: int
    base: TrainConfig
    params: tuple[Param, ...]  # searched (not fixed by a flag)
    candidates: int = 0  # scored by the strategy's estimator (0: the default strategy)

    def trial_config(self, values: Mapping[str, Any], *, seed: int | None = None) -> TrainConfig:
        """What one trial trains: the base settings with its values."""
        return trial_config(self.space, self.base, values, seed=seed)

    @classmethod
    def resolve(cls, settings: SearchSettings) -> RunPlan:
        from harness.artifacts import KEEP_POLICIES

        if settings.keep_weights not in KEEP_POLICIES:
            raise ConfigError(
                f"--keep-weights must be one of {', '.join(KEEP_POLICIES)}, "
                f"got {settings.keep_weights!r}"
            )
        space = load_space(settings.space)
        budget = get_budget(settings.budget)
        overrides = dict(settings.overrides)
        data = settings.data or budget.data
        if settings.folds > 1:
            from harness.folds import check_folds

            check_folds(data, settings.folds)  # a ckplus: spec that splits so
        if settings.folds > 1 and "folds=" not in data:
            # Every load (the first check, workers, repeats) then splits into K folds,
            # also on a tree too small for the spec's default of 10.
            data += ("&" if "?" in data else "?") + f"folds={settings.folds}"
        trials = settings.trials if settings.trials is not None else budget.trials
        if settings.trials is None and space.kind == "choices":
            # A table of named networks: each choice once; --repeats adds the seeds.
            trials = len(space.choices)
        if trials < 1:
            raise ConfigError(f"--trials must be at least 1, got {trials}")
        seeds = max(settings.repeats, budget.named_seeds)
        last_seed = TRAIN_LIMITS["seed"].high
        if settings.seed + seeds - 1 > last_seed:
            # Each repeat is an Optuna trial whose seed parameter has this range.
            raise ConfigError(
                f"--seed {settings.seed} with {seeds} seeds would pass the last seed, "
                f"{int(last_seed)}; lower --seed"
            )
        candidates = 0
        if settings.strategy != "train":
            # --trials (or the budget's) is then how many are scored; only --top train.
            candidates = settings.candidates or trials
            trials = settings.top
        flag_depths = (overrides.get("skeleton") or {}).get("depths")
        positions = space.kind == "positions"
        if positions and flag_depths is not None and tuple(flag_depths) != space.depths:
            raise ConfigError(
                f"--depths {','.join(map(str, flag_depths))}: space {space.name} has one "
                f"block position per depth ({'/'.join(map(str, space.depths))}); "
                f"change depths in {space.path} instead"
            )
        base = base_config(space, budget, {**overrides, "seed": settings.seed}, data)
        study = settings.study or default_study_name(settings, space, budget, data)
        return cls(
            settings=settings,
            space=space,
            budget=budget,
            study=study,
            data=data,
            n_trials=trials,
            base=base,
            params=searched_params(space, overrides),
            candidates=candidates,
        )

    @property
    def multi_objective(self) -> bool:
        return len(self.settings.objectives) > 1

    def study_fields(self) -> dict[str, Any]:
        """What the results store records about the study (set on first use)."""
        return {
            "space": self.space.name,
            "objectives": list(self.settings.objectives),
            "sampler": self.settings.sampler,
            "config": {
                "budget": self.budget.name,
                "pruner": self.settings.pruner,
                "trials": self.n_trials,
                "space_file": str(self.space.path),
                "base": self.base.to_dict(),
                "constraints": self.settings.constraints,
                # Only a ranking run says so: the default's record is as it was.
                **(
                    {"strategy": self.settings.strategy, "candidates": self.candidates}
                    if self.settings.strategy != "train"
                    else {}
                ),
            },
        }


def default_study_name(
    settings: SearchSettings, space: SearchSpace, budget: Budget, data: str
) -> str:
    """`SPACE-BUDGET`, plus the objectives and a short hash of anything else that changes
    the experiment, so that rerunning the same command continues the same study and a
    different command does not silently mix into it."""
    name = f"{space.name}-{budget.name}"
    if tuple(settings.objectives) != ("accuracy",):
        name += "-" + "+".join(settings.objectives)
    # Where and how fast it runs is not part of the experiment.
    overrides = {k: v for k, v in settings.overrides.items() if k not in ("device", "threads")}
    varied = {
        "data": data if data != budget.data else None,
        "folds": settings.folds if settings.folds > 1 else None,
        "overrides": overrides or None,
        "constraints": settings.constraints or None,
        "sampler": settings.sampler if settings.sampler != "tpe" else None,
        "seed": settings.seed or None,
        "strategy": settings.strategy if settings.strategy != "train" else None,
        "candidates": settings.candidates if settings.strategy != "train" else None,
    }
    varied = {k: v for k, v in varied.items() if v is not None}
    if varied:
        text = json.dumps(varied, sort_keys=True, default=str)
        name += "-" + hashlib.sha256(text.encode()).hexdigest()[:6]
    return name
