"""Supernet scoring cost: one ordering scored with a trained supernet against one
stand-alone smoke trial (issue 14).

The supernet of `rir_balanced` is trained once at the smoke budget (its data,
batch, batch cap, epochs and quarter width); its epoch times go into
extra_info. Then scoring an ordering (BatchNorm recalibration on the default
number of training batches, then validation accuracy of the path) and a
recorded smoke trial of an ordering (`run_trial`, latency not measured) take
turns (`_timing.interleaved`), each round a new ordering, and the medians give
the ratio. With --benchmark-disable both run once on tiny data and the ratio is
not asserted.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from _paper_nets import bench_threads, quick
from _timing import interleaved, skip_timing_when_disabled, spread

from harness.data import load_dataset
from harness.estimate import get_estimator
from harness.search.budgets import get_budget
from harness.search.params import base_config
from harness.search.space import load_space
from harness.store import Store
from harness.trial import run_trial

SPACE = "rir_balanced"
ROUNDS = 3  # timed smoke trials (and scores), after one warm-up of each
QUICK = {"data": "synthetic?n=80&size=16", "epochs": 1, "max_batches": 3, "width": 0.125}
# A score must cost well under a tenth of the trial it stands in for.
MAX_RATIO = 0.1


@pytest.fixture(autouse=True)
def threads(benchmark) -> Iterator[int]:
    with bench_threads(benchmark) as count:
        yield count


def test_bench_supernet_score_vs_smoke_trial(benchmark: Any, tmp_path: Any) -> None:
    benchmark.group = "supernet"
    budget, space = get_budget("smoke"), load_space(SPACE)
    small = quick(benchmark)
    data = QUICK["data"] if small else budget.data
    overrides: dict[str, Any] = {"device": "cpu"}
    if small:
        overrides.update(epochs=QUICK["epochs"], max_batches=QUICK["max_batches"])
    base = base_config(space, budget, overrides, data)
    width = QUICK["width"] if small else 1.0
    base = base.replace(skeleton={**base.skeleton, "width_mult": width})
    dataset = load_dataset(data)
    orderings = itertools.cycle(
        space.encoding.arch({k: v for k, v in zip(space.encoding.names(), keys, strict=True)})
        for keys in torch.rand(ROUNDS + 1, 16, generator=torch.Generator().manual_seed(0)).tolist()
    )

    with Store(f"sqlite:///{tmp_path / 'bench.db'}") as store:
        estimator = get_estimator("supernet", space=space, checkpoint=tmp_path / "supernet.pt")
        started = time.perf_counter()
        estimator.prepare(dataset, base, store=store)
        prepare_s = time.perf_counter() - started
        epoch_s = [row["seconds"] for row in estimator.run.history]
        assert len(epoch_s) == base.epochs

        scores: list[float] = []
        trial_accs: list[float] = []

        def score() -> None:
            scores.append(estimator.score(base.replace(arch=next(orderings)), dataset))

        def trial() -> None:
            outcome = run_trial(
                base.replace(arch=next(orderings)), store, study="bench", dataset=dataset,
                measure_latency=False,
            )  # fmt: skip
            assert outcome.status == "complete"
            trial_accs.append(outcome.val_acc)

        rounds = 1 if small else ROUNDS
        seconds = interleaved(rounds, {"score": score, "trial": trial}, warmup=not small)
        benchmark.pedantic(score, rounds=1, iterations=1)
        assert all(0.0 <= s <= 1.0 for s in scores)
        recorded = store.trials_frame(study=f"supernet:{SPACE}")
        assert list(recorded["status"]) == ["complete"]
        assert int(recorded["epochs"].iloc[0]) == base.epochs

    skip_timing_when_disabled(benchmark)
    per_score = statistics.median(seconds["score"])
    per_trial = statistics.median(seconds["trial"])
    ratio = per_score / per_trial
    benchmark.extra_info.update(
        space=SPACE,
        data=data,
        width_mult=width,
        batch=estimator.run.trainer.batch_size,
        batches=estimator.run.trainer.steps_per_epoch,
        epochs=base.epochs,
        threads=torch.get_num_threads(),
        supernet_epoch_s=spread(epoch_s),
        supernet_prepare_s=round(prepare_s, 2),
        score_s=spread(seconds["score"]),
        trial_s=spread(seconds["trial"]),
        ratio=round(ratio, 5),
    )
    print(
        f"\nsupernet of {SPACE}: epochs {spread(epoch_s)} s; score {spread(seconds['score'])} s "
        f"vs smoke trial {spread(seconds['trial'])} s: ratio {ratio:.4f} "
        f"({1 / ratio:.0f} scores per trial)"
    )
    assert ratio < MAX_RATIO
