"""Zero-cost proxy throughput against one stand-alone smoke trial, measured in one run.

`estimate` group: candidates scored per second by each proxy (building the network
included, as `harness estimate` does) at the smoke budget's widths and data shape
(32x32 synthetic faces), and the seconds of one smoke trial of the same
architecture (the budget's epochs, batch 32, at most 60 batches an epoch). Issue 14
expects the proxies to be about three orders of magnitude cheaper; the ratio is
recorded in extra_info and asserted (>= 10x, loosely, on a loaded machine) only
with benchmarks on. Under --benchmark-disable each runs once on tiny data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from _paper_nets import bench_threads, quick
from _timing import skip_timing_when_disabled, spread

from harness.config import TrainConfig
from harness.data import load_dataset
from harness.estimate import get_estimator
from harness.search.budgets import get_budget

PROXIES = ("params", "flops", "synflow", "naswot", "snip", "grad_norm")
ARCH = "(RI)*8"
ROUNDS = 3
MIN_RATIO = 10.0


@pytest.fixture(autouse=True)
def threads(benchmark) -> Iterator[int]:
    with bench_threads(benchmark) as count:
        yield count


def smoke_config(benchmark) -> tuple[TrainConfig, str]:
    budget = get_budget("smoke")
    data = "synthetic?n=120&size=16" if quick(benchmark) else budget.data
    config = TrainConfig.from_protocol(
        "fast",
        arch=ARCH,
        data=data,
        device="cpu",
        **budget.train_overrides("fast"),
    )
    if quick(benchmark):
        config = config.replace(epochs=1, max_batches=1)
    return config, data


def test_proxy_throughput_against_one_smoke_trial(benchmark, tmp_path):
    from harness.store import Store
    from harness.trial import run_trial

    config, data = smoke_config(benchmark)
    dataset = load_dataset(data)
    seconds: dict[str, list[float]] = {name: [] for name in PROXIES}
    estimators = {name: get_estimator(name) for name in PROXIES}

    def score_all() -> None:
        for name, estimator in estimators.items():
            started = time.perf_counter()
            estimator.score(config, dataset)
            seconds[name].append(time.perf_counter() - started)

    rounds = 1 if quick(benchmark) else ROUNDS
    benchmark.pedantic(score_all, rounds=rounds, iterations=1, warmup_rounds=0)
    with Store(f"sqlite:///{tmp_path / 'bench.db'}") as store:
        started = time.perf_counter()
        outcome = run_trial(config, store, dataset=dataset, measure_latency=False)
        trial_s = time.perf_counter() - started
    assert outcome.status == "complete"
    per_s = {name: 1.0 / min(values) for name, values in seconds.items()}
    benchmark.extra_info.update(
        trial_s=round(trial_s, 2),
        candidates_per_s={name: round(v, 2) for name, v in per_s.items()},
        seconds=spread_all(seconds),
        trial_over_proxy={name: round(trial_s * v, 1) for name, v in per_s.items()},
    )
    skip_timing_when_disabled(benchmark)
    for name, rate in per_s.items():
        assert trial_s * rate >= MIN_RATIO, (name, trial_s, rate)


def spread_all(seconds: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: spread(values) for name, values in seconds.items()}
