"""Small-sample statistics for the report: means with t intervals and Welch's t-test.

Written with `math` alone (the Student t distribution through the regularised
incomplete beta function) so that the report needs no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MeanCI", "Welch", "mean_ci", "t_sf2", "t_ppf", "welch"]

# Fewer runs than this per group and the report says "not enough runs".
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


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast only on one side of the mean.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| >= |t|) of Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_ppf(q: float, df: float) -> float:
    """The q-quantile (q > 0.5) of Student's t, by bisection on `t_sf2`."""
    target = 2.0 * (1.0 - q)
    low, high = 0.0, 1.0
    while t_sf2(high, df) > target:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_sf2(mid, df) > target:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2.0


def mean_ci(values: Sequence[float], level: float = 0.95) -> MeanCI:
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan)
    mean = sum(xs) / n
    if n < 2:
        return MeanCI(n, mean, math.nan, math.nan, math.nan)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_ppf(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return MeanCI(n, mean, sd, mean - half, mean + half)


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Welch | None:
    """Welch's unequal-variance t-test of mean(a) == mean(b).

    None when either side has fewer than `MIN_RUNS` values, or when both have
    no spread at all (identical runs), where the statistic is undefined.
    """
    sa, sb = mean_ci(a, level), mean_ci(b, level)
    if sa.n < MIN_RUNS or sb.n < MIN_RUNS:
        return None
    va, vb = sa.sd**2 / sa.n, sb.sd**2 / sb.n
    se = math.sqrt(va + vb)
    if se == 0.0:
        return None
    diff = sa.mean - sb.mean
    t = diff / se
    # Welch-Satterthwaite degrees of freedom.
    df = (va + vb) ** 2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))
    half = t_ppf(0.5 + level / 2.0, df) * se
    return Welch(sa.n, sb.n, diff, diff - half, diff + half, t, df, t_sf2(t, df))
