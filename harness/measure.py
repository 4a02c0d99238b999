"""Parameters, FLOPs, latency and the environment they were measured in.

FLOPs follow fvcore: one fused multiply-add counts as one flop, so the numbers
are MACs; `FLOPS_LABEL` is the wording to print beside them. Latency is timed
after a warm-up, with CUDA events on a GPU and a fixed thread count on the CPU;
we report the median and p90, and flag a wide min-max spread because these
shared machines stall for seconds at times.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import statistics
import subprocess
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness import __version__
from harness.errors import ModelError, first_line

__all__ = [
    "FLOPS_LABEL",
    "Latency",
    "count_flops",
    "count_params",
    "environment",
    "measure_latency",
    "resolve_device",
]

FLOPS_LABEL = "FLOPs (fvcore, multiply-add = 1)"
# A max/median ratio above this means the machine stalled during timing.
WIDE_SPREAD_RATIO = 1.5


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> int:
    """Forward multiply-adds for one image (fvcore), on the CPU in eval mode."""
    with warnings.catch_warnings():
        # fvcore's package import scripts a focal loss with the deprecated torch.jit.script.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script")
        from fvcore.nn import FlopCountAnalysis

    # fvcore logs every op it does not count (BN, ReLU, adds) as a warning.
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        inputs = torch.zeros((batch, *input_shape), device=device)
        analysis = FlopCountAnalysis(model, inputs)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        with torch.no_grad():
            total = analysis.total()
    except (RuntimeError, AssertionError, ValueError) as error:  # how shape refusals are raised
        # Out of memory, a driver error or a bug of ours is an error of the run, not a
        # property of the network: blame the network only for what shapes alone refuse.
        if not _refused_on_shapes(model, (batch, *input_shape)):
            raise
        raise ModelError(
            f"the model cannot take input {tuple(input_shape)}: {first_line(error)}"
        ) from None
    finally:
        model.train(was_training)
    return int(total) // batch


def _refused_on_shapes(model: nn.Module, shape: tuple[int, ...]) -> bool:
    """Whether the forward pass fails on the meta device, where tensors have shapes but
    no memory and no device: a failure there is the network's with this input (a kernel
    larger than its map, a layer of another width, timm's size asserts)."""
    import itertools

    tensors = itertools.chain(model.named_parameters(), model.named_buffers())
    meta = {name: torch.empty_like(tensor, device="meta") for name, tensor in tensors}
    try:
        with torch.no_grad():
            torch.func.functional_call(model, meta, (torch.zeros(shape, device="meta"),))
    except NotImplementedError:  # an operator without a meta kernel: shapes cannot tell
        return False
    except (RuntimeError, AssertionError, ValueError):  # as the real pass raised them
        return True
    return False


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` is CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ModelError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda was asked for but torch sees no CUDA device")
    return device


@dataclass(frozen=True)
class Latency:
    device: str
    batch: int
    threads: int
    repeats: int
    median_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float

    @property
    def wide_spread(self) -> bool:
        return self.max_ms > WIDE_SPREAD_RATIO * self.median_ms

    @property
    def images_per_s(self) -> float:
        return self.batch / (self.median_ms / 1000.0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wide_spread": self.wide_spread, "images_per_s": self.images_per_s}


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    batch: int = 1,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    warmup: int = 3,
    repeats: int = 20,
    min_repeats: int = 5,
    max_seconds: float | None = None,
    channels_last: bool = True,
) -> Latency:
    """Time inference of one batch: warm-up, then up to `repeats` timed runs.

    With `max_seconds`, timing stops early once that much time has passed and
    at least `min_repeats` runs are in, so a slow model on the CPU still answers
    in seconds.
    """
    device = torch.device(device)
    threads = threads or torch.get_num_threads()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    model = model.to(device).eval()
    inputs = torch.randn((batch, *input_shape), device=device)
    if channels_last and inputs.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(inputs)
            _synchronize(device)
            started = time.perf_counter()
            while len(times) < repeats:
                times.append(_time_once(model, inputs, device))
                out_of_time = (
                    max_seconds is not None and time.perf_counter() - started > max_seconds
                )
                if out_of_time and len(times) >= min_repeats:
                    break
    finally:
        torch.set_num_threads(previous_threads)
    times.sort()
    return Latency(
        device=_device_name(device),
        batch=batch,
        threads=threads,
        repeats=len(times),
        median_ms=statistics.median(times),
        p90_ms=_percentile(times, 0.9),
        min_ms=times[0],
        max_ms=times[-1],
    )


def _time_once(model: nn.Module, inputs: torch.Tensor, device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(inputs)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    started = time.perf_counter()
    model(inputs)
    return (time.perf_counter() - started) * 1000.0


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list."""
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{cpu_model()}"


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def git_commit() -> str | None:
    """The harness checkout's commit, with `+dirty` when it has local changes."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions and hardware, recorded with every measurement."""
    import timm

    device = torch.device(device) if device is not None else None
    env: dict[str, Any] = {
        "harness": __version__,
        "commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }
    if device is not None:
        env["device"] = _device_name(device)
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return env
