"""`harness run --strategy proxy:NAME|supernet --top K`: rank many candidates cheaply,
then train only the best K stand-alone.

Optuna stays the driver. A proposal study (in memory, the run's sampler and seed)
asks for candidates; the estimator scores each one and the score is told back as
the trial's value, so that TPE steers towards high-scoring orderings as it would
towards accurate ones (`harness.estimate.rank.propose_and_score`). Each score is
recorded in the results store's estimates table, so that a rerun reads it back
instead of computing it, proposes the same candidates and enqueues the same K.
The top K by score are then enqueued into the run's study and trained by the
ordinary trial path (workers, pruning, repeats, leaderboard), each carrying its
score and rank as user attributes.

It sits above both `harness.search` (the study, the trial path) and
`harness.estimate` (the scores, which reads search's spaces): `harness.search`
never imports `harness.estimate`, so the two packages do not lean on each other.
`ranked_search` is `harness.search.run_search` with the ranked top K enqueued
before the first trial.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness.data import Dataset
    from harness.estimate.base import Estimator
    from harness.search.plan import RunPlan
    from harness.search.runner import SearchResult
    from harness.search.settings import SearchSettings
    from harness.store import Store

__all__ = [
    "STRATEGY_ATTR",
    "Ranking",
    "check_strategy",
    "enqueue_top",
    "estimator_of",
    "rank_candidates",
    "ranked_search",
]

TRAIN = "train"
STRATEGY_ATTR = "strategy"
SCORE_ATTR = "estimate_score"
RANK_ATTR = "estimate_rank"
HELP = (
    "train (default): train every candidate the sampler proposes; proxy:NAME (params, "
    "flops, synflow, naswot, snip, grad_norm): score --candidates of them with that "
    "zero-cost estimator and train the best --top; supernet: the same with a weight-sharing "
    "supernet trained first (the budget's epochs)"
)


def estimator_of(strategy: str) -> str | None:
    """'proxy:naswot' -> 'naswot', 'supernet' -> 'supernet', 'train' -> None; ConfigError
    (naming the known estimators) for anything else."""
    from harness.estimate.base import estimator_class, estimator_names

    text = strategy.strip()
    if text == TRAIN:
        return None
    if text == "supernet":
        return "supernet"
    kind, _, name = text.partition(":")
    proxies = [n for n in estimator_names() if n != "supernet"]
    if kind != "proxy" or not name:
        raise ConfigError(
            f"--strategy must be train, supernet or proxy:NAME (NAME one of "
            f"{', '.join(proxies)}), got {strategy!r}"
        )
    if name == "supernet":
        raise ConfigError("--strategy proxy:supernet: write --strategy supernet")
    estimator_class(name)  # an unknown name: one line listing the known ones
    return name


def check_strategy(search: RunPlan) -> Estimator | None:
    """The strategy's estimator, after every check that needs no data or training: the
    estimator known and able to hold the space (a supernet refuses timm baselines and
    searched widths), `--top` no more than the candidates scored nor than the space
    holds. None for the default strategy."""
    from harness.estimate.rank import check_capacity, make_estimators

    settings = search.settings
    name = estimator_of(settings.strategy)
    if name is None:
        return None
    # The supernet's own training is recorded in a study of its own: it is not a
    # candidate of this search and must not stand on its leaderboard.
    options = {"overrides": settings.overrides, "study": f"{search.study}:supernet"}
    estimator = make_estimators([name], space=search.space, options=options)[0]
    check_capacity(search, settings.top, "--top")
    check_capacity(search, search.candidates, "--candidates")
    if settings.top > search.candidates:
        raise ConfigError(
            f"--top {settings.top} is more than the {search.candidates} candidates scored; "
            f"raise --candidates or lower --top"
        )
    return estimator


@dataclass
class Ranking:
    """Every scored candidate (rank.SCORE_COLUMNS), best first."""

    estimator: str
    frame: pd.DataFrame
    values: list[dict[str, Any]]  # each row's Optuna parameters, in the frame's order

    def top(self, k: int) -> list[tuple[dict[str, Any], float]]:
        return [(self.values[i], float(self.frame["score"].iloc[i])) for i in range(k)]


def rank_candidates(
    search: RunPlan, estimator: Estimator, store: Store, dataset: Dataset
) -> Ranking:
    """Score `search.candidates` distinct candidates proposed by the run's sampler with
    the strategy's `estimator` (check_strategy's), best first (a candidate without a
    finite score last)."""
    from harness.estimate.rank import propose_and_score
    from harness.search.samplers import make_sampler

    settings = search.settings
    sampler = make_sampler(
        settings.sampler,
        objectives=("accuracy",),  # one value: the score
        space=search.space,
        params=search.params,
        seed=settings.seed,
        n_trials=search.candidates,
    )
    proposals = propose_and_score(
        search,
        sampler,
        [estimator],
        dataset,
        store,
        search.candidates,
        on_message=_say(settings.progress),
    )
    frame, values = proposals.best_first(estimator.name)
    return Ranking(estimator.name, frame, values)


def _say(enabled: bool) -> Any:
    if not enabled:
        return None
    return lambda text: print(text, file=sys.stderr)


def enqueue_top(study: optuna.Study, search: RunPlan, ranking: Ranking) -> int:
    """Enqueue the top `--top` candidates, with the run's seed, that the study has not
    trained or queued yet; returns how many were added."""
    from harness.search.study import SEED_PARAM, enqueue

    added = 0
    for rank, (params, score) in enumerate(ranking.top(search.settings.top), start=1):
        attrs = {STRATEGY_ATTR: search.settings.strategy, SCORE_ATTR: score, RANK_ATTR: rank}
        added += enqueue(study, {**params, SEED_PARAM: search.settings.seed}, attrs)
    return added


def rank_and_enqueue(
    search: RunPlan, store: Store, study: optuna.Study, dataset: Dataset, *, estimator: Estimator
) -> None:
    """Score the strategy's candidates cheaply and queue the best `--top` as trials."""
    started = time.perf_counter()
    ranking = rank_candidates(search, estimator, store, dataset)
    added = enqueue_top(study, search, ranking)
    if search.settings.progress:
        best = ", ".join(
            f"{row.arch} {row.score:.4g}"
            for row in ranking.frame.head(search.settings.top).itertuples()
        )
        print(
            f"{search.settings.strategy}: scored {len(ranking.frame)} candidates in "
            f"{time.perf_counter() - started:.1f}s; training the top {search.settings.top} "
            f"({added} new): {best}",
            file=sys.stderr,
        )


def ranked_search(
    settings: SearchSettings,
    *,
    search: RunPlan | None = None,
    dataset: Dataset | None = None,
    estimator: Estimator | None = None,
) -> SearchResult:
    """`harness run` with any strategy: the default trains what the sampler proposes;
    an estimator's strategy first queues its ranked top K into the study. `estimator`
    is the one `check_strategy` returned (checked and built here when not given)."""
    from harness.search.plan import RunPlan
    from harness.search.runner import run_search

    if estimator_of(settings.strategy) is None:
        return run_search(settings, search=search, dataset=dataset)
    search = search or RunPlan.resolve(settings)
    estimator = estimator or check_strategy(search)
    before = functools.partial(rank_and_enqueue, estimator=estimator)
    return run_search(settings, search=search, dataset=dataset, before_trials=before)
