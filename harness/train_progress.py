"""What a training run shows on stderr while it trains: a bar per epoch with the loss and
images/s, in the first epoch the expected epoch and run time, and a line per epoch.

The loop does not know about it: `Trainer.epochs` opens a bar around each epoch and
hands the epoch its `on_batch` hook.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["ESTIMATE_AFTER_BATCHES", "OnBatch", "TrainProgress"]

# Batches timed (after the first) before the progress output estimates the run time.
ESTIMATE_AFTER_BATCHES = 5

# Called after every optimiser step: (step in the epoch from 0, the step's loss, images so far).
OnBatch = Callable[[int, torch.Tensor, int], None]


class TrainProgress:
    """The progress output of one run of `epochs` epochs of `steps` batches on `device`."""

    def __init__(self, epochs: int, steps: int, device: torch.device) -> None:
        self.epochs, self.steps, self.device = epochs, steps, device

    @contextmanager
    def bar(self, epoch: int) -> Iterator[OnBatch]:
        """A bar for `epoch` while the block runs; yields the hook that moves it."""
        from tqdm.auto import tqdm

        bar = tqdm(
            total=self.steps,
            desc=f"epoch {epoch}/{self.epochs}",
            leave=False,
            unit="batch",
            file=sys.stderr,
            dynamic_ncols=True,
        )
        started = timed_from = time.perf_counter()

        def on_batch(step: int, loss: torch.Tensor, seen: int) -> None:
            nonlocal timed_from
            bar.update(1)
            if step % 5 == 0:  # reading the loss is a device sync: not every step
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / elapsed:.0f}")
            if epoch != 1:
                return
            if step == 0:  # the first batch (allocation, warm-up) is left out of the timing
                timed_from = time.perf_counter()
            elif step == min(ESTIMATE_AFTER_BATCHES, self.steps - 1):
                if self.device.type == "cuda":  # the timed batches finished, not just queued
                    torch.cuda.synchronize(self.device)
                bar.write(self._estimate(step, time.perf_counter() - timed_from), file=sys.stderr)

        try:
            yield on_batch
        finally:
            bar.close()

    def _estimate(self, batches: int, seconds: float) -> str:
        epoch_s = seconds / batches * self.steps
        return (
            f"  estimate: ~{duration(epoch_s)} an epoch, ~{duration(epoch_s * self.epochs)} for "
            f"{self.epochs} epoch(s) of training (timed over {batches} batches)"
        )

    def epoch_done(self, metrics: Any) -> None:
        """The line of a finished epoch: `metrics` is a `harness.train.EpochMetrics` (not
        imported: `harness.train` imports this module)."""
        print(
            f"  epoch {metrics.epoch:>3}: train loss {metrics.train_loss:.4f} "
            f"acc {metrics.train_acc:.3f} | val loss {metrics.val_loss:.4f} "
            f"acc {metrics.val_acc:.3f} | {metrics.images_per_s:.0f} img/s",
            file=sys.stderr,
        )


def duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes:
        return f"{minutes}m{rest:02d}s"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
