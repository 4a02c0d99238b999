"""Proposing candidates of a space with an Optuna sampler and scoring each cheaply,
each score stored and reused.

    search = RunPlan.resolve(SearchSettings(space="rir_balanced", url=url))
    estimators = make_estimators(["params", "synflow"], space=search.space)
    sampler = optuna.samplers.RandomSampler(seed=0)
    proposals = propose_and_score(search, sampler, estimators, dataset, store, 2000)

`propose_and_score` is the one proposal loop: an in-memory study asks the sampler
for the space's parameters, each distinct candidate (by its training config's
identity) is scored once as it comes and the first estimator's score is told back,
so that a sampler such as TPE steers towards high scores (`harness run --strategy`).
`sample_configs` draws uniformly with Optuna's `RandomSampler` and scores nothing
(for a `counts` space every ordering is equally likely). `score_candidates` scores
candidates already chosen. Each network is built once for every proxy
(`Proxy.score_built`).
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness.candidate import Candidate
    from harness.config import TrainConfig
    from harness.data import Dataset
    from harness.estimate.base import Estimator
    from harness.search import RunPlan
    from harness.search.space import SearchSpace
    from harness.store import Store

__all__ = [
    "SCORE_COLUMNS",
    "Proposals",
    "candidate_row",
    "check_capacity",
    "make_estimators",
    "parse_estimators",
    "propose_and_score",
    "sample_configs",
    "score_candidates",
    "space_capacity",
]

SCORE_COLUMNS = ("candidate_id", "arch", "params", "estimator", "score", "seconds", "reused")


def space_capacity(search: RunPlan) -> int | None:
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


def check_capacity(search: RunPlan, count: int, flag: str) -> None:
    """ConfigError if `count` (asked for as `flag`) is more distinct candidates than the
    space holds."""
    capacity = space_capacity(search)
    if capacity is not None and count > capacity:
        raise ConfigError(
            f"{flag} {count:,} is more than space {search.space.name} holds "
            f"({capacity:,} distinct candidates); ask for at most {capacity:,}"
        )


@dataclass
class Proposals:
    """The distinct candidates proposed, in the order proposed, and their scores."""

    configs: list[TrainConfig]
    values: list[dict[str, Any]]  # each candidate's Optuna parameters
    frame: pd.DataFrame  # SCORE_COLUMNS; no rows when nothing was scored

    def best_first(self, estimator: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """`estimator`'s rows, best first (a candidate without a finite score last; ties
        in the order proposed, so that a rerun ranks alike), and each row's parameters."""
        rows = self.frame[self.frame["estimator"] == estimator].reset_index(drop=True)
        order = rows["score"].fillna(-math.inf).sort_values(ascending=False, kind="stable").index
        return rows.loc[order].reset_index(drop=True), [self.values[i] for i in order]


def propose_and_score(
    search: RunPlan,
    sampler: optuna.samplers.BaseSampler,
    estimators: Sequence[Estimator],
    dataset: Dataset | None,
    store: Store | None,
    count: int,
    *,
    first: Sequence[Mapping[str, Any]] = (),
    progress: bool = False,
    on_message: Callable[[str], None] | None = None,
) -> Proposals:
    """`count` distinct candidates of `search`: the parameter sets in `first` as given,
    then those `sampler` proposes; each scored by every estimator as it comes (the
    estimators prepared on the first), the first estimator's score told back to the
    sampler (no score is a failed trial; a population estimator's is known only at the
    end, too late to tell). A proposal seen before is told its score again and not
    counted. ConfigError, before any proposal, if the space holds fewer than `count`;
    and if the sampler keeps proposing candidates seen before. With no estimators,
    `dataset` and `store` may be None and nothing is told."""
    from harness.search.params import suggest

    check_capacity(search, count, "count")
    study = _proposal_study(sampler)
    queue = [dict(given) for given in first]
    configs: list[TrainConfig] = []
    values: list[dict[str, Any]] = []
    told: dict[str, float | None] = {}  # by candidate identity; None: nothing to tell
    # Coupon collecting: proposing all of a space of size m takes about m ln m draws.
    attempts, limit = 0, 1000 + 20 * count * max(1, int(math.log(max(count, 2))))
    with _Scorer(estimators, dataset, store, total=count, progress=progress) as scorer:
        while len(configs) < count:
            attempts += 1
            if attempts > limit:
                raise ConfigError(
                    f"proposed {attempts:,} candidates of space {search.space.name} and found "
                    f"only {len(configs):,} distinct ones of the {count:,} asked for; ask for fewer"
                )
            trial = None if queue else study.ask()
            chosen = queue.pop(0) if trial is None else suggest(trial, search.space, search.params)
            config = search.trial_config(chosen)
            key = _identity(config)
            if key not in told:
                if not configs:  # a supernet trains (or loads) here, recorded as its own trial
                    for estimator in estimators:
                        estimator.prepare(dataset, config, store=store, progress=on_message)
                configs.append(config)
                values.append(chosen)
                told[key] = scorer.add(config).get(estimators[0].name) if estimators else None
            if trial is not None:
                _tell(study, trial, told[key])
    return Proposals(configs, values, scorer.frame())


def _proposal_study(sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """An in-memory study for `sampler` to propose in, created without Optuna's line
    on stderr (commands keep stderr for their own progress)."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(direction="maximize", sampler=sampler)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _tell(study: optuna.Study, trial: optuna.trial.Trial, score: float | None) -> None:
    import optuna

    if score is None:  # a population estimator's: not known yet
        return
    if math.isfinite(score):
        study.tell(trial, score)
    else:  # no score (a network the estimator cannot read): the sampler learns nothing
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def sample_configs(
    search: RunPlan,
    n: int,
    *,
    seed: int = 0,
    first: Sequence[Mapping[str, Any]] = (),
) -> list[TrainConfig]:
    """`n` distinct candidates of the search (their training configs): the parameter
    sets in `first`, then uniform draws of Optuna's RandomSampler with `seed`.
    ConfigError if the space has fewer than `n`, before any drawing."""
    import optuna

    sampler = optuna.samplers.RandomSampler(seed=seed)
    return propose_and_score(search, sampler, (), None, None, n, first=first).configs


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
) -> pd.DataFrame:
    """Every estimator's score of every config (columns `SCORE_COLUMNS`), one row per
    pair; a score stored earlier with the same key (candidate, estimator, data, seed,
    settings) is read back instead of computed (`reused`).

    A population estimator's rows come after the others: its members score every
    config first (stored and reused like any estimator; only those asked for get rows
    of their own), then it aggregates them, its key naming the population. Its
    seconds are its members' for that candidate: what the score costs."""
    with _Scorer(estimators, dataset, store, total=len(configs), progress=progress) as scorer:
        for config in configs:
            scorer.add(config)
    return scorer.frame()


class _Scorer:
    """Scores candidates as they come (`add`), each network built once for every
    estimator; the population estimators score them all at the end (`frame`)."""

    def __init__(
        self,
        estimators: Sequence[Estimator],
        dataset: Dataset | None,
        store: Store | None,
        *,
        total: int,
        progress: bool,
    ) -> None:
        from harness.estimate.base import PopulationEstimator

        self.groups = [e for e in estimators if isinstance(e, PopulationEstimator)]
        if self.groups and total < 2:
            raise ConfigError(
                f"{self.groups[0].name} ranks candidates against each other: it needs at "
                f"least 2 scored together, got {total}"
            )
        asked = [e for e in estimators if not isinstance(e, PopulationEstimator)]
        members = [m for group in self.groups for m in group.members]
        self.asked = {id(e) for e in asked}
        # Each estimator scored per candidate, with its rows (by id: a member may be asked for)
        self.scored = {id(e): (e, []) for e in [*asked, *members]}
        self.dataset, self.store = dataset, store
        self.configs: list[TrainConfig] = []
        self.rows: list[dict[str, Any]] = []  # the asked estimators', in the order scored
        self.reused = 0
        self.total, self.progress, self.bar = total, progress, None

    def __enter__(self) -> _Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def add(self, config: TrainConfig) -> dict[str, float]:
        """Scores `config` by every estimator but the population ones; returns their
        scores by name (NaN where none)."""
        import torch

        from harness.estimate.proxies import initial_candidate
        from harness.measure import count_params, resolve_device

        if self.bar is None:  # not before: the estimators' preparation has its own output
            from tqdm.auto import tqdm

            # Its rate is candidates per second: the number a cheap estimate is for.
            self.bar = tqdm(
                total=self.total,
                desc="candidates",
                unit="cand",
                file=sys.stderr,
                dynamic_ncols=True,
                disable=not self.progress,
            )
        started = time.perf_counter()
        candidate = initial_candidate(config, self.dataset)
        built = time.perf_counter() - started
        candidate_id = candidate_row(candidate, len(self.dataset.classes), self.store)
        shown = {"arch": candidate.architecture.name, "params": count_params(candidate.model)}
        device = resolve_device(config.device)
        out = {}
        for estimator, rows in self.scored.values():
            # Each estimator starts from the random state the build left (dropout draws
            # from it), as if it had built the network itself.
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                row = self._recalled_or_recorded(
                    estimator,
                    config,
                    candidate_id,
                    lambda e=estimator: _timed_score(e, config, self.dataset, candidate, built),
                )
            rows.append({**row, **shown})
            if id(estimator) in self.asked:
                self.reused += row["reused"]
                self.rows.append(rows[-1])
                out[estimator.name] = row["score"]
        self.configs.append(config)
        self.bar.set_postfix_str(f"{self.reused} scores reused", refresh=False)
        self.bar.update(1)
        return out

    def frame(self) -> pd.DataFrame:
        """Every row: the asked estimators' in the order scored, then each population
        estimator's, keyed by the population (its sorted candidate ids)."""
        import pandas as pd

        from harness.store import config_hash

        out = list(self.rows)
        for group in self.groups:
            scored = [self.scored[id(member)][1] for member in group.members]
            ids = [row["candidate_id"] for row in scored[0]]
            population = {
                "candidates": len(ids),
                "population": config_hash({"ids": sorted(ids)})[:16],
            }
            named = zip(group.members, scored, strict=True)
            values = group.aggregate({m.name: [r["score"] for r in rows] for m, rows in named})
            for i, config in enumerate(self.configs):
                own = [rows[i] for rows in scored]  # each member's row of this candidate
                seconds = math.fsum(float(row["seconds"] or 0.0) for row in own)
                row = self._recalled_or_recorded(
                    group,
                    config,
                    ids[i],
                    lambda score=values[i], seconds=seconds: (score, seconds),
                    population,
                )
                out.append({**row, "arch": own[0]["arch"], "params": own[0]["params"]})
        return pd.DataFrame(out, columns=list(SCORE_COLUMNS))

    def _recalled_or_recorded(
        self,
        estimator: Estimator,
        config: TrainConfig,
        candidate_id: int,
        compute: Callable[[], tuple[float | None, float | None]],
        population: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`estimator`'s row of the candidate: read back where stored with the same key
        (data, seed where it matters, settings), else computed (score, seconds) and stored."""
        key = {
            "data_fingerprint": self.dataset.fingerprint,
            "seed": config.seed if estimator.seeded else None,
            "settings": {**estimator.settings(), **(population or {})},
        }
        found = self.store.find_estimate(candidate_id, estimator.name, **key)
        reused = found is not None
        if reused:
            score, seconds = found["score"], found["seconds"]
        else:
            score, seconds = compute()
            self.store.record_estimate(
                candidate_id, estimator.name, score, seconds=seconds, device=config.device, **key
            )
        return {
            "candidate_id": candidate_id,
            "estimator": estimator.name,
            "score": math.nan if score is None or not math.isfinite(score) else float(score),
            "seconds": seconds,
            "reused": reused,
        }


def _timed_score(
    estimator: Estimator,
    config: TrainConfig,
    dataset: Dataset,
    candidate: Candidate,
    build_seconds: float,
) -> tuple[float, float]:
    """`estimator`'s score of the built candidate and what it cost on its own."""
    from harness.estimate.proxies import Proxy

    started = time.perf_counter()
    estimator.last_seconds = None
    if isinstance(estimator, Proxy):
        score = estimator.score_built(config, dataset, candidate)
        started -= build_seconds  # alone, it would have built the network too
    else:
        score = estimator.score(config, dataset)
    if estimator.last_seconds is not None:
        return score, estimator.last_seconds
    return score, time.perf_counter() - started
