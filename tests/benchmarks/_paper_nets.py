"""The paper's six networks as the benchmarks build them, and what each benchmark records.

The architectures and skeleton come from the `paper` search space (through
`harness.bench`), so a benchmark measures exactly what a paper study trains,
timm baselines with their small-input stem included.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from _timing import disabled
from torch import nn

from harness.bench import space_set
from harness.candidate import Candidate, build_candidate
from harness.measure import count_flops, count_params

THREADS_VAR = "HARNESS_BENCH_THREADS"
INPUT_SHAPE = (1, 48, 48)
NUM_CLASSES = 7
PAPER = space_set("paper")


def paper_ids() -> list[str]:
    """Readable ids: a regression report names the model (alternated, timm:resnet50, ...)."""
    return list(PAPER.archs)


def quick(benchmark: Any) -> bool:
    """True under --benchmark-disable: each benchmark then runs its function once."""
    return disabled(benchmark)


@contextmanager
def bench_threads(benchmark: Any) -> Iterator[int]:
    """Torch's CPU threads for one benchmark: $HARNESS_BENCH_THREADS, else 1 in the quick suite.

    On a CPU shared with other jobs, OpenMP's barriers wait for descheduled
    threads: a quarter-width step took 11 s on 2 threads and 0.09 s on 1 here.
    The quick suite only checks that the code runs, so it takes one thread;
    a real run keeps torch's default (all cores) unless told otherwise.
    """
    previous = torch.get_num_threads()
    wanted = os.environ.get(THREADS_VAR)
    threads = int(wanted) if wanted else (1 if quick(benchmark) else previous)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)


def build(arch: str, **skeleton: Any) -> Candidate:
    torch.manual_seed(0)
    return build_candidate(
        arch,
        image_shape=INPUT_SHAPE,
        num_classes=NUM_CLASSES,
        skeleton={**PAPER.skeleton, **skeleton},
    )


def model_info(
    candidate: Candidate, device: torch.device | str = "cpu", *, flops: bool = True
) -> dict[str, Any]:
    """What a comparison needs to explain a change: size, cost and where it ran.

    `flops=False` skips fvcore's trace (seconds per network on a busy CPU): the
    quick suite writes no benchmark JSON, so nothing would read the number.
    """
    model: nn.Module = candidate.model
    return {
        "arch": candidate.architecture.name,
        "family": candidate.architecture.family,
        "stem": candidate.baseline_stem or candidate.skeleton.resolved_stem,
        "params": count_params(model),
        "flops": count_flops(model, INPUT_SHAPE) if flops else None,
        "input_shape": "x".join(str(s) for s in INPUT_SHAPE),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
    }


paper_archs = pytest.mark.parametrize("arch", paper_ids(), ids=paper_ids())
