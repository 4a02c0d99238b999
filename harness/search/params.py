"""Space + Optuna trial -> parameters -> the `TrainConfig` of one candidate.

Optuna's choices must be plain values, so block sequences are parameters of the
space's encoding (one categorical letter per position "b01".."b16", a split
point and an order, or random keys: harness.search.encodings) and widths are
strings; this module is the only place that turns them back into a skeleton and
a training config.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.config import TrainConfig
from harness.search.budgets import Budget
from harness.search.space import Param, SearchSpace, skeleton_value

if TYPE_CHECKING:
    import optuna

__all__ = ["base_config", "searched_params", "suggest", "trial_config"]


def searched_params(space: SearchSpace, overrides: Mapping[str, Any]) -> tuple[Param, ...]:
    """The space's parameters that explicit flags did not fix."""
    skeleton = overrides.get("skeleton") or {}
    out = []
    for param in space.params:
        if param.target == "train" and param.key in overrides:
            continue
        if param.target == "skeleton" and param.key in skeleton:
            continue
        if param.target == "block_params" and param.letter in (skeleton.get("block_params") or {}):
            continue
        out.append(param)
    return tuple(out)


def base_config(
    space: SearchSpace, budget: Budget, overrides: Mapping[str, Any], data: str
) -> TrainConfig:
    """protocol < space < budget < explicit flags, before any searched value."""
    overrides = dict(overrides)
    protocol = overrides.pop("protocol", None) or space.protocol
    flag_skeleton = overrides.pop("skeleton", None) or {}
    # A budget's own skeleton fields (its stem) over the space's: a budget is a cost.
    skeleton = {**copy.deepcopy(space.skeleton), **copy.deepcopy(budget.skeleton)}
    for letter, values in (flag_skeleton.get("block_params") or {}).items():
        skeleton.setdefault("block_params", {}).setdefault(letter, {}).update(values)
    skeleton.update({k: v for k, v in flag_skeleton.items() if k != "block_params"})
    values: dict[str, Any] = {**space.train, **budget.train_overrides(protocol)}
    values.update(overrides)
    values["data"] = data
    values["arch"] = "RI"  # placeholder: every trial sets its own
    return TrainConfig.from_protocol(protocol, skeleton=skeleton, **values)


def suggest(trial: optuna.Trial, space: SearchSpace, params: tuple[Param, ...]) -> dict[str, Any]:
    """Ask Optuna for every parameter of the space; returns name -> value."""
    chosen: dict[str, Any] = space.encoding.suggest(trial)
    for param in params:
        if param.choices is not None:
            chosen[param.name] = trial.suggest_categorical(param.name, list(param.choices))
        elif param.is_int:
            chosen[param.name] = trial.suggest_int(
                param.name,
                int(param.low),
                int(param.high),
                step=int(param.step or 1),
                log=param.log,
            )
        else:
            chosen[param.name] = trial.suggest_float(
                param.name, float(param.low), float(param.high), step=param.step, log=param.log
            )
    return chosen


def trial_config(
    space: SearchSpace,
    base: TrainConfig,
    values: Mapping[str, Any],
    *,
    seed: int | None = None,
) -> TrainConfig:
    """The configuration one trial trains: `base` with the trial's values applied."""
    skeleton = copy.deepcopy(base.skeleton)
    train: dict[str, Any] = {}
    for param in space.params:
        if param.name not in values:
            continue
        value = values[param.name]
        if param.target == "skeleton":
            skeleton[param.key] = skeleton_value(param.key, value)
        elif param.target == "block_params":
            skeleton.setdefault("block_params", {}).setdefault(param.letter, {})[param.key] = value
        else:
            train[param.key] = value
    if seed is not None:
        train["seed"] = seed
    return base.replace(arch=space.arch_from_params(values), skeleton=skeleton, **train)


def describe_values(space: SearchSpace, values: Mapping[str, Any]) -> str:
    """The searched values other than the block letters, for tables: "lr=0.002 stem=small"."""
    parts = []
    for param in space.params:
        if param.name in values:
            value = values[param.name]
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            parts.append(f"{param.name}={shown}")
    return " ".join(parts)
