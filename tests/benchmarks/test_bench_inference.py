"""Inference speed of the paper's six networks on 1x48x48 faces (CPU, eval, channels_last).

`inference` group: latency at batch 1 and throughput at batch 64, as
`harness bench` measures them (`measure_latency` prepares the model the same
way). With --benchmark-disable each runs one forward, the batch-64 case at
batch 2, so the quick suite keeps the path alive in seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
import torch
from _paper_nets import INPUT_SHAPE, bench_threads, build, model_info, paper_archs, quick

QUICK_THROUGHPUT_BATCH = 2
MODES = {"latency_b1": 1, "throughput_b64": 64}


@pytest.fixture(autouse=True)
def threads(benchmark) -> Iterator[int]:
    with bench_threads(benchmark) as count:
        yield count


def p90(sorted_values: list[float]) -> float:
    return sorted_values[round(0.9 * (len(sorted_values) - 1))]


@paper_archs
@pytest.mark.parametrize("mode", list(MODES), ids=list(MODES))
def test_bench_inference(benchmark, arch: str, mode: str) -> None:
    benchmark.group = "inference"
    batch = MODES[mode]
    if quick(benchmark) and batch > 1:
        batch = QUICK_THROUGHPUT_BATCH
    candidate = build(arch)
    info = model_info(candidate, flops=not quick(benchmark))
    model = candidate.model.eval().to(memory_format=torch.channels_last)
    inputs = torch.randn((batch, *INPUT_SHAPE)).contiguous(memory_format=torch.channels_last)

    seconds: list[float] = []

    def forward() -> torch.Tensor:
        started = time.perf_counter()
        with torch.inference_mode():
            out = model(inputs)
        seconds.append(time.perf_counter() - started)
        return out

    logits = benchmark.pedantic(forward, rounds=10 if batch == 1 else 3, warmup_rounds=2)
    assert logits.shape == (batch, 7) and torch.isfinite(logits).all()
    seconds.sort()
    median = statistics.median(seconds)
    benchmark.extra_info.update(
        info,
        mode=mode,
        batch=batch,
        quick=quick(benchmark),
        median_ms=round(median * 1e3, 3),
        p90_ms=round(p90(seconds) * 1e3, 3),
        min_ms=round(seconds[0] * 1e3, 3),
        max_ms=round(seconds[-1] * 1e3, 3),
        images_per_s=round(batch / median, 1),
    )
