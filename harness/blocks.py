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

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from timm.models._efficientnet_blocks import InvertedResidual
from timm.models.resnet import Bottleneck, downsample_conv
from torch import nn

from harness.block_params import (
    BUILT_IN_PARAMS,
    ParamCheck,
    check_block_params,
    declare_block_params,
    forget_block_params,
)
from harness.errors import ConfigError, ModelError

BlockFactory = Callable[..., nn.Module]

__all__ = [
    "BlockFactory",
    "BlockSpec",
    "build_block",
    "known_letters",
    "min_stage_width",
    "narrowest_conv",
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
    # The fewest output channels at which every conv of the block has at least `floor`
    # channels: (floor, **params) -> channels. None: the kind states no rule.
    min_out: Callable[..., int] | None = None


_REGISTRY: dict[str, BlockSpec] = {}


def register_block(
    letter: str,
    factory: BlockFactory,
    description: str,
    defaults: dict[str, Any] | None = None,
    *,
    replace: bool = False,
    params: Mapping[str, ParamCheck] | None = None,
    min_out: Callable[..., int] | None = None,
) -> None:
    """Make `letter` a block kind of the grammar, built by `factory`. `params` checks each
    parameter a user may set (harness.block_params); without it the names are read
    from the factory's signature and any value is let through."""
    if len(letter) != 1 or not letter.isascii() or not letter.isupper():
        raise ModelError(f"a block letter must be one upper-case ASCII letter, got {letter!r}")
    if letter in _REGISTRY and not replace:
        raise ModelError(
            f"block letter {letter!r} is already registered ({_REGISTRY[letter].description})"
        )
    _REGISTRY[letter] = BlockSpec(letter, factory, description, dict(defaults or {}), min_out)
    declare_block_params(letter, params if params is not None else _signature_params(factory))


def _signature_params(factory: BlockFactory) -> dict[str, ParamCheck] | None:
    """The keyword parameters after (in_chs, out_chs, stride); None if it takes **kwargs."""
    try:
        found = list(inspect.signature(factory).parameters.values())[3:]
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in found):
        return None
    return {p.name: lambda _: "" for p in found if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def unregister_block(letter: str) -> None:
    """Remove a letter again (tests register temporary kinds)."""
    _REGISTRY.pop(letter, None)
    forget_block_params(letter)


def known_letters() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def registered_blocks() -> dict[str, BlockSpec]:
    return dict(_REGISTRY)


def min_stage_width(floor: int, block_params: Mapping[str, Mapping[str, Any]]) -> int:
    """The fewest channels a stage may have so that the narrowest conv of any registered
    kind, with its parameters, has at least `floor` channels: the same for every genotype,
    so that two orderings on one skeleton get the same widths."""
    needed = [floor]
    for letter, spec in _REGISTRY.items():
        if spec.min_out is None:
            continue
        try:
            needed.append(spec.min_out(floor, **{**spec.defaults, **block_params.get(letter, {})}))
        except (TypeError, ValueError):
            continue  # parameters of the wrong type: building the block refuses them, by name
    return max(needed)


def narrowest_conv(module: nn.Module) -> int | None:
    """The fewest output channels of any conv in `module` (None if it has none)."""
    widths = [m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d)]
    return min(widths) if widths else None


def build_block(letter: str, in_chs: int, out_chs: int, stride: int, **params: Any) -> nn.Module:
    try:
        spec = _REGISTRY[letter]
    except KeyError:
        raise ModelError(
            f"unknown block {letter!r} (known: {', '.join(known_letters())})"
        ) from None
    try:
        check_block_params(letter, params)
    except ConfigError as error:
        raise ModelError(str(error)) from None
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
    if out_chs % reduction:
        raise ModelError(
            f"R block of {out_chs} channels: reduction {reduction} does not divide them "
            "(its inner width is channels / reduction)"
        )
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
    "R",
    residual_block,
    "residual bottleneck (ResNet-50, timm Bottleneck)",
    {"reduction": 4},
    params=BUILT_IN_PARAMS["R"],
    # The 1x1 compression and the 3x3 run at out / reduction channels.
    min_out=lambda floor, reduction=4, **_: floor * int(reduction),
)
register_block(
    "I",
    inverted_residual_block,
    "inverted residual (MobileNetV2, timm InvertedResidual, ReLU6)",
    {"exp_ratio": 2.0},
    params=BUILT_IN_PARAMS["I"],
    # The projection outputs `out`; the expansion (in * exp_ratio) is narrower only below 1.
    min_out=lambda floor, exp_ratio=2.0, **_: math.ceil(floor / min(1.0, float(exp_ratio))),
)
