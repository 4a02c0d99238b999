"""Timing that holds on a shared, loaded CPU.

Two rules for every benchmark here:

- A speed claim against another piece of work (batched vs per-image, a record
  vs an epoch) is a ratio of both measured in the same run, taking turns
  (`interleaved`), so that a load spike slows both alike.
- Under --benchmark-disable (the CI command) each function runs once, which
  says nothing about speed: the test checks what the code did, then skips its
  timing assertions (`skip_timing_when_disabled`) with the reason, never a
  wall-clock assertion that flakes on a busy machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest


def disabled(benchmark: Any) -> bool:
    """True under --benchmark-disable (and when pytest-benchmark turns itself off, e.g. xdist)."""
    return bool(getattr(benchmark, "disabled", False))


def skip_timing_when_disabled(benchmark: Any) -> None:
    """Skip the rest of the test (its timing assertions) when benchmarks are disabled."""
    if disabled(benchmark):
        pytest.skip("timing asserted only with benchmarks on (one run says nothing about speed)")


def interleaved(
    rounds: int, functions: Mapping[str, Callable[[], object]], *, warmup: bool = True
) -> dict[str, list[float]]:
    """Seconds of each function in each of `rounds` rounds, the functions taking turns.

    One untimed call of each first (allocator, thread pool, statement cache,
    lazy imports) unless `warmup=False`.
    """
    if warmup:
        for function in functions.values():
            function()
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def spread(seconds: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, float]:
    """min/median/max of `seconds` times `scale`, for a benchmark's extra_info."""
    return {
        "min": round(min(seconds) * scale, digits),
        "median": round(statistics.median(seconds) * scale, digits),
        "max": round(max(seconds) * scale, digits),
    }
