"""Batches straight from the split's tensors (on whatever device they live): no DataLoader, no workers."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from harness.data.dataset import Split

__all__ = ["iterate_batches", "sample_hard_labels"]


def iterate_batches(
    split: Split,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (uint8 images, labels) batches of `split`.

    With `shuffle`, a permutation is drawn from `generator` (on the
    generator's device, then moved to the data's) once per call, i.e. once
    per epoch; batches are gathers from the split's tensors. Without it,
    batches are views in order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(split)
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for start in range(0, stop, batch_size):
            yield split.images[start : start + batch_size], split.labels[start : start + batch_size]
        return
    device = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(n, generator=generator, device=device).to(split.images.device)
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield split.images[index], split.labels[index]


def sample_hard_labels(
    soft_labels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """int64 (N,): one class per row, drawn from the row's distribution (FER+ `probability` mode).

    Call it on each training batch's labels, so that an image seen in several
    epochs gets a fresh draw each time. The generator must live on the
    labels' device.
    """
    if soft_labels.dim() != 2:
        raise ValueError(
            f"expected (N, K) label distributions, got shape {tuple(soft_labels.shape)}"
        )
    return torch.multinomial(soft_labels.float(), 1, generator=generator).squeeze(1)
