"""How well each estimator ranks candidates like real training, measured.

`validate_estimators` trains N candidates of a space stand-alone as ordinary
trials (`run_trial`, reusing complete trials of the same experiment): the
paper's landmark orderings where the space holds them (alternated, RI, IR, R*16,
I*16; with the budget's `named_seeds` seeds, which also measures seed noise), the
rest drawn uniformly (`sample_configs`). Then, for every estimator, it scores the
same candidates (stored scores reused) and compares the scores with the mean
validation accuracy over seeds:

- Spearman rho and Kendall tau-b (scipy.stats) with bootstrap 95% intervals
  (scipy.stats.bootstrap, percentile, candidates resampled in pairs; the statistics
  vectorised over resamples here, equal to scipy's on each);
- tau minus the parameter count's tau on the same resamples: an estimator whose
  interval does not lie above 0 is not shown to beat `params`;
- the top-K overlap (how many of the K best by score are among the K best trained;
  K * K / N is what a random ranking overlaps on average);
- the seconds each estimator spent per candidate, beside a stand-alone trial's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, GrammarError

if TYPE_CHECKING:
    import pandas as pd

    from harness.data import Dataset
    from harness.estimate.base import Estimator
    from harness.search import RunPlan
    from harness.store import Store

__all__ = [
    "LANDMARKS",
    "EstimatorCheck",
    "Validation",
    "correlate",
    "landmark_params",
    "validate_estimators",
    "verdict",
]

LANDMARKS = ("alternated", "RI", "IR", "R*16", "I*16")
BASELINE = "params"
RESAMPLES = 2000
# Resamples per vectorised call: (BATCH, N, N) sign matrices for Kendall's tau.
BATCH = 100


@dataclass
class EstimatorCheck:
    """One estimator's agreement with training, over the trained candidates."""

    estimator: str
    candidates: int
    rho: float
    rho_ci: tuple[float, float]
    tau: float
    tau_ci: tuple[float, float]
    tau_minus_params: float | None
    tau_minus_params_ci: tuple[float, float] | None
    top_k: int
    overlap: int
    seconds_per_candidate: float
    verdict: str
    cite: str = ""


@dataclass
class Validation:
    study: str
    space: str
    budget: str
    data: str
    trained: int  # candidates with a complete trial
    trials: int
    train_seconds_per_candidate: float
    checks: list[EstimatorCheck]
    candidates: list[dict[str, Any]] = field(default_factory=list)
    seed_sd: float | None = None  # pooled sd of val accuracy between seeds of one ordering

    def to_dict(self) -> dict[str, Any]:
        from harness.store import plain

        return plain(asdict(self))


def landmark_params(search: RunPlan) -> list[dict[str, Any]]:
    """The space's parameters of each landmark ordering it holds, in LANDMARKS order."""
    from harness.grammar import resolve

    space, out = search.space, []
    for text in LANDMARKS:
        try:
            flat = resolve(text, space.depths, known=space.letters or ("I", "R")).flat
            if len(flat) != sum(space.depths):
                continue  # R*16 in a space of fewer positions
            if space.kind == "choices":
                from harness.search.space import canonical_of

                wanted = canonical_of(space, text)
                held = [c for c in space.choices if canonical_of(space, c) == wanted]
                if not held:
                    continue
                values = {"arch": held[0]}
            else:
                values = space.encoding.params_of(flat)
        except (GrammarError, ConfigError):
            continue
        out.append(values)
    return out


def _bootstrap(
    statistic: Callable[..., Any], data: Sequence[Any], seed: int
) -> tuple[float, float]:
    """Percentile 95% interval of a vectorised `statistic(*samples, axis)`, paired resamples."""
    import numpy as np
    from scipy import stats

    result = stats.bootstrap(
        tuple(np.asarray(d, dtype=float) for d in data),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        batch=BATCH,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _tau(x: Any, y: Any, axis: int = -1) -> Any:
    """Kendall's tau-b along `axis` (scipy.stats.kendalltau's default, vectorised over
    resamples: scipy's own takes one pair of vectors). 0 where a resample is constant."""
    import numpy as np

    x, y = np.moveaxis(np.asarray(x, float), axis, -1), np.moveaxis(np.asarray(y, float), axis, -1)
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    # Each pair appears twice in the full matrices; the ratio is unchanged.
    concordance = (dx * dy).sum(axis=(-2, -1))
    untied = np.sqrt(np.abs(dx).sum(axis=(-2, -1)) * np.abs(dy).sum(axis=(-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(untied > 0, concordance / np.where(untied > 0, untied, 1.0), 0.0)
    return float(tau) if tau.ndim == 0 else tau


def _rho(x: Any, y: Any, axis: int = -1) -> Any:
    """Spearman's rho along `axis`: Pearson's r of the ranks (ties averaged), as
    scipy.stats.spearmanr. 0 where a resample is constant."""
    import numpy as np
    from scipy import stats

    rx = stats.rankdata(np.asarray(x, float), axis=axis)
    ry = stats.rankdata(np.asarray(y, float), axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    scale = np.sqrt((rx * rx).sum(axis=axis) * (ry * ry).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(scale > 0, (rx * ry).sum(axis=axis) / np.where(scale > 0, scale, 1.0), 0.0)
    return float(rho) if rho.ndim == 0 else rho


def _scipy(name: str, x: Any, y: Any) -> float:
    """The point estimate from scipy.stats (spearmanr or kendalltau); NaN when constant."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(getattr(stats, name)(x, y).statistic)


def correlate(
    scores: Sequence[float],
    accuracy: Sequence[float],
    *,
    params: Sequence[float] | None = None,
    top_k: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """rho, tau (with 95% bootstrap intervals), tau minus the `params` scores' tau (with
    its interval on the same resamples) and the top-K overlap of one estimator."""
    import numpy as np

    s, a = np.asarray(scores, float), np.asarray(accuracy, float)
    if len(s) < 3:
        raise ConfigError(f"rank correlations need at least 3 trained candidates, got {len(s)}")
    k = min(top_k, len(s))
    # A stable sort: ties keep the candidates' order, the same for score and accuracy.
    best_scored = set(np.argsort(-s, kind="stable")[:k].tolist())
    best_trained = set(np.argsort(-a, kind="stable")[:k].tolist())
    out: dict[str, Any] = {
        "rho": _scipy("spearmanr", s, a),
        "rho_ci": _bootstrap(_rho, (s, a), seed),
        "tau": _scipy("kendalltau", s, a),
        "tau_ci": _bootstrap(_tau, (s, a), seed),
        "top_k": k,
        "overlap": len(best_scored & best_trained),
        "tau_minus_params": None,
        "tau_minus_params_ci": None,
    }
    if params is not None:
        p = np.asarray(params, float)
        out["tau_minus_params"] = out["tau"] - _scipy("kendalltau", p, a)
        out["tau_minus_params_ci"] = _bootstrap(
            lambda x, y, z, axis=-1: _tau(x, y, axis) - _tau(z, y, axis), (s, a, p), seed
        )
    return out


def verdict(name: str, tau: float, tau_params: float | None, diff_ci: tuple | None) -> str:
    """Plain words on whether the estimator ranks better than the parameter count."""
    if name == BASELINE or tau_params is None:
        return "baseline"
    if not math.isfinite(tau):
        return "no score"
    if tau <= tau_params:
        return "no better than params"
    if diff_ci is not None and diff_ci[0] > 0:
        return "better than params"
    return "not shown better than params (difference's interval includes 0)"


def train_candidates(
    search: RunPlan,
    configs: Sequence[Any],
    landmarks: int,
    store: Store,
    dataset: Dataset,
    *,
    study: str,
    seeds: int,
    on_trial: Callable[[Any], None] | None = None,
) -> list[Any]:
    """(index of the config, outcome) of each config trained (or its complete trial
    reused); the first `landmarks` with `seeds` seeds (base seed, +1, ...), the rest
    with the base seed."""
    from harness.trial import run_trial

    outcomes = []
    for index, config in enumerate(configs):
        for offset in range(seeds if index < landmarks else 1):
            outcome = run_trial(
                config.replace(seed=config.seed + offset),
                store,
                study=study,
                dataset=dataset,
                reuse=True,
                measure_latency=False,
                study_fields=search.study_fields(),
            )
            outcomes.append((index, outcome))
            if on_trial is not None:
                on_trial(outcome)
    return outcomes


def trained_frame(outcomes: Sequence[Any], store: Store) -> pd.DataFrame:
    """One row per complete trial: the index of its config, trial and candidate ids,
    arch, validation accuracy and seconds of training."""
    import pandas as pd

    rows = [
        {"index": i, "trial_id": o.trial_id, "arch": o.arch, "val_acc": o.val_acc}
        for i, o in outcomes
        if o.status == "complete" and o.val_acc is not None
    ]
    frame = pd.DataFrame(rows, columns=["index", "trial_id", "arch", "val_acc"])
    if frame.empty:
        return frame.assign(candidate_id=[], train_seconds=[])
    trials = store.trials_frame()
    trials = trials[trials["trial_id"].isin(frame["trial_id"])]
    frame = frame.merge(trials[["trial_id", "candidate_id", "train_seconds"]], on="trial_id")
    return frame


def validate_estimators(
    search: RunPlan,
    estimators: Sequence[Estimator],
    store: Store,
    dataset: Dataset,
    *,
    trained: int,
    seeds: int | None = None,
    top_k: int = 8,
    study: str | None = None,
    progress: bool = False,
    on_trial: Callable[[Any], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> Validation:
    """Train `trained` candidates, score them with every estimator, compare (module doc)."""
    from harness.estimate.budget import check_cheaper
    from harness.estimate.rank import sample_configs, score_candidates
    from harness.stats import seed_noise

    first = landmark_params(search)[:trained]
    configs = sample_configs(search, trained, seed=search.settings.seed, first=first)
    check_cheaper(list(estimators), search, configs[0], dataset)
    seeds = search.budget.named_seeds if seeds is None else seeds
    study = study or f"{search.study}-validate"
    outcomes = train_candidates(
        search, configs, len(first), store, dataset, study=study, seeds=seeds, on_trial=on_trial
    )
    frame = trained_frame(outcomes, store)
    per_candidate = frame.groupby(["index", "candidate_id", "arch"], sort=False).agg(
        val_acc=("val_acc", "mean"), runs=("val_acc", "size"), train_s=("train_seconds", "mean")
    )
    per_candidate = per_candidate.reset_index()
    if len(per_candidate) < 3:
        raise ConfigError(
            f"only {len(per_candidate)} of {trained} candidates trained to completion; "
            "rank correlations need at least 3"
        )
    scored_configs = [configs[int(i)] for i in per_candidate["index"]]
    if all(e.name != BASELINE for e in estimators):
        from harness.estimate.base import get_estimator

        estimators = [get_estimator(BASELINE), *estimators]
    for estimator in estimators:
        if on_message is not None:
            on_message(f"preparing {estimator.name}")
        estimator.prepare(dataset, scored_configs[0], store=store, progress=on_message)
    scores = score_candidates(scored_configs, estimators, dataset, store, progress=progress)
    table = scores.pivot_table(index="candidate_id", columns="estimator", values="score")
    seconds = scores.groupby("estimator")["seconds"].mean()
    merged = per_candidate.set_index("candidate_id").join(table, how="inner")
    accuracy = merged["val_acc"].to_numpy()
    params = merged[BASELINE].to_numpy() if BASELINE in merged else None
    checks = []
    for estimator in estimators:
        column = merged[estimator.name].to_numpy()
        keep = [math.isfinite(v) for v in column]
        use_params = params if all(keep) else None
        numbers = correlate(
            column[keep] if not all(keep) else column,
            accuracy[keep] if not all(keep) else accuracy,
            params=use_params,
            top_k=top_k,
            seed=search.settings.seed,
        )
        checks.append(
            EstimatorCheck(
                estimator=estimator.name,
                candidates=int(sum(keep)),
                seconds_per_candidate=float(seconds.get(estimator.name, math.nan)),
                cite=estimator.cite,
                verdict="",
                **numbers,
            )
        )
    tau_params = next((c.tau for c in checks if c.estimator == BASELINE), None)
    for check in checks:
        check.verdict = verdict(check.estimator, check.tau, tau_params, check.tau_minus_params_ci)
    noise = seed_noise([list(g) for _, g in frame.groupby("candidate_id")["val_acc"]])
    return Validation(
        study=study,
        space=search.space.name,
        budget=search.budget.name,
        data=search.data,
        trained=len(per_candidate),
        trials=len(outcomes),
        train_seconds_per_candidate=float(per_candidate["train_s"].mean()),
        checks=checks,
        candidates=merged.reset_index().to_dict("records"),
        seed_sd=None if noise is None else noise.pooled_sd,
    )
