"""A plain PyTorch training loop, the reference the harness's accuracy is held to (issue 17).

It is what a user would write in 40 lines to check the harness: Adam 1e-3,
batch 64, a batched random crop (reflect padding 4) and horizontal flip,
inputs scaled as (x/255 - 0.5)/0.25, the last partial batch kept, the model
selected on the val split after each epoch and scored on test. It shares no
code with `harness.train` or `harness.data.augment` on purpose: a defect
there must not reach the reference too.

Both loops report val and test accuracy after every epoch, so that with a
constant learning rate one 6-epoch run also gives the 3-epoch result (the
first three epochs of a constant-rate run are a 3-epoch run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from harness.data import Dataset


@dataclass
class Curve:
    """Val and test accuracy after each epoch (index 0 is epoch 1)."""

    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)

    def selected(self, epochs: int) -> float:
        """Test accuracy of the first epoch among the first `epochs` with the best val accuracy."""
        vals = self.val[:epochs]
        return self.test[vals.index(max(vals))]


@dataclass(frozen=True)
class PlainSettings:
    batch_size: int = 64
    lr: float = 1e-3
    padding: int = 4
    padding_mode: str = "reflect"  # F.pad's mode: reflect, replicate, constant (zeros)
    flip: bool = True
    mean: float = 0.5
    std: float = 0.25


def crop_flip(
    x: torch.Tensor, padding: int, mode: str, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Random crop of each image from the padded batch, then a random flip (float input)."""
    n, _, h, w = x.shape
    if padding:
        x = F.pad(x, (padding,) * 4, mode=mode)
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = top[:, None] + torch.arange(h)
    cols = left[:, None] + torch.arange(w)
    if flip:
        mirrored = torch.rand(n, generator=generator) < 0.5
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    # Advanced indices around a slice: the result is (n, h, w, c).
    out = x[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, s: PlainSettings
) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), 512):
        x = (images[start : start + 512].float() / 255 - s.mean) / s.std
        correct += (model(x).argmax(1) == labels[start : start + 512]).sum().item()
    return correct / max(len(images), 1)


def train_plain(
    model: nn.Module,
    dataset: Dataset,
    epochs: int,
    seed: int,
    settings: PlainSettings | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> Curve:
    s = settings or PlainSettings()
    generator = torch.Generator().manual_seed(seed)
    train, val, test = (dataset.splits[name] for name in ("train", "val", "test"))
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
    curve = Curve()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), s.batch_size):
            index = order[start : start + s.batch_size]
            x = train.images[index].float() / 255
            x = crop_flip(x, s.padding, s.padding_mode, s.flip, generator)
            loss = F.cross_entropy(model((x - s.mean) / s.std), train.labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        curve.val.append(accuracy(model, val.images, val.labels, s))
        curve.test.append(accuracy(model, test.images, test.labels, s))
        if on_epoch is not None:
            on_epoch(epoch, curve.val[-1], curve.test[-1])
    return curve
