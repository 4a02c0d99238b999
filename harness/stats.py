"""The report's statistics, on `scipy.stats`: means with t intervals, Welch's test for
unpaired groups, paired tests over shared seeds, McNemar's test over shared test
images, and Holm's adjustment for several comparisons on one page.

Which test when: two *families* pool different architectures, so their runs are
not paired (Welch). Two *networks* trained in one study see the same seeds' data
order and initial draws, so their runs pair by seed (paired t, Wilcoxon). Two
*trained models* scored on the same test images pair by image (McNemar).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MIN_RUNS",
    "McNemar",
    "MeanCI",
    "Paired",
    "SeedNoise",
    "Welch",
    "holm",
    "mcnemar",
    "mean_ci",
    "paired",
    "seed_noise",
    "welch",
]

# Fewer runs than this per group (or shared seeds per pair) and the report says so.
MIN_RUNS = 2


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float
    sd: float  # sample standard deviation (n - 1); NaN when n < 2
    low: float  # bounds of the t confidence interval; NaN when n < 2
    high: float


@dataclass(frozen=True)
class Welch:
    n_a: int
    n_b: int
    diff: float  # mean(a) - mean(b)
    low: float  # confidence interval of the difference
    high: float
    t: float
    df: float
    p: float  # two-sided


@dataclass(frozen=True)
class Paired:
    """Two networks over the seeds they share: differences a - b, seed by seed."""

    n: int
    diff: float  # mean of the per-seed differences
    low: float  # t confidence interval of the mean difference; NaN when undefined
    high: float
    t: float
    p: float  # paired t, two-sided; NaN when undefined
    p_wilcoxon: float  # Wilcoxon signed-rank, two-sided (exact for small n); NaN when undefined


@dataclass(frozen=True)
class McNemar:
    """Two trained models on the same test images."""

    n: int  # images
    only_a: int  # images model a got right and b wrong
    only_b: int
    p: float  # exact (binomial) McNemar, two-sided; 1.0 when the models never disagree


def _quiet(test: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a SciPy test without its warning about nearly identical data: seeds of one
    network often agree to many digits, and the result is still right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return test(*args, **kwargs)


def _clean(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean_ci(values: Sequence[float | None], level: float = 0.95) -> MeanCI:
    from scipy import stats

    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan)
    mean = sum(xs) / n
    if n < 2:
        return MeanCI(n, mean, math.nan, math.nan, math.nan)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * sd / math.sqrt(n)
    return MeanCI(n, mean, sd, mean - half, mean + half)


def welch(
    a: Sequence[float | None], b: Sequence[float | None], level: float = 0.95
) -> Welch | None:
    """Welch's unequal-variance t-test of mean(a) == mean(b), for unpaired runs.

    None when either side has fewer than `MIN_RUNS` values, or when neither has
    any spread (identical runs), where the statistic is undefined.
    """
    from scipy import stats

    xa, xb = _clean(a), _clean(b)
    if len(xa) < MIN_RUNS or len(xb) < MIN_RUNS:
        return None
    sa, sb = mean_ci(xa, level), mean_ci(xb, level)
    if sa.sd == 0.0 and sb.sd == 0.0:
        return None
    result = _quiet(stats.ttest_ind, xa, xb, equal_var=False)
    interval = result.confidence_interval(level)
    return Welch(
        n_a=sa.n,
        n_b=sb.n,
        diff=sa.mean - sb.mean,
        low=float(interval.low),
        high=float(interval.high),
        t=float(result.statistic),
        df=float(result.df),
        p=float(result.pvalue),
    )


def paired(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Paired | None:
    """Paired t and Wilcoxon signed-rank tests of a - b over matched runs (same seeds).

    None with fewer than `MIN_RUNS` pairs. When every difference is the same the
    t statistic is undefined (NaN p); when every difference is zero the runs are
    identical and both p-values are 1.
    """
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    pairs = [
        (float(x), float(y))
        for x, y in zip(a, b, strict=True)
        if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))
    ]
    n = len(pairs)
    if n < MIN_RUNS:
        return None
    diffs = [x - y for x, y in pairs]
    mean = sum(diffs) / n
    if all(d == 0.0 for d in diffs):
        return Paired(n, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0)
    if all(d == diffs[0] for d in diffs):  # no spread: t is infinite, p undefined
        return Paired(n, mean, math.nan, math.nan, math.copysign(math.inf, mean), math.nan,
                      float(_quiet(stats.wilcoxon, diffs).pvalue))  # fmt: skip
    result = _quiet(stats.ttest_rel, [x for x, _ in pairs], [y for _, y in pairs])
    interval = result.confidence_interval(level)
    return Paired(
        n=n,
        diff=mean,
        low=float(interval.low),
        high=float(interval.high),
        t=float(result.statistic),
        p=float(result.pvalue),
        p_wilcoxon=float(_quiet(stats.wilcoxon, diffs).pvalue),
    )


def mcnemar(
    predictions_a: Sequence[int], predictions_b: Sequence[int], targets: Sequence[int]
) -> McNemar:
    """Exact McNemar test: do two models on the same images err on different ones more
    often one way than the other? Only the images exactly one model gets right count."""
    from scipy import stats

    if not len(predictions_a) == len(predictions_b) == len(targets):
        raise ValueError(
            f"McNemar needs the same images: {len(predictions_a)}, {len(predictions_b)} "
            f"predictions and {len(targets)} targets"
        )
    only_a = only_b = 0
    for pa, pb, t in zip(predictions_a, predictions_b, targets, strict=True):
        right_a, right_b = pa == t, pb == t
        only_a += right_a and not right_b
        only_b += right_b and not right_a
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    return McNemar(len(targets), only_a, only_b, min(p, 1.0))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input's order.

    NaN p-values (comparisons that could not be made) stay NaN and do not count
    towards the number of comparisons.
    """
    indexed = [(p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class SeedNoise:
    """How much one network's accuracy moves from seed to seed, pooled over networks."""

    networks: int  # networks with at least two seeds
    runs: int
    pooled_sd: float  # pooled within-network standard deviation
    largest_gap: float  # the largest max - min over the seeds of one network
    threshold: float  # 1.96 * sqrt(2) * pooled_sd: two single runs closer than this are noise


def seed_noise(groups: Sequence[Sequence[float | None]]) -> SeedNoise | None:
    """Seed noise from the networks that have several seeds; None when none has."""
    usable = [xs for xs in (_clean(g) for g in groups) if len(xs) >= MIN_RUNS]
    if not usable:
        return None
    dof = sum(len(xs) - 1 for xs in usable)
    squares = 0.0
    for xs in usable:
        mean = sum(xs) / len(xs)
        squares += sum((x - mean) ** 2 for x in xs)
    pooled = math.sqrt(squares / dof)
    return SeedNoise(
        networks=len(usable),
        runs=sum(len(xs) for xs in usable),
        pooled_sd=pooled,
        largest_gap=max(max(xs) - min(xs) for xs in usable),
        threshold=1.96 * math.sqrt(2.0) * pooled,
    )
