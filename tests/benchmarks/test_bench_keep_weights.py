"""Keeping a trial's weights: the same trial with `--keep-weights all` against `none`.

Issue 25: saving must not slow a trial by more than 2%. The trial is the search's
own path (`run_trial` with the hook `WeightsKeeper` gives it, a running Optuna trial,
a real SQLite store): the paper's alternated ordering of `rir_orderings`, a smoke
trial as `harness run` trains it (the budget's data, width, batch, 5 epochs of at most
60 batches: the cheapest trial a search runs, so the largest share for the save).
`all` is the most work a trial does: its weights written (safetensors), hashed,
uploaded to the FileSystemArtifactStore, linked to the Optuna trial and to our row.

On and off take turns (`_timing.interleaved`), so that a busy machine slows both
alike, and the best times are compared (the smallest share of noise); the hook's own
time is reported beside the ratio. With --benchmark-disable each runs once on a tiny
trial (two batches), the weights are checked to be kept, and no timing is asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
import torch
from _paper_nets import bench_threads, quick
from _timing import interleaved, skip_timing_when_disabled, spread

from harness.search import RunPlan, SearchSettings
from harness.search.keep import WeightsKeeper
from harness.search.params import suggest
from harness.store import Store
from harness.trial import load_trial_dataset, run_trial

ROUNDS = 3
MAX_RATIO = 1.02


@pytest.fixture(autouse=True)
def threads(benchmark) -> Iterator[int]:
    with bench_threads(benchmark) as count:
        yield count


def test_bench_keep_weights_vs_none(benchmark: Any, tmp_path: Any) -> None:
    benchmark.group = "keep_weights"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    overrides: dict[str, Any] = {"epochs": 1, "max_batches": 2} if quick(benchmark) else {}
    settings = SearchSettings(
        space="rir_orderings", url=url, study="bench", budget="smoke", overrides=overrides,
        keep_weights="all", artifacts=str(tmp_path / "artifacts"), measure_latency=False,
        progress=False,
    )  # fmt: skip
    search = RunPlan.resolve(settings)
    dataset = load_trial_dataset(search.data)
    study = optuna.create_study(study_name="bench", storage=url)
    # The paper's alternated ordering, as the run enqueues it (named: kept by every policy).
    alternated = search.space.enqueue_params()[0]
    hook_s: list[float] = []
    kept: list[int] = []

    with Store(url) as store:
        keeper = WeightsKeeper(search, store)

        def trial(keep: bool) -> None:
            study.enqueue_trial(alternated)
            ask = study.ask()
            config = search.trial_config(suggest(ask, search.space, search.params), seed=0)
            hook = keeper.hook(ask) if keep else None

            def timed_hook(model: Any, outcome: Any, data: Any) -> None:
                started = time.perf_counter()
                hook(model, outcome, data)
                hook_s.append(time.perf_counter() - started)

            outcome = run_trial(
                config, store, study="bench", dataset=dataset, measure_latency=False,
                optuna_trial_number=ask.number, keep_weights=timed_hook if keep else None,
            )  # fmt: skip
            assert outcome.status == "complete" and "weights not kept" not in (outcome.reason or "")
            study.tell(ask, outcome.val_acc)
            if keep:
                kept.append(outcome.trial_id)

        rounds = 1 if quick(benchmark) else ROUNDS
        seconds = interleaved(
            rounds, {"none": lambda: trial(False), "all": lambda: trial(True)},
            warmup=not quick(benchmark),
        )  # fmt: skip
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the timing is above
        links = store.weights_links(kept)
        assert sorted(links) == sorted(kept) and all(link["bytes"] > 0 for link in links.values())

    skip_timing_when_disabled(benchmark)
    ratio = min(seconds["all"]) / min(seconds["none"])
    median_ratio = statistics.median(seconds["all"]) / statistics.median(seconds["none"])
    share = statistics.median(hook_s) / statistics.median(seconds["none"])
    benchmark.extra_info.update(
        data=search.data,
        epochs=search.base.epochs,
        max_batches=search.base.max_batches,
        threads=torch.get_num_threads(),
        none_s=spread(seconds["none"]),
        all_s=spread(seconds["all"]),
        hook_ms=spread(hook_s, scale=1e3),
        ratio_min=round(ratio, 4),
        ratio_median=round(median_ratio, 4),
        hook_share=round(share, 5),
    )
    print(
        f"\nkeep-weights all vs none: best trial {min(seconds['all']):.2f} s vs "
        f"{min(seconds['none']):.2f} s (ratio {ratio:.4f}, medians {median_ratio:.4f}); "
        f"the save itself {statistics.median(hook_s) * 1e3:.1f} ms = {share:.2%} of a trial"
    )
    assert ratio <= MAX_RATIO, f"keeping the weights slowed the trial by {ratio - 1:.2%}"
