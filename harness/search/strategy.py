"""`harness run --strategy proxy:NAME|supernet --top K`: rank many candidates cheaply,
then train only the best K stand-alone.

Optuna stays the driver. A proposal study (in memory, the run's sampler and seed)
asks for candidates; the estimator scores each one and the score is told back as
the trial's value, so that TPE steers towards high-scoring orderings as it would
towards accurate ones. Each score is recorded in the results store's estimates
table (`harness.estimate.rank.score_candidates`), so that a rerun reads it back
instead of computing it, proposes the same candidates and enqueues the same K.
The top K by score are then enqueued into the run's study and trained by the
ordinary trial path (workers, pruning, repeats, leaderboard), each carrying its
score and rank as user attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness.data import Dataset
    from harness.estimate.base import Estimator
    from harness.search.settings import Search
    from harness.store import Store

__all__ = [
    "STRATEGY_ATTR",
    "Ranking",
    "check_strategy",
    "enqueue_top",
    "estimator_of",
    "rank_candidates",
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


def _estimator(search: Search) -> Estimator:
    from harness.estimate.rank import make_estimators

    name = estimator_of(search.settings.strategy)
    assert name is not None
    # The supernet's own training is recorded in a study of its own: it is not a
    # candidate of this search and must not stand on its leaderboard.
    options = {"overrides": search.settings.overrides, "study": f"{search.study}:supernet"}
    return make_estimators([name], space=search.space, options=options)[0]


def check_strategy(search: Search) -> Estimator | None:
    """The strategy's estimator, after every check that needs no data or training: the
    estimator known and able to hold the space (a supernet refuses timm baselines and
    searched widths), `--top` no more than the candidates scored nor than the space
    holds. None for the default strategy."""
    from harness.estimate.rank import space_capacity

    settings = search.settings
    if estimator_of(settings.strategy) is None:
        return None
    estimator = _estimator(search)
    capacity = space_capacity(search)
    if capacity is not None and settings.top > capacity:
        raise ConfigError(
            f"--top {settings.top} is more than space {search.space.name} holds "
            f"({capacity:,} distinct candidates)"
        )
    if capacity is not None and search.candidates > capacity:
        raise ConfigError(
            f"--candidates {search.candidates} is more than space {search.space.name} holds "
            f"({capacity:,} distinct candidates); ask for at most {capacity:,}"
        )
    if settings.top > search.candidates:
        raise ConfigError(
            f"--top {settings.top} is more than the {search.candidates} candidates scored; "
            f"raise --candidates or lower --top"
        )
    return estimator


@dataclass
class Ranking:
    """Every scored candidate (rank.SCORE_COLUMNS plus `params_json`), best first."""

    estimator: str
    frame: pd.DataFrame
    values: list[dict[str, Any]]  # each row's Optuna parameters, in the frame's order

    def top(self, k: int) -> list[tuple[dict[str, Any], float]]:
        return [(self.values[i], float(self.frame["score"].iloc[i])) for i in range(k)]


def rank_candidates(search: Search, store: Store, dataset: Dataset) -> Ranking:
    """Score `search.candidates` distinct candidates proposed by the run's sampler,
    best first (a candidate without a finite score last)."""
    import optuna
    import pandas as pd

    from harness.estimate.rank import score_candidates
    from harness.search.params import suggest
    from harness.search.samplers import make_sampler
    from harness.store import config_hash

    estimator = check_strategy(search)
    assert estimator is not None
    settings = search.settings
    wanted = search.candidates
    sampler = make_sampler(
        settings.sampler,
        objectives=("accuracy",),  # one value: the score
        space=search.space,
        params=search.params,
        seed=settings.seed,
        n_trials=wanted,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    proposals = optuna.create_study(direction="maximize", sampler=sampler)
    rows: list[dict[str, Any]] = []
    values: list[dict[str, Any]] = []
    seen: dict[str, float] = {}
    prepared = False
    # A sampler repeats itself near the end of a small space; give up well after that.
    attempts, limit = 0, 1000 + 20 * wanted * max(1, int(math.log(max(wanted, 2))))
    while len(rows) < wanted:
        attempts += 1
        if attempts > limit:
            raise ConfigError(
                f"the {settings.sampler} sampler proposed {attempts:,} candidates and only "
                f"{len(rows)} distinct ones of the {wanted} asked for; ask for fewer"
            )
        trial = proposals.ask()
        chosen = suggest(trial, search.space, search.params)
        config = search.trial_config(chosen)
        key = config_hash(config.identity())
        if key in seen:  # told again, so the sampler learns it but it is scored once
            proposals.tell(trial, seen[key])
            continue
        if not prepared:
            # A supernet trains (or loads) here, recorded as its own trial.
            estimator.prepare(dataset, config, store=store, progress=_say(settings.progress))
            prepared = True
        row = score_candidates([config], [estimator], dataset, store).iloc[0].to_dict()
        score = row["score"]
        seen[key] = score if math.isfinite(score) else -math.inf
        if math.isfinite(score):
            proposals.tell(trial, score)
        else:  # no score (a network the proxy cannot read): the sampler learns nothing
            proposals.tell(trial, state=optuna.trial.TrialState.FAIL)
        rows.append(row)
        values.append(chosen)
    frame = pd.DataFrame(rows)
    # Stable sort: ties keep the sampler's order, so a rerun picks the same K.
    order = frame["score"].fillna(-math.inf).sort_values(ascending=False, kind="stable").index
    frame = frame.loc[order].reset_index(drop=True)
    return Ranking(estimator.name, frame, [values[i] for i in order])


def _say(enabled: bool) -> Any:
    if not enabled:
        return None
    import sys

    return lambda text: print(text, file=sys.stderr)


def enqueue_top(study: optuna.Study, search: Search, ranking: Ranking) -> int:
    """Enqueue the top `--top` candidates, with the run's seed, that the study has not
    trained or queued yet; returns how many were added."""
    from harness.search.study import SEED_PARAM, enqueue

    added = 0
    for rank, (params, score) in enumerate(ranking.top(search.settings.top), start=1):
        attrs = {STRATEGY_ATTR: search.settings.strategy, SCORE_ATTR: score, RANK_ATTR: rank}
        added += enqueue(study, {**params, SEED_PARAM: search.settings.seed}, attrs)
    return added
