"""Weight initialisation of a `BlockSequenceNet`, as timm's own builders do it.

PyTorch's default conv init (Kaiming-uniform with a=sqrt(5), i.e. std
1/sqrt(3 fan_in)) starts every residual branch at full strength; timm's
networks start deep residual stacks near the identity and train faster in the
first few hundred steps, which is all a cheap budget has (docs/init.md).

Scheme "timm", by part of the network:

- stem, R blocks (with their projection shortcut) and any other registered
  kind: timm's ResNet rule (`ResNet.init_weights`): every conv
  Kaiming-normal, fan-out, ReLU gain (std sqrt(2 / (k*k*out))); norms keep
  weight 1, bias 0; then each block's own `zero_init_last()` (timm's
  `Bottleneck` zeroes `bn3.weight`).
- I blocks (timm's `InvertedResidual`): timm's EfficientNet/MobileNet rule
  (`efficientnet_init_weights`, i.e. `_init_weight_goog`): conv weights normal
  with std sqrt(2 / (k*k*out/groups)), so a depthwise 3x3 gets std sqrt(2/9)
  where the ResNet rule would give sqrt(2/(9 C)); biases 0, norms 1/0. timm's
  `InvertedResidual` has no `zero_init_last`, so a block with an identity skip
  gets the same treatment here (its last norm, `bn3`, weight 0, as timm's
  byobnet blocks do when they have a shortcut); a block without a skip keeps
  `bn3` at 1, or it would output zeros.
- head: left as PyTorch builds it, as timm's ResNet leaves its classifier.

Scheme "torch": PyTorch's defaults, untouched (what every network had before
the `init` skeleton field existed).
"""

from __future__ import annotations

# timm exports this builder helper from a private module only; it is the
# rule timm's EfficientNet and MobileNetV2/V3 constructors call.
from timm.models._efficientnet_builder import efficientnet_init_weights
from torch import nn

from harness.blocks import InvertedResidual
from harness.config import SKELETON_CHOICES
from harness.errors import ModelError

__all__ = ["init_network"]


def init_network(stem: nn.Module, stages: nn.Module, scheme: str) -> None:
    """Initialise `stem` and the blocks of `stages` (a sequence of stage sequences) in place."""
    if scheme not in SKELETON_CHOICES["init"]:
        raise ModelError(f"unknown init {scheme!r} (known: {', '.join(SKELETON_CHOICES['init'])})")
    if scheme == "torch":
        return
    _resnet_convs(stem)
    for stage in stages.children():
        for block in stage.children():
            if isinstance(block, InvertedResidual):
                efficientnet_init_weights(block)
            else:
                _resnet_convs(block)
            _zero_init_last(block)


def _resnet_convs(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def _zero_init_last(block: nn.Module) -> None:
    if isinstance(block, InvertedResidual):
        if block.has_skip:
            nn.init.zeros_(block.bn3.weight)
    elif hasattr(block, "zero_init_last"):
        block.zero_init_last()
