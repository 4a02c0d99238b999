"""Epoch recording cost: `store.record_epoch` against one epoch of training on the smoke budget.

Issue 4: recording an epoch must cost under 1% of the epoch's time on the
smoke budget (the cheapest epochs a search runs, so the worst case for the
store's share). The epoch is timed with `Trainer.train_epoch` on the smoke
budget's data, batch, width and batch cap; the record is a real SQLite write
(WAL, one short transaction) into a running trial from the shared factory.

The share is a ratio measured in one run: epochs and batches of records take
turns (`_timing.interleaved`), so a busy machine slows both alike; median
record over median epoch. With --benchmark-disable one short epoch and a few
records run (the code path) and the share is not asserted.
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

from harness.candidate import build_candidate
from harness.config import TrainConfig
from harness.data import load_dataset
from harness.search.budgets import get_budget
from harness.store import Store
from harness.train import EpochMetrics, Trainer

ARCH = "RI"
QUICK_MAX_BATCHES = 8  # one-cycle needs a few steps: at 4, torch divides by zero
ROUNDS = 3  # timed epochs, each followed by a batch of records
RECORDS_PER_ROUND = 10  # a trial's worth (30) in all
QUICK_RECORDS = 3
MAX_SHARE = 0.01


@pytest.fixture(autouse=True)
def threads(benchmark) -> Iterator[int]:
    with bench_threads(benchmark) as count:
        yield count


def smoke_trainer(max_batches: int | None, epochs: int) -> Trainer:
    budget = get_budget("smoke")
    config = TrainConfig.from_protocol(
        "fast",
        arch=ARCH,
        data=budget.data,
        device="cpu",
        epochs=epochs,
        batch_size=budget.batch_size,
        max_batches=max_batches,
    )
    dataset = load_dataset(budget.data)
    candidate = build_candidate(
        ARCH,
        image_shape=dataset.image_shape,
        num_classes=len(dataset.classes),
        skeleton=config.skeleton,
    )
    return Trainer(candidate.model, dataset, config, torch.device("cpu"))


def test_bench_record_epoch_vs_smoke_epoch(
    benchmark: Any, tmp_path: Any, record_trial: Any
) -> None:
    benchmark.group = "store"
    budget = get_budget("smoke")
    rounds, per_round = (1, QUICK_RECORDS) if quick(benchmark) else (ROUNDS, RECORDS_PER_ROUND)
    # One epoch more than timed: the warm-up round; the schedule must not run out of steps.
    trainer = smoke_trainer(
        QUICK_MAX_BATCHES if quick(benchmark) else budget.max_batches, epochs=rounds + 1
    )
    epoch_numbers = itertools.count(1)
    epoch_s: list[float] = []
    last: list[EpochMetrics] = []

    def train() -> None:
        number = next(epoch_numbers)
        loss, acc, seconds, images_per_s = trainer.train_epoch(number)
        epoch_s.append(seconds)  # the trainer's own clock: the epoch without its set-up
        last[:] = [EpochMetrics(number, loss, acc, loss, acc, 1e-3, seconds, images_per_s)]

    with Store(f"sqlite:///{tmp_path / 'bench.db'}") as store:
        trial_id = record_trial(
            store,
            study="bench",
            protocol="fast",
            hyperparameters=trainer.config.hyperparameters(),
            config=trainer.config.to_dict(),
            data_spec=budget.data,
            epochs=0,
            status=None,
        ).trial_id
        record_numbers = itertools.count(1)
        record_s: list[float] = []

        def record() -> None:
            started = time.perf_counter()
            store.record_epoch(trial_id, **{**last[0].to_dict(), "epoch": next(record_numbers)})
            record_s.append(time.perf_counter() - started)

        def records() -> None:
            for _ in range(per_round):
                record()

        interleaved(rounds, {"epoch": train, "records": records}, warmup=True)
        benchmark.pedantic(record, rounds=rounds * per_round, iterations=1)
        recorded = store.epochs(trial_id)
        assert len(recorded) == len(record_s) and recorded[-1]["epoch"] == len(record_s)
        assert recorded[-1]["train_loss"] == pytest.approx(last[0].train_loss)
    del record_s[:per_round]  # the warm-up round's

    skip_timing_when_disabled(benchmark)
    per_record = statistics.median(record_s)
    per_epoch = statistics.median(epoch_s[1:])  # the warm-up epoch aside
    share = per_record / per_epoch
    benchmark.extra_info.update(
        arch=ARCH,
        data=budget.data,
        batch=trainer.batch_size,
        batches=trainer.steps_per_epoch,
        device="cpu",
        threads=torch.get_num_threads(),
        epoch_s=spread(epoch_s[1:]),
        record_ms=spread(record_s, scale=1e3),
        share=round(share, 5),
    )
    print(
        f"\nrecord_epoch {per_record * 1e3:.2f} ms (median of {len(record_s)}) vs a "
        f"{trainer.steps_per_epoch}-batch smoke epoch of {per_epoch:.2f} s (median of "
        f"{len(epoch_s) - 1}): {share:.3%}"
    )
    assert share < MAX_SHARE, f"recording an epoch costs {share:.2%} of the epoch"
