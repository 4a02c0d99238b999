"""The block registry: one letter of the grammar -> one factory of `nn.Module`s.

Every factory has the signature ``(in_chs, out_chs, stride, **params) -> nn.Module``
and maps (N, in_chs, H, W) to (N, out_chs, H / stride, W / stride). R and I wrap
timm's own blocks; they are adapters, not copies. This is the only module that
imports timm's private `_efficientnet_blocks`.

Registering a new kind is a few lines::

    register_block("S", lambda in_chs, out_chs, stride, **_: MyBlock(in_chs, out_chs, stride),
                   "squeeze-excite block")

after which the letter is accepted by the grammar, the model builder and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from timm.models._efficientnet_blocks import InvertedResidual
from timm.models.resnet import Bottleneck, downsample_conv
from torch import nn

from harness.errors import ModelError

BlockFactory = Callable[..., nn.Module]

__all__ = [
    "BlockFactory",
    "BlockSpec",
    "build_block",
    "known_letters",
    "register_block",
    "registered_blocks",
    "residual_block",
    "inverted_residual_block",
]


@dataclass(frozen=True)
class BlockSpec:
    letter: str
    factory: BlockFactory
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, BlockSpec] = {}


def register_block(
    letter: str,
    factory: BlockFactory,
    description: str,
    defaults: dict[str, Any] | None = None,
    *,
    replace: bool = False,
) -> None:
    """Make `letter` a block kind of the grammar, built by `factory`."""
    if len(letter) != 1 or not letter.isascii() or not letter.isupper():
        raise ModelError(f"a block letter must be one upper-case ASCII letter, got {letter!r}")
    if letter in _REGISTRY and not replace:
        raise ModelError(
            f"block letter {letter!r} is already registered ({_REGISTRY[letter].description})"
        )
    _REGISTRY[letter] = BlockSpec(letter, factory, description, dict(defaults or {}))


def unregister_block(letter: str) -> None:
    """Remove a letter again (tests register temporary kinds)."""
    _REGISTRY.pop(letter, None)


def known_letters() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def registered_blocks() -> dict[str, BlockSpec]:
    return dict(_REGISTRY)


def build_block(letter: str, in_chs: int, out_chs: int, stride: int, **params: Any) -> nn.Module:
    try:
        spec = _REGISTRY[letter]
    except KeyError:
        raise ModelError(
            f"unknown block {letter!r} (known: {', '.join(known_letters())})"
        ) from None
    return spec.factory(in_chs, out_chs, stride, **{**spec.defaults, **params})


def residual_block(
    in_chs: int,
    out_chs: int,
    stride: int,
    *,
    reduction: int = 4,
    drop_path_rate: float = 0.0,
    act_layer: type[nn.Module] = nn.ReLU,
) -> nn.Module:
    """R: timm's ResNet-50 `Bottleneck` (1x1 compress, 3x3, 1x1 expand).

    timm's Bottleneck always outputs ``planes * 4`` channels and has an inner
    width of ``planes * base_width / 64``; we pick `planes` from `out_chs` and
    `base_width` from `reduction` so that the inner width is ``out_chs / reduction``
    (ResNet-50's own blocks have reduction 4). The projection shortcut that the
    caller must supply when the shape changes is timm's `downsample_conv`.
    """
    expansion = Bottleneck.expansion
    if out_chs % expansion:
        raise ModelError(f"R block needs out channels divisible by {expansion}, got {out_chs}")
    planes = out_chs // expansion
    base_width = 64 * expansion // reduction
    if planes * base_width // 64 < 1:
        raise ModelError(
            f"R block of {out_chs} channels with reduction {reduction} has no inner width"
        )
    downsample = None
    if stride != 1 or in_chs != out_chs:
        downsample = downsample_conv(in_chs, out_chs, kernel_size=1, stride=stride)
    drop_path = None
    if drop_path_rate > 0:
        from timm.layers import DropPath

        drop_path = DropPath(drop_path_rate)
    return Bottleneck(
        in_chs,
        planes,
        stride=stride,
        downsample=downsample,
        base_width=base_width,
        act_layer=act_layer,
        drop_path=drop_path,
    )


def inverted_residual_block(
    in_chs: int,
    out_chs: int,
    stride: int,
    *,
    exp_ratio: float = 2.0,
    kernel_size: int = 3,
    drop_path_rate: float = 0.0,
    act_layer: type[nn.Module] = nn.ReLU6,
) -> nn.Module:
    """I: timm's MobileNetV2 `InvertedResidual` (1x1 expand, 3x3 depthwise, linear 1x1).

    ReLU6 as in MobileNetV2. timm adds the identity skip itself when stride is
    1 and the channel counts match, exactly like MobileNetV2's first block of a
    stage has none. The default expansion is 2, not MobileNetV2's 6: see
    `harness.models` for why (FLOPs parity with R at one stage width); the
    `paper` search space sets 6.
    """
    if exp_ratio <= 0:
        raise ModelError(f"I block expansion ratio must be positive, got {exp_ratio}")
    return InvertedResidual(
        in_chs,
        out_chs,
        dw_kernel_size=kernel_size,
        stride=stride,
        exp_ratio=exp_ratio,
        act_layer=act_layer,
        drop_path_rate=drop_path_rate,
    )


register_block(
    "R", residual_block, "residual bottleneck (ResNet-50, timm Bottleneck)", {"reduction": 4}
)
register_block(
    "I",
    inverted_residual_block,
    "inverted residual (MobileNetV2, timm InvertedResidual, ReLU6)",
    {"exp_ratio": 2.0},
)
