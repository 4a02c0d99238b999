"""Objectives, samplers and pruners: names on the command line -> Optuna objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import optuna

    from harness.search.space import Param, SearchSpace

__all__ = [
    "OBJECTIVES",
    "PRUNERS",
    "SAMPLERS",
    "GRID_LIMIT",
    "directions",
    "make_pruner",
    "make_sampler",
    "objective_values",
    "parse_objectives",
]

# objective -> (direction, attribute of TrialOutcome)
OBJECTIVES: dict[str, tuple[str, str]] = {
    "accuracy": ("maximize", "val_acc"),
    "flops": ("minimize", "flops"),
    "latency": ("minimize", "latency_ms"),
    "params": ("minimize", "params"),
}
SAMPLERS = ("tpe", "nsga2", "grid", "random")
PRUNERS = ("median", "hyperband", "none")
# `--sampler grid` refuses spaces with more configurations than this.
GRID_LIMIT = 4096


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in OBJECTIVES]
    if not names or unknown:
        raise ConfigError(
            f"unknown objective {unknown[0] if unknown else text!r} in --objectives "
            f"(known: {', '.join(OBJECTIVES)}; e.g. accuracy,flops)"
        )
    if "accuracy" not in names:
        raise ConfigError(f"--objectives {text!r} needs accuracy among them (e.g. accuracy,flops)")
    if len(set(names)) != len(names):
        raise ConfigError(f"--objectives {text!r} names an objective twice")
    return names


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[name][0] for name in objectives]


def objective_values(objectives: Sequence[str], outcome: Any) -> list[float]:
    values = []
    for name in objectives:
        value = getattr(outcome, OBJECTIVES[name][1])
        if value is None:
            raise ConfigError(f"objective {name!r} was not measured for trial {outcome.trial_id}")
        values.append(float(value))
    return values


def make_sampler(
    name: str,
    *,
    objectives: Sequence[str],
    space: SearchSpace,
    params: tuple[Param, ...],
    seed: int | None,
    n_trials: int,
) -> optuna.samplers.BaseSampler:
    import optuna

    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r} (known: {', '.join(SAMPLERS)})")
    multi = len(objectives) > 1
    if name == "tpe":
        # A third of a short study is random start-up; TPE needs some before it models.
        startup = max(3, min(10, n_trials // 3))
        # Multivariate TPE sees that positions interact (an I after an R is not an I alone);
        # with several objectives this is Optuna's multi-objective TPE.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)
    if name == "nsga2":
        if not multi:
            raise ConfigError(
                "--sampler nsga2 is for several objectives (e.g. --objectives accuracy,flops)"
            )
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(4, min(50, n_trials // 3))
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler(grid_space(space, params), seed=seed)


def grid_space(space: SearchSpace, params: tuple[Param, ...]) -> dict[str, list[Any]]:
    """Optuna's grid: every categorical value of every parameter; refuses large spaces."""
    grid: dict[str, list[Any]] = space.arch_grid()
    for param in params:
        if param.choices is None:
            raise ConfigError(
                f"--sampler grid needs every parameter to be a list of choices; {param.name} is "
                f"a range {param.describe()} in {space.path}"
            )
        grid[param.name] = list(param.choices)
    size = 1
    for values in grid.values():
        size *= len(values)
    if size > GRID_LIMIT:
        raise ConfigError(
            f"--sampler grid would enumerate {size:,} configurations of {space.name} "
            f"(limit {GRID_LIMIT:,}); use tpe, nsga2 or random, or a smaller space"
        )
    return grid


def make_pruner(name: str, *, epochs: int, objectives: Sequence[str]) -> optuna.pruners.BasePruner:
    import optuna

    if name not in PRUNERS:
        raise ConfigError(f"unknown pruner {name!r} (known: {', '.join(PRUNERS)})")
    if name == "none" or len(objectives) > 1:
        # Optuna prunes single-objective studies only.
        return optuna.pruners.NopPruner()
    if name == "median":
        # Judge no trial on its first epoch (it says little; under one-cycle the rate is
        # still warming up), and only once a few trials finished.
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
