"""`ensemble`: a rank aggregation of zero-cost proxies, as AZ-NAS aggregates its own
(Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search",
CVPR 2024)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.errors import ConfigError
from harness.estimate.base import PopulationEstimator, estimator_class, register

__all__ = ["DEFAULT_COMPONENTS", "Ensemble", "rank_aggregate"]

# Three proxies that read different things: MeCo the correlation of one image's
# feature maps, ZiCo the gradients' signal-to-noise over batches, SWAP the
# activation patterns over a batch (AZ-NAS's case: components that see different
# properties complement each other). Not params or flops: the ensemble is checked
# against params (tau minus params' tau), which should measure what the proxies add
# beyond size, not size again. Not grad_norm, snip, synflow or naswot: White et al.
# (ICLR 2022 blog track) find them at or below params, and each costs its seconds.
DEFAULT_COMPONENTS = ("meco", "zico", "swap")


def rank_aggregate(scores: Mapping[str, Sequence[float]]) -> list[float]:
    """AZ-NAS's aggregation: each candidate's sum over components m of log(rank_m / N),
    rank_m its ascending rank among the N candidates by component m (1 the worst, N
    the best; ties share their mean rank, scipy's `rankdata`), so the best candidate
    of every component scores 0 and every other below it. A NaN score (a network the
    component cannot read) ranks with the worst."""
    import numpy as np
    from scipy.stats import rankdata

    columns = [np.asarray(values, dtype=float) for values in scores.values()]
    if not columns:
        return []
    total = np.zeros(len(columns[0]))
    for column in columns:
        if len(column) != len(total):
            raise ValueError("every component must score the same candidates")
        ranks = rankdata(np.where(np.isnan(column), -np.inf, column))
        total += np.log(ranks / len(column))
    return [float(value) for value in total]


@register
class Ensemble(PopulationEstimator):
    """ensemble (after AZ-NAS, Lee & Ham, CVPR 2024, their aggregation
    score = sum over proxies m of log(rank_m / N), `rank_aggregate`) of the
    `components` (default `DEFAULT_COMPONENTS`; --ensemble-of on the command line),
    over the candidates scored together. A candidate's score depends on that
    population: the same network can score otherwise among other candidates."""

    name = "ensemble"
    cite = "ensemble: rank aggregation of AZ-NAS, Lee & Ham, CVPR 2024, over meco,zico,swap"

    def __init__(self, components: Sequence[str] | str = DEFAULT_COMPONENTS) -> None:
        names = _names(components)
        for name in names:
            if issubclass(estimator_class(name), PopulationEstimator):
                raise ConfigError(f"--ensemble-of: {name} is itself an ensemble; name proxies")
        super().__init__(names)
        if names != DEFAULT_COMPONENTS:
            self.cite = f"ensemble: rank aggregation of AZ-NAS (CVPR 2024) over {','.join(names)}"

    def aggregate(self, scores: Mapping[str, Sequence[float]]) -> list[float]:
        return rank_aggregate(scores)


def _names(components: Sequence[str] | str) -> tuple[str, ...]:
    text = components if isinstance(components, str) else ",".join(components)
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if len(names) < 2:
        raise ConfigError(f"--ensemble-of needs at least two estimators, got {text!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--ensemble-of names one twice: {text!r}")
    return names
