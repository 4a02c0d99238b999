"""Scoring many candidates of a space cheaply, each score stored and reused.

    search = Search.resolve(SearchSettings(space="rir_balanced", url=url))
    configs = sample_configs(search, 2000, seed=0)
    estimators = make_estimators(["params", "synflow"], space=search.space)
    frame = score_candidates(configs, estimators, dataset, store)

Sampling draws the space's own Optuna parameters (`Encoding.suggest`, `suggest`)
from a seeded generator in place of an Optuna trial: uniform over positions,
choices and random keys (so for a `counts` space every ordering is equally
likely), each distinct candidate once.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from harness.candidate import Candidate
    from harness.config import TrainConfig
    from harness.data import Dataset
    from harness.estimate.base import Estimator, PopulationEstimator
    from harness.search import Search
    from harness.search.space import SearchSpace
    from harness.store import Store

__all__ = [
    "SCORE_COLUMNS",
    "candidate_row",
    "make_estimators",
    "parse_estimators",
    "sample_configs",
    "score_candidates",
    "space_capacity",
]

SCORE_COLUMNS = (
    "candidate_id",
    "arch",
    "params",
    "estimator",
    "score",
    "seconds",
    "reused",
)


class _RandomTrial:
    """The suggest_* calls of an Optuna trial, answered from a seeded numpy generator."""

    def __init__(self, rng: Any) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[int(self.rng.integers(len(choices)))]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        if log:
            return int(round(math.exp(self.rng.uniform(math.log(low), math.log(high)))))
        return int(low + step * self.rng.integers((high - low) // step + 1))

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        if log:
            return float(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        if step is not None:
            return float(low + step * self.rng.integers(int((high - low) / step) + 1))
        return float(self.rng.uniform(low, high))


def space_capacity(search: Search) -> int | None:
    """Distinct candidates the search can propose; None when a searched setting is
    continuous (no limit)."""
    size = search.space.encoding.size()
    for param in search.params:
        if param.choices is not None:
            size *= len(param.choices)
        elif param.is_int and not param.log:
            size *= int((param.high - param.low) // (param.step or 1)) + 1
        else:
            return None
    return size


def _draw(search: Search, rng: Any) -> dict[str, Any]:
    from harness.search.params import suggest

    return suggest(_RandomTrial(rng), search.space, search.params)  # type: ignore[arg-type]


def sample_configs(
    search: Search,
    n: int,
    *,
    seed: int = 0,
    first: Sequence[Mapping[str, Any]] = (),
) -> list[TrainConfig]:
    """`n` distinct candidates of the search (their training configs): the parameter
    sets in `first`, then uniform draws with `seed`. ConfigError if the space has
    fewer than `n`, before any drawing."""
    import numpy as np

    capacity = space_capacity(search)
    if capacity is not None and n > capacity:
        raise ConfigError(
            f"--sample {n} is more than space {search.space.name} holds ({capacity:,} "
            f"distinct candidates); ask for at most {capacity:,}"
        )
    rng = np.random.default_rng(seed)
    out: dict[str, TrainConfig] = {}
    queue = [dict(values) for values in first]
    attempts = 0
    # Coupon collecting: drawing all of a space of size m takes about m ln m draws.
    limit = 1000 + 20 * n * max(1, int(math.log(max(n, 2))))
    while len(out) < n:
        values = queue.pop(0) if queue else _draw(search, rng)
        attempts += 1
        if attempts > limit:
            raise ConfigError(
                f"drew {attempts:,} candidates of space {search.space.name} and found only "
                f"{len(out):,} distinct ones of the {n:,} asked for; ask for fewer"
            )
        config = search.trial_config(values)
        key = _identity(config)
        if key not in out:
            out[key] = config
    return list(out.values())


def _identity(config: TrainConfig) -> str:
    from harness.store import config_hash

    return config_hash(config.identity())


def parse_estimators(text: str) -> list[str]:
    """'params,synflow' -> the names, each known (ConfigError naming the known ones)."""
    from harness.estimate.base import estimator_class

    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigError("--estimators needs at least one name, e.g. params,synflow")
    for name in names:
        estimator_class(name)
    if len(set(names)) != len(names):
        raise ConfigError(f"--estimators names one twice: {text!r}")
    return names


def make_estimators(
    names: Iterable[str], *, space: SearchSpace, options: Mapping[str, Any] | None = None
) -> list[Estimator]:
    """The estimators, each given the options its constructor takes (`space` among
    them): a space an estimator cannot hold is refused here, before any work. A
    population estimator (`ensemble`) is bound to its components: the very estimators
    asked for beside it where they are, new ones built with the same options else."""
    from harness.estimate.base import PopulationEstimator, estimator_class

    pool = {"space": space, **{k: v for k, v in (options or {}).items() if v is not None}}

    def build(name: str) -> Estimator:
        cls = estimator_class(name)
        accepted = inspect.signature(cls.__init__).parameters
        argument = {"argument": name.partition(":")[2]} if cls.takes_argument else {}
        return cls(**argument, **{k: v for k, v in pool.items() if k in accepted})

    out = [build(name) for name in names]
    by_name = {estimator.name: estimator for estimator in out}
    for estimator in out:
        if isinstance(estimator, PopulationEstimator):
            owned = {n: build(n) for n in estimator.components if n not in by_name}
            members = [by_name.get(n) or owned[n] for n in estimator.components]
            estimator.bind(members, list(owned.values()))
    return out


def candidate_row(candidate: Candidate, num_classes: int, store: Store) -> int:
    """The candidate's id in the store, recorded as a trial of it would record it
    (harness.trial: arch, skeleton as built, a baseline's stem and weights)."""
    from harness.measure import count_params
    from harness.trial import candidate_key

    key = candidate_key(candidate)
    return store.ensure_candidate(
        candidate.architecture.name,
        kind="baseline" if candidate.is_baseline else "candidate",
        family=candidate.architecture.family,
        params=count_params(candidate.model),
        flops=None,
        input_shape=candidate.input_shape,
        num_classes=num_classes,
        skeleton=key,
    )


def score_candidates(
    configs: Sequence[TrainConfig],
    estimators: Sequence[Estimator],
    dataset: Dataset,
    store: Store,
    *,
    progress: bool = False,
    on_score: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Every estimator's score of every config (columns `SCORE_COLUMNS`), one row per
    pair; a score stored earlier with the same key (candidate, estimator, data, seed,
    settings) is read back instead of computed (`reused`).

    A population estimator's rows come after the others: its members score every
    config first (stored and reused like any estimator; only those asked for get rows
    of their own), then it aggregates them, its key naming the population. Its
    seconds are its members' for that candidate: what the score costs."""
    import pandas as pd
    import torch

    from harness.estimate.base import PopulationEstimator
    from harness.measure import count_params
    from harness.trial import candidate_for

    groups = [e for e in estimators if isinstance(e, PopulationEstimator)]
    asked = [e for e in estimators if not isinstance(e, PopulationEstimator)]
    needed = {id(e): e for e in [*asked, *(m for g in groups for m in g.members)]}
    if groups and len(configs) < 2:
        raise ConfigError(
            f"{groups[0].name} ranks candidates against each other: it needs at least 2 "
            f"scored together, got {len(configs)}"
        )
    rows: list[dict[str, Any]] = []
    member_rows: dict[int, list[dict[str, Any]]] = {key: [] for key in needed}
    bar = _bar(len(configs), progress)
    reused = 0
    try:
        for config in configs:
            if config.threads:
                torch.set_num_threads(config.threads)
            candidate = candidate_for(config, dataset)
            candidate_id = candidate_row(candidate, len(dataset.classes), store)
            params = count_params(candidate.model)
            for key, estimator in needed.items():
                row = _score_one(estimator, config, dataset, store, candidate_id)
                row.update(arch=candidate.architecture.name, params=params)
                member_rows[key].append(row)
                if any(estimator is e for e in asked):
                    reused += row["reused"]
                    rows.append(row)
                    if on_score is not None:
                        on_score(row)
            if bar is not None:
                bar.set_postfix_str(f"{reused} scores reused", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    for group in groups:
        scored = [member_rows[id(m)] for m in group.members]
        for row in _aggregate(group, configs, scored, dataset, store):
            rows.append(row)
            if on_score is not None:
                on_score(row)
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def _estimate_key(estimator: Estimator, config: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    return {
        "data_fingerprint": dataset.fingerprint,
        "seed": config.seed if estimator.seeded else None,
        "settings": estimator.settings(),
    }


def _score_one(
    estimator: Estimator, config: TrainConfig, dataset: Dataset, store: Store, candidate_id: int
) -> dict[str, Any]:
    key = _estimate_key(estimator, config, dataset)
    found = store.find_estimate(candidate_id, estimator.name, **key)
    if found is not None:
        score, seconds, was_reused = found["score"], found["seconds"], True
    else:
        started = time.perf_counter()
        estimator.last_seconds = None
        score = estimator.score(config, dataset)
        seconds = time.perf_counter() - started
        if estimator.last_seconds is not None:
            seconds = estimator.last_seconds
        was_reused = False
        store.record_estimate(
            candidate_id, estimator.name, score, seconds=seconds, device=config.device, **key
        )
    return _row(candidate_id, estimator.name, score, seconds, was_reused)


def _row(
    candidate_id: int, estimator: str, score: float | None, seconds: float | None, reused: bool
) -> dict[str, Any]:
    return {
        "candidate_id": candidate_id,
        "estimator": estimator,
        "score": math.nan if score is None or not math.isfinite(score) else float(score),
        "seconds": seconds,
        "reused": reused,
    }


def _aggregate(
    group: PopulationEstimator,
    configs: Sequence[TrainConfig],
    scored: Sequence[Sequence[dict[str, Any]]],
    dataset: Dataset,
    store: Store,
) -> list[dict[str, Any]]:
    """The group's row for every config, from its members' rows (`scored[m][i]`: member
    m's row of config i); stored under a key that names the population (its sorted
    candidate ids), read back where stored with that key."""
    from harness.store import config_hash

    ids = [row["candidate_id"] for row in scored[0]]
    population = {"candidates": len(ids), "population": config_hash({"ids": sorted(ids)})[:16]}
    named = zip(group.members, scored, strict=True)
    values = group.aggregate({m.name: [r["score"] for r in rows] for m, rows in named})
    out = []
    for i, config in enumerate(configs):
        key = _estimate_key(group, config, dataset)
        key["settings"] = {**key["settings"], **population}
        seconds = math.fsum(float(rows[i]["seconds"] or 0.0) for rows in scored)
        found = store.find_estimate(ids[i], group.name, **key)
        if found is not None:
            row = _row(ids[i], group.name, found["score"], found["seconds"], True)
        else:
            store.record_estimate(
                ids[i], group.name, values[i], seconds=seconds, device=config.device, **key
            )
            row = _row(ids[i], group.name, values[i], seconds, False)
        row.update(arch=scored[0][i]["arch"], params=scored[0][i]["params"])
        out.append(row)
    return out


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    import sys

    from tqdm.auto import tqdm

    # tqdm's rate is candidates per second: the number a cheap estimate is for.
    return tqdm(total=total, desc="candidates", unit="cand", file=sys.stderr, dynamic_ncols=True)
