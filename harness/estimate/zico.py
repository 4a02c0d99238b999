"""ZiCo: Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
Gradients", ICLR 2023: the first proxy reported consistently above #params."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from harness.estimate.base import register
from harness.estimate.proxies import (
    DEFAULT_BATCH,
    Proxy,
    loss_backward,
    proxy_batches,
    weighted_layers,
)

__all__ = ["ZICO_BATCHES", "Zico", "zico_of_gradients"]

# The official code (and AZ-NAS's copy of it) reads two batches.
ZICO_BATCHES = 2


def zico_of_gradients(gradients: Mapping[str, Sequence[torch.Tensor]]) -> float:
    """ZiCo from each layer's weight gradients, one tensor per batch: the sum over
    layers of log( sum over the layer's weights of mean|g| / std(g) ), mean and
    (population) standard deviation across the batches. As the official code, a
    weight whose gradient is the same in every batch (std 0) is left out, and so is
    a layer whose sum is 0 (no weight left, or gradients all zero)."""
    total = 0.0
    for per_batch in gradients.values():
        stacked = torch.stack([g.detach().reshape(-1).to(torch.float64) for g in per_batch])
        # By hand, shifted by the first batch: exactly 0 where every batch agrees (a
        # plain mean of three 0.1s is not 0.1), and several times faster than torch's
        # own std over dim 0.
        shifted = stacked - stacked[0]
        std = (shifted.square().mean(dim=0) - shifted.mean(dim=0).square()).clamp_min(0).sqrt()
        moving = std > 0
        ratio = float((stacked.abs().mean(dim=0)[moving] / std[moving]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total


@register
class Zico(Proxy):
    """zico (Li et al., ICLR 2023), their proxy's definition
    ZiCo = sum over layers l of log( sum over theta in l of E[|dL/dtheta|] / sqrt(Var(dL/dtheta)) ),
    expectation and variance over at least two batches, in train mode with
    cross-entropy, the layers every Conv2d and Linear (`zico_of_gradients`).

    The batches are disjoint, drawn with the seed (`proxy_batches`; the first is the
    batch every other proxy sees), each of --proxy-batch images, two as the official
    code. Gradients are zeroed between batches as AZ-NAS's revision of that code does
    (the original accumulates them, so its second "batch" is the sum of both)."""

    name = "zico"
    cite = "zico: Li et al., ZiCo, ICLR 2023 (2 batches, per-batch gradients)"

    def __init__(self, batch_size: int = DEFAULT_BATCH, batches: int = ZICO_BATCHES) -> None:
        super().__init__(batch_size)
        if batches < 2:
            raise ValueError(f"ZiCo's statistics need at least 2 batches, got {batches}")
        self.batches = int(batches)

    def settings(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "batches": self.batches}

    def draw(self, dataset, seed, device, resize) -> list:
        return proxy_batches(dataset, self.batch_size, self.batches, seed, device, resize)

    def score_candidate(self, candidate, batch, device) -> float:
        model = candidate.model.to(device)
        gradients: dict[str, list[torch.Tensor]] = {}
        for one in batch:
            loss_backward(model, one)
            for index, layer in enumerate(weighted_layers(model)):
                if layer.weight.grad is not None:
                    gradients.setdefault(str(index), []).append(layer.weight.grad.clone())
        return zico_of_gradients(gradients)
