"""Zero-cost proxies: a score of a network at initialisation, from one minibatch.

Each proxy scores the candidate the configuration asks for, built as training
builds it with the weights initialised from the configuration's seed
(`initial_candidate`; built once and copied for each proxy where several score
it), on one batch of the training split drawn with that seed and
standardised as the trainer standardises (the first 4,096 training images'
mean and sd). Higher is better for every score here (`Estimator`).

- `params`, `flops`: the baselines every proxy must beat (ZiCo, Li et al.,
  ICLR 2023, found that most proxies do not): `harness.measure`'s counts.
- `grad_norm`, `snip`: Abdelfattah et al., "Zero-Cost Proxies for Lightweight
  NAS", ICLR 2021, in train mode, cross-entropy on the batch.
- `synflow`: Tanaka et al., NeurIPS 2020, as used by Abdelfattah et al. 2021.
- `naswot`: Mellor et al., "Neural Architecture Search without Training",
  ICML 2021.

The proxies that lead today build on the same `Proxy`: `meco` and `swap` in
`activation_proxies`, `zico` (two batches, `proxy_batches`) in `zico`; `ensemble`
aggregates their ranks.

As in Abdelfattah et al.'s code, the per-weight scores are summed over the
weights of every Conv2d and Linear layer (timm's Conv2dSame and friends are
subclasses). Our models return logits: no softmax sits between the network and
the loss or synflow's sum.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from harness.estimate.base import Estimator, register
from harness.measure import count_flops, count_params, resolve_device

if TYPE_CHECKING:
    from harness.candidate import Candidate
    from harness.config import TrainConfig
    from harness.data import Dataset

__all__ = [
    "DEFAULT_BATCH",
    "Flops",
    "GradNorm",
    "Naswot",
    "Params",
    "Proxy",
    "Snip",
    "Synflow",
    "initial_candidate",
    "loss_backward",
    "proxy_batch",
    "proxy_batches",
    "relu_modules",
    "weighted_layers",
]

# Abdelfattah et al. score NAS-Bench-201 with a batch of 64; Mellor et al. use 128.
# One batch size for every proxy keeps their seconds comparable.
DEFAULT_BATCH = 64
# As the trainer: the data's mean and sd from this many training images.
_STATS_IMAGES = 4096


def weighted_layers(model: nn.Module) -> Iterator[nn.Module]:
    """Every Conv2d and Linear layer: the layers whose weights the proxies score."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            yield module


def relu_modules(model: nn.Module) -> Iterator[nn.Module]:
    """Every ReLU and ReLU6 module (the I blocks use ReLU6, MobileNetV2's): where a
    unit's on/off pattern is read. Activations applied as functions are not seen."""
    for module in model.modules():
        if isinstance(module, nn.ReLU | nn.ReLU6):
            yield module


Batch = tuple[torch.Tensor, torch.Tensor]


def initial_candidate(config: TrainConfig, dataset: Dataset) -> Candidate:
    """`config`'s network with the initial weights its trial starts from (seeded, on
    `config`'s threads, as run_trial builds it): what every proxy scores."""
    from harness.train import seed_everything
    from harness.trial import candidate_for

    if config.threads:
        torch.set_num_threads(config.threads)  # as run_trial: --threads holds here too
    seed_everything(config.seed)
    return candidate_for(config, dataset)


def proxy_batches(
    dataset: Dataset,
    batch_size: int,
    count: int,
    seed: int,
    device: torch.device,
    resize: int | None = None,
) -> list[Batch]:
    """`count` disjoint batches of `batch_size` training images (standardised floats)
    and their hard labels, cut from one permutation drawn with `seed`, so the first
    is `proxy_batch`'s. A split of fewer than count x batch_size images is shared
    out equally."""
    from harness.data import to_float

    split = dataset.splits["train"]
    size = min(batch_size, len(split) // count)
    if size < 1:
        raise ValueError(f"{count} batches need at least {count} training images, got {len(split)}")
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(split), generator=generator)
    sample = to_float(split.images[:_STATS_IMAGES].cpu())
    mean, sd = sample.mean().item(), max(sample.std().item(), 1e-3)
    batches = []
    for k in range(count):
        index = order[k * size : (k + 1) * size]
        images = to_float(split.images[index.to(split.images.device)]).to(device)
        if resize:
            images = F.interpolate(
                images, size=(resize, resize), mode="bilinear", align_corners=False
            )
        labels = split.hard_labels()[index.to(split.labels.device)].to(device)
        batches.append(((images - mean) / sd, labels))
    return batches


def proxy_batch(
    dataset: Dataset, batch_size: int, seed: int, device: torch.device, resize: int | None = None
) -> Batch:
    """`batch_size` training images drawn with `seed` (standardised floats) and hard labels."""
    return proxy_batches(dataset, batch_size, 1, seed, device, resize)[0]


class Proxy(Estimator):
    """A score of the freshly initialised candidate, optionally on one batch."""

    # Whether the score needs a batch of data (params, flops and synflow do not).
    needs_batch: ClassVar[bool] = True

    def __init__(self, batch_size: int = DEFAULT_BATCH) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)

    def settings(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size} if self.needs_batch else {}

    def score(self, config: TrainConfig, dataset: Dataset) -> float:
        return self._score(config, dataset, initial_candidate(config, dataset))

    def score_built(self, config: TrainConfig, dataset: Dataset, candidate: Candidate) -> float:
        """`score`, given `config`'s network as `initial_candidate` built it, shared with
        other proxies: each scores a copy, since scoring changes the model (its device,
        mode and gradients; synflow its weights)."""
        return self._score(config, dataset, copy.deepcopy(candidate))

    def _score(self, config: TrainConfig, dataset: Dataset, candidate: Candidate) -> float:
        device = resolve_device(config.device)
        batch = None
        if self.needs_batch:
            batch = self.draw(dataset, config.seed, device, candidate.resize)
        return float(self.score_candidate(candidate, batch, device))

    def draw(self, dataset: Dataset, seed: int, device: torch.device, resize: int | None) -> Any:
        """The data `score_candidate` sees: one batch (a proxy over several overrides this)."""
        return proxy_batch(dataset, self.batch_size, seed, device, resize)

    def score_candidate(self, candidate: Candidate, batch: Any, device: torch.device) -> float:
        """The score of `candidate`'s model as built (it may be changed in place)."""
        raise NotImplementedError


@register
class Params(Proxy):
    """The parameter count: the baseline every proxy must beat."""

    name = "params"
    cite = "parameter count (baseline; ZiCo, Li et al., ICLR 2023, shows most proxies lose to it)"
    seeded = False
    needs_batch = False

    def score_candidate(self, candidate, batch, device) -> float:
        return float(count_params(candidate.model))


@register
class Flops(Proxy):
    """Forward FLOPs per image (fvcore, multiply-add = 1): the other baseline."""

    name = "flops"
    cite = "forward FLOPs per image, fvcore (baseline)"
    seeded = False
    needs_batch = False

    def score_candidate(self, candidate, batch, device) -> float:
        return float(count_flops(candidate.model, candidate.input_shape))


def loss_backward(model: nn.Module, batch: Batch) -> None:
    """Cross-entropy of `batch` back-propagated in train mode, from zeroed gradients."""
    images, labels = batch
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()


@register
class GradNorm(Proxy):
    """grad_norm (Abdelfattah et al., ICLR 2021): the sum over Conv2d/Linear layers of
    the L2 norm of each layer's weight gradient, cross-entropy on one batch, train mode."""

    name = "grad_norm"
    cite = "grad_norm: Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"

    def score_candidate(self, candidate, batch, device) -> float:
        model = candidate.model.to(device)
        loss_backward(model, batch)
        return sum(
            float(m.weight.grad.detach().norm())
            for m in weighted_layers(model)
            if m.weight.grad is not None
        )


@register
class Snip(Proxy):
    """snip (Lee et al., ICLR 2019, as in Abdelfattah et al., ICLR 2021): the sum of
    |w * dL/dw| over Conv2d/Linear weights, cross-entropy on one batch, train mode
    (the gradient with respect to a mask of ones is w * dL/dw, so no mask is built)."""

    name = "snip"
    cite = "snip: Lee et al., ICLR 2019, as in Abdelfattah et al., ICLR 2021"

    def score_candidate(self, candidate, batch, device) -> float:
        model = candidate.model.to(device)
        loss_backward(model, batch)
        return sum(
            float((m.weight.detach() * m.weight.grad).abs().sum())
            for m in weighted_layers(model)
            if m.weight.grad is not None
        )


@contextlib.contextmanager
def _relu6_as_relu(model: nn.Module) -> Iterator[None]:
    """Every nn.ReLU6 computes a ReLU meanwhile: synflow's positive flow would hit the
    clip at 6 and lose its gradient (the I blocks use ReLU6, MobileNetV2's)."""
    changed = []
    for module in model.modules():
        if isinstance(module, nn.ReLU6):
            changed.append((module, module.max_val))
            module.max_val = math.inf
    try:
        yield
    finally:
        for module, max_val in changed:
            module.max_val = max_val


@register
class Synflow(Proxy):
    """synflow (Tanaka et al., NeurIPS 2020; as in Abdelfattah et al., ICLR 2021): with
    every parameter replaced by its absolute value, R = sum of the network's output for
    one all-ones input; the score is the sum of w * dR/dw over Conv2d/Linear weights.

    Variant: double precision (no log-sum). BatchNorm is bypassed as in Abdelfattah
    et al.'s `bn=False`: the layers run in eval mode on their fresh statistics (mean 0,
    variance 1), i.e. an identity up to eps. ReLU6 is computed as ReLU (see
    `_relu6_as_relu`). The stored score is the natural log of the sum, which keeps
    its order (Spearman and Kendall are unchanged) and stays readable where the sum
    itself reaches 1e40 and more."""

    name = "synflow"
    cite = "synflow: Tanaka et al., NeurIPS 2020, as in Abdelfattah et al., ICLR 2021 (float64)"
    needs_batch = False

    def score_candidate(self, candidate, batch, device) -> float:
        model = candidate.model.to(device=device, dtype=torch.float64).eval()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        model.zero_grad(set_to_none=True)
        ones = torch.ones((1, *candidate.input_shape), dtype=torch.float64, device=device)
        with _relu6_as_relu(model):
            model(ones).sum().backward()
        total = sum(
            float((m.weight.detach() * m.weight.grad).sum())
            for m in weighted_layers(model)
            if m.weight.grad is not None
        )
        # 0 (a dead network) ranks last; an overflow ranks first, as its true value would.
        return math.log(total) if total > 0 else -math.inf


@register
class Naswot(Proxy):
    """naswot (Mellor et al., ICML 2021, the published version's "hook_logdet"): over one
    batch of N images, each image's binary code c (1 where a ReLU's input is positive,
    over every ReLU/ReLU6 module); K[i, j] = the number of units where c_i and c_j agree
    (N_A minus their Hamming distance); the score is log|det K| (slogdet), train mode.
    Activations applied as functions rather than modules are not seen."""

    name = "naswot"
    cite = "naswot: Mellor et al., Neural Architecture Search without Training, ICML 2021"

    def score_candidate(self, candidate, batch, device) -> float:
        model = candidate.model.to(device).train()
        images, _ = batch
        kernel = torch.zeros((len(images), len(images)), dtype=torch.float64, device=device)

        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            # relu(x) > 0 exactly where x > 0, so the output serves (in-place ReLUs too).
            code = (output.detach().flatten(1) > 0).to(torch.float64)
            kernel.add_(code @ code.T + (1.0 - code) @ (1.0 - code).T)

        handles = [m.register_forward_hook(hook) for m in relu_modules(model)]
        try:
            with torch.no_grad():
                model(images)
        finally:
            for handle in handles:
                handle.remove()
        sign, logdet = torch.linalg.slogdet(kernel)
        return float(logdet) if float(sign) > 0 else -math.inf
