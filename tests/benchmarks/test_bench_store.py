"""Cost of recording a trial with 30 epochs of metrics in SQLite (WAL, one
short transaction per write): what the trainer pays per epoch for the store.

Target: under 10 ms a write (a trial is 32: start, 30 epochs, finish), the
median of the benchmark's rounds. A smoke-budget epoch takes seconds, so 10 ms
is 1% of one second: loose on purpose (test_bench_record_epoch.py holds the
record against a real epoch). Asserted only with benchmarks on.
"""

from __future__ import annotations

from typing import Any

from _timing import skip_timing_when_disabled

from harness.store import Store

EPOCHS = 30
WRITES = EPOCHS + 2
MAX_WRITE_S = 0.010


def test_bench_record_trial_with_30_epochs(
    benchmark: Any, tmp_path: Any, record_trial: Any
) -> None:
    benchmark.group = "store"
    with Store(f"sqlite:///{tmp_path / 'bench.db'}") as store:
        # The first trial makes the study and candidate and warms the connection pool and
        # statement cache; the timed ones are the trial's own writes only.
        first = record_trial(store, study="bench", epochs=EPOCHS)

        def write() -> int:
            return record_trial(
                store,
                study_id=first.study_id,
                candidate_id=first.candidate_id,
                epochs=EPOCHS,
                confusion=[[1] * 7] * 7,
            ).trial_id

        trial_id = benchmark(write)
        assert len(store.epochs(trial_id)) == EPOCHS
        assert store.trial(trial_id)["status"] == "complete"

    skip_timing_when_disabled(benchmark)
    stats = benchmark.stats.stats
    per_write = stats.median / WRITES
    benchmark.extra_info.update(
        backend="sqlite (WAL, synchronous=NORMAL)",
        epochs=EPOCHS,
        writes_per_trial=WRITES,
        ms_per_write_min=round(stats.min / WRITES * 1e3, 3),
        ms_per_write_median=round(per_write * 1e3, 3),
        ms_per_write_max=round(stats.max / WRITES * 1e3, 3),
    )
    assert per_write < MAX_WRITE_S, f"{per_write * 1e3:.2f} ms per write"
