"""Zero-cost proxies read from the feature maps of one forward pass, without labels.

- `meco`: Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass
  via Minimum Eigenvalue of Correlation", NeurIPS 2023.
- `swap`: Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast
  NAS", ICLR 2024.

Both score the candidate as `Proxy` builds it (the trial's initial weights for the
seed) in train mode, as the authors' code leaves a fresh network, so BatchNorm
normalises with the batch's own statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from harness.estimate.base import register
from harness.estimate.proxies import Proxy, relu_modules
from harness.measure import count_params

__all__ = [
    "SWAP_SAMPLES",
    "Meco",
    "Swap",
    "distinct_patterns",
    "meco_layers",
    "min_correlation_eigenvalue",
    "pack_patterns",
    "swap_regulariser",
]

# The official SWAP code's `--input_samples` default: the length of each pattern.
SWAP_SAMPLES = 16
# Bits of one packed pattern word: an int64 holds 63 without touching the sign bit.
_WORD = 63


@contextmanager
def _hooked(modules: Iterator[nn.Module], hook: Callable[..., None]) -> Iterator[None]:
    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def min_correlation_eigenvalue(feature_map: torch.Tensor) -> float:
    """lambda_min of the Pearson correlation matrix of a (C, H, W) map's C channels,
    each channel a variable observed at the H x W positions (float64). A channel
    without variance gives NaN correlations, set to 0 as MeCo's code does: a zero
    row, so lambda_min is 0. The matrix is symmetric positive semi-definite with
    trace at most C, so the value lies in [0, 1] up to rounding."""
    channels = feature_map.detach().reshape(feature_map.shape[0], -1).to(torch.float64)
    if len(channels) > channels.shape[1] - 1:
        # Centred over n positions, C channels span at most n - 1 dimensions: the
        # matrix is singular and lambda_min is exactly 0 (late, small maps of many
        # channels; one position is NaN in their code, so 0 too). No need to solve.
        return 0.0
    corr = torch.corrcoef(channels).reshape(len(channels), len(channels))
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


def meco_layers(model: nn.Module, images: torch.Tensor) -> list[float]:
    """MeCo's per-layer term for every distinct 4-D feature map of one forward pass
    of `images`: `min_correlation_eigenvalue` of the first image's map.

    As MeCo's code, every module is hooked (containers too) and reads the first
    sample of its output. Their code then counts one map as often as modules return
    it (an Identity, a Sequential returning its last layer's output); here a map is
    counted once: a hook skips the very tensor the previous hook read, unchanged
    (an in-place ReLU changes it, so it counts as a new map)."""
    values: list[float] = []
    last: list[Any] = [None, -1]

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            return  # a vector's "channels" have one observation: MeCo's term is 0
        if output is last[0] and output._version == last[1]:
            return
        last[0], last[1] = output, output._version
        values.append(min_correlation_eigenvalue(output[0]))

    with _hooked(model.modules(), hook), torch.no_grad():
        model(images)
    return values


@register
class Meco(Proxy):
    """meco (Jiang et al., NeurIPS 2023), their proxy's definition
    MeCo = sum over layers i of lambda_min(P(f_i(X))), P(f_i(X)) the Pearson
    correlation matrix of layer i's feature-map channels for one image X
    (`meco_layers`). The plain MeCo, the variant behind the paper's headline
    correlations (0.89 on NATS-Bench-TSS CIFAR-10), not MeCo_opt (which samples 8
    channels per layer for speed and rescales by C/8).

    Their code's default is a batch of one image; here the first image of the proxy
    batch is read while the whole batch passes, so BatchNorm normalises with batch
    statistics as in training (a batch of one cannot pass a BatchNorm over a 1 x 1
    map in train mode)."""

    name = "meco"
    cite = "meco: Jiang et al., MeCo, NeurIPS 2023 (plain MeCo, not MeCo_opt)"

    def score_candidate(self, candidate, batch, device) -> float:
        images, _ = batch
        return math.fsum(meco_layers(candidate.model.to(device).train(), images))


def pack_patterns(on: torch.Tensor) -> torch.Tensor:
    """A (samples, units) boolean matrix -> each unit's pattern over the samples as a
    row of 63-bit integer words (units, ceil(samples / 63)): counting distinct
    patterns becomes a sort of integers, eight bytes a unit for up to 63 samples."""
    samples, units = on.shape
    words = max(1, math.ceil(samples / _WORD))
    packed = torch.zeros((units, words), dtype=torch.int64, device=on.device)
    for sample in range(samples):
        packed[:, sample // _WORD] |= on[sample].to(torch.int64) << (sample % _WORD)
    return packed


def distinct_patterns(packed: torch.Tensor) -> int:
    """The number of distinct rows of `pack_patterns`' words."""
    if packed.shape[1] == 1:  # one word a unit: a flat sort, much faster than rows
        return int(torch.unique(packed[:, 0]).numel())
    return int(torch.unique(packed, dim=0).shape[0])


def swap_regulariser(params: int, mu: float, sigma: float) -> float:
    """SWAP's size regulariser f(Theta) = exp(-(Theta - mu)^2 / sigma), Theta the
    parameter count in thousands as their code counts it."""
    return math.exp(-((params / 1e3 - mu) ** 2) / sigma)


@register
class Swap(Proxy):
    """swap (Peng et al., ICLR 2024), their SWAP-Score = |{p_u : u a unit}|, the
    number of distinct sample-wise activation patterns over a batch of S images:
    p_u is unit u's binary vector over the images (its post-ReLU value > 0 in each),
    u every unit of every ReLU/ReLU6 output on a 4-D feature map (`pack_patterns`).
    So the score is at most the number of units and at most 2^S.

    As the official code: S = 16 images (`SWAP_SAMPLES`, its default; --proxy-batch
    does not change it), the patterns of all layers pooled into one set. Their code
    hooks nn.ReLU only; ReLU6 is read too, or the I blocks' activations would not be
    seen. Their code averages 32 re-initialisations with N(0, 1) weights; here the
    trial's own initial weights for the seed are scored once, as every proxy here.

    The plain SWAP-Score by default. The regularised SWAP (behind the paper's
    0.90 on NAS-Bench-201 CIFAR-100) multiplies it by `swap_regulariser`, whose mu and
    sigma the paper sets per search space to steer the model size; pass both to use it."""

    name = "swap"
    cite = "swap: Peng et al., SWAP-NAS, ICLR 2024 (SWAP-Score; regularised only with mu, sigma)"

    def __init__(
        self, samples: int = SWAP_SAMPLES, mu: float | None = None, sigma: float | None = None
    ) -> None:
        super().__init__(batch_size=samples)
        if (mu is None) != (sigma is None):
            raise ValueError("the regularised SWAP needs both mu and sigma")
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.mu, self.sigma = mu, sigma

    def settings(self) -> dict[str, Any]:
        regular = {} if self.mu is None else {"mu": self.mu, "sigma": self.sigma}
        return {"samples": self.batch_size, **regular}

    def score_candidate(self, candidate, batch, device) -> float:
        model = candidate.model.to(device).train()
        images, _ = batch
        packs: list[torch.Tensor] = []

        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            if inputs[0].dim() == 4:  # as their code: activations of conv feature maps
                packs.append(pack_patterns(output.detach().flatten(1) > 0))

        with _hooked(relu_modules(model), hook), torch.no_grad():
            model(images)
        count = distinct_patterns(torch.cat(packs)) if packs else 0
        if self.mu is None:
            return float(count)
        assert self.sigma is not None
        return count * swap_regulariser(count_params(model), self.mu, self.sigma)
