"""Epoch recording cost: `store.record_epoch` against one epoch of training on the smoke budget.

Issue 4: recording an epoch must cost under 1% of the epoch's time on the
smoke budget (the cheapest epochs a search runs, so the worst case for the
store's share). The epoch is timed with `Trainer.train_epoch` on the smoke
budget's data, batch, width and batch cap; the record is a real SQLite write
(WAL, one short transaction) into a trial as `run_trial` makes it.

With --benchmark-disable the epoch is capped at a few batches: the record must
then be under 1% of that shorter epoch, a stricter test of the same claim.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
import torch
from _paper_nets import bench_threads, quick

from harness.candidate import build_candidate
from harness.config import TrainConfig
from harness.data import load_dataset
from harness.search.budgets import get_budget
from harness.store import Store
from harness.train import EpochMetrics, Trainer

ARCH = "RI"
QUICK_MAX_BATCHES = 8  # one-cycle needs a few steps: at 4, torch divides by zero
RECORDS = 30  # a trial's worth of epochs
MAX_SHARE = 0.01


@pytest.fixture(autouse=True)
def threads(benchmark) -> Iterator[int]:
    with bench_threads(benchmark) as count:
        yield count


def smoke_trainer(max_batches: int | None) -> Trainer:
    budget = get_budget("smoke")
    config = TrainConfig.from_protocol(
        "fast",
        arch=ARCH,
        data=budget.data,
        device="cpu",
        epochs=1,
        batch_size=budget.batch_size,
        max_batches=max_batches,
        skeleton={"width_mult": budget.width_scale},
    )
    dataset = load_dataset(budget.data)
    candidate = build_candidate(
        ARCH,
        image_shape=dataset.image_shape,
        num_classes=len(dataset.classes),
        skeleton=config.skeleton,
    )
    return Trainer(candidate.model, dataset, config, torch.device("cpu"))


def test_bench_record_epoch_vs_smoke_epoch(benchmark, tmp_path) -> None:
    benchmark.group = "store"
    budget = get_budget("smoke")
    trainer = smoke_trainer(QUICK_MAX_BATCHES if quick(benchmark) else budget.max_batches)
    loss, acc, epoch_s, images_per_s = trainer.train_epoch(1)
    metrics = EpochMetrics(1, loss, acc, loss, acc, 1e-3, epoch_s, images_per_s)

    with Store(f"sqlite:///{tmp_path / 'bench.db'}") as store:
        study_id = store.ensure_study("bench")
        candidate_id = store.ensure_candidate(
            "RRR|IIII",
            kind="candidate",
            family="RI",
            params=1,
            flops=1,
            input_shape=[1, 32, 32],
            num_classes=7,
            skeleton=None,
        )
        trial_id = store.start_trial(
            study_id=study_id,
            candidate_id=candidate_id,
            protocol="fast",
            hyperparameters=trainer.config.hyperparameters(),
            config=trainer.config.to_dict(),
            seed=0,
            data_spec=budget.data,
            data_fingerprint="fp",
            label_mode="hard",
            device="cpu",
            environment={"torch": torch.__version__},
        )
        record_s: list[float] = []
        epochs = iter(range(1, 10_000))

        def record() -> None:
            started = time.perf_counter()
            store.record_epoch(trial_id, **{**metrics.to_dict(), "epoch": next(epochs)})
            record_s.append(time.perf_counter() - started)

        record()  # warm-up: connection, statement cache
        for _ in range(RECORDS):
            record()
        benchmark.pedantic(record, rounds=RECORDS, iterations=1)
        assert len(store.epochs(trial_id)) == len(record_s)

    per_record = statistics.median(record_s)
    share = per_record / epoch_s
    benchmark.extra_info.update(
        arch=ARCH,
        data=budget.data,
        batch=trainer.batch_size,
        batches=trainer.steps_per_epoch,
        device="cpu",
        threads=torch.get_num_threads(),
        epoch_s=round(epoch_s, 3),
        record_ms_min=round(min(record_s) * 1e3, 3),
        record_ms_median=round(per_record * 1e3, 3),
        record_ms_max=round(max(record_s) * 1e3, 3),
        share=round(share, 5),
    )
    print(
        f"\nrecord_epoch {per_record * 1e3:.2f} ms (median of {len(record_s)}) vs a "
        f"{trainer.steps_per_epoch}-batch smoke epoch of {epoch_s:.2f} s: {share:.3%}"
    )
    assert share < MAX_SHARE, f"recording an epoch costs {share:.2%} of the epoch"
