"""Skeleton + genotype -> `nn.Module`, and timm baselines by name.

A skeleton fixes everything but the block sequence: input shape, stem, stage
widths and depths, head. The genotype (from `harness.grammar`) says which
block kind sits at each position. Stage 1 keeps the stem's resolution; every
later stage starts with a stride-2 block, as in ResNet.

Default widths: stage outputs of 64/128/256/512 channels (a quarter of
ResNet-50's 256..2048, sized for 48x48 inputs without early downsampling), R
with ResNet-50's 4x compression and I with expansion 2. At one stage width C
an R block costs about 1.06 C^2 multiply-adds per pixel (C^2/4 + 9C^2/16 + C^2/4)
and an I block about 2eC^2 + 9eC, i.e. 4.0 C^2 at e=2 but 12 C^2 at
MobileNetV2's e=6. With e=6 every I would cost 11x an R and an ordering search
would only rediscover "fewer I blocks, fewer FLOPs"; at e=2 the two kinds are of
the same order (I/R about 3.8x, see `tests/test_models.py`) and an I block
still expands before it compresses. The `paper` space sets MobileNetV2's e=6.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from harness import blocks
from harness.errors import ModelError
from harness.grammar import Genotype, family, resolve

__all__ = [
    "PAPER_BASELINES",
    "Architecture",
    "BlockSequenceNet",
    "Skeleton",
    "build_model",
    "resolve_architecture",
]

TIMM_PREFIX = "timm:"
# The three baselines of the Bi-ResNet paper's Table 1.
PAPER_BASELINES: tuple[str, ...] = ("timm:resnet50", "timm:mobilenetv1_100", "timm:mobilenetv2_100")
STEMS = ("auto", "small", "resnet")
HEADS = ("linear", "paper")
OUTPUTS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class Skeleton:
    """Everything about a network except its block sequence."""

    input_shape: tuple[int, int, int] = (1, 48, 48)
    num_classes: int = 7
    stem: str = "auto"
    stem_width: int = 32
    widths: tuple[int, ...] = (64, 128, 256, 512)
    depths: tuple[int, ...] = (3, 4, 6, 3)
    width_mult: float = 1.0
    head: str = "linear"
    output: str = "softmax"
    drop_rate: float = 0.0
    block_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ModelError(
                f"input shape must be C x H x W with positive sizes, got {self.input_shape}"
            )
        if self.num_classes < 1:
            raise ModelError(f"number of classes must be at least 1, got {self.num_classes}")
        for name, value, allowed in (
            ("stem", self.stem, STEMS),
            ("head", self.head, HEADS),
            ("output", self.output, OUTPUTS),
        ):
            if value not in allowed:
                raise ModelError(f"unknown {name} {value!r} (known: {', '.join(allowed)})")
        if not self.widths or len(self.widths) != len(self.depths):
            raise ModelError(
                f"widths {self.widths} and depths {self.depths} must have the same, non-zero length"
            )
        if min(self.depths) < 1 or min(self.widths) < 1 or self.width_mult <= 0:
            raise ModelError("depths, widths and width_mult must be positive")

    @property
    def resolved_stem(self) -> str:
        """`auto`: the ResNet stem's 4x early downsampling would waste a 48x48 face."""
        if self.stem != "auto":
            return self.stem
        return "small" if min(self.input_shape[1:]) < 96 else "resnet"

    def scaled_widths(self) -> tuple[int, ...]:
        return tuple(_round_channels(w * self.width_mult) for w in self.widths)

    def scaled_stem_width(self) -> int:
        return _round_channels(self.stem_width * self.width_mult)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Skeleton:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"unknown skeleton keys {unknown} (known: {', '.join(sorted(known))})")
        data = dict(data)
        for key in ("input_shape", "widths", "depths"):
            if key in data:
                data[key] = tuple(int(v) for v in data[key])
        return cls(**data)

    def with_(self, **changes: Any) -> Skeleton:
        return replace(self, **changes)


def _round_channels(value: float, divisor: int = 8) -> int:
    """Round to a multiple of 8 (vector-friendly, and divisible by R's 4x expansion)."""
    return max(divisor, int(round(value / divisor)) * divisor)


@dataclass(frozen=True)
class StageLayout:
    index: int
    blocks: str
    width: int
    stride: int
    out_hw: tuple[int, int]


@dataclass(frozen=True)
class Architecture:
    """What a user's architecture string resolved to, before any module exists."""

    name: str  # canonical block string, or "timm:NAME"
    kind: str  # "candidate" | "baseline"
    family: str  # alternated | RI | IR | other | baseline
    genotype: Genotype | None
    stages: tuple[StageLayout, ...]

    @property
    def is_baseline(self) -> bool:
        return self.kind == "baseline"

    def counts(self) -> dict[str, int]:
        return self.genotype.counts() if self.genotype else {}


def resolve_architecture(text: str, skeleton: Skeleton) -> Architecture:
    """Parse a grammar string, a named ordering or `timm:NAME` (raises GrammarError/ModelError)."""
    text = text.strip()
    if text.startswith(TIMM_PREFIX):
        name = text[len(TIMM_PREFIX) :]
        _check_timm_name(name)
        return Architecture(TIMM_PREFIX + name, "baseline", "baseline", None, ())
    genotype = resolve(text, skeleton.depths, known=blocks.known_letters())
    return Architecture(
        genotype.canonical, "candidate", family(genotype), genotype, _layout(genotype, skeleton)
    )


def _layout(genotype: Genotype, skeleton: Skeleton) -> tuple[StageLayout, ...]:
    widths = skeleton.scaled_widths()
    _, h, w = skeleton.input_shape
    stem_stride = 4 if skeleton.resolved_stem == "resnet" else 1
    if skeleton.resolved_stem == "resnet" and min(h, w) < 32:
        raise ModelError(
            f"input {_shape_str(skeleton.input_shape)} is too small for the resnet stem "
            "(needs at least 32x32); use --stem small"
        )
    h, w = math.ceil(h / stem_stride), math.ceil(w / stem_stride)
    layout = []
    for index, letters in enumerate(genotype.stages):
        stride = 1 if index == 0 else 2
        if stride == 2 and min(h, w) < 2:
            raise ModelError(
                f"input {_shape_str(skeleton.input_shape)} is too small for {len(genotype.stages)} "
                f"stages: stage {index + 1} would start from a {h}x{w} map"
            )
        h, w = math.ceil(h / stride), math.ceil(w / stride)
        layout.append(StageLayout(index + 1, letters, widths[index], stride, (h, w)))
    return tuple(layout)


def _shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _check_timm_name(name: str) -> None:
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join('timm:' + c for c in close)}?" if close else ""
        raise ModelError(f"unknown timm model {name!r}{hint}")


class BlockSequenceNet(nn.Module):
    """Stem, stages of registry blocks, head. Returns logits."""

    def __init__(self, architecture: Architecture, skeleton: Skeleton) -> None:
        super().__init__()
        self.architecture = architecture
        self.skeleton = skeleton
        self.output_activation = skeleton.output
        in_chs = skeleton.input_shape[0]
        stem_width = skeleton.scaled_stem_width()
        self.stem = _make_stem(skeleton.resolved_stem, in_chs, stem_width)
        stages = []
        chs = stem_width
        for stage in architecture.stages:
            layers = []
            for position, letter in enumerate(stage.blocks):
                stride = stage.stride if position == 0 else 1
                params = skeleton.block_params.get(letter, {})
                layers.append(blocks.build_block(letter, chs, stage.width, stride, **params))
                chs = stage.width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.num_features = chs
        self.head = _make_head(skeleton.head, chs, skeleton.num_classes, skeleton.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        logits = self(x)
        return torch.sigmoid(logits) if self.output_activation == "sigmoid" else logits.softmax(-1)


def _make_stem(kind: str, in_chs: int, width: int) -> nn.Module:
    if kind == "small":
        # 3x3 at stride 1: a 48x48 face keeps its full resolution into stage 1.
        return nn.Sequential(
            nn.Conv2d(in_chs, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
    # ResNet's stem: 7x7/2 conv and 3x3/2 max-pool.
    return nn.Sequential(
        nn.Conv2d(in_chs, width, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


def _make_head(kind: str, in_features: int, num_classes: int, drop_rate: float) -> nn.Module:
    pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if kind == "linear":
        return nn.Sequential(*pool, nn.Dropout(drop_rate), nn.Linear(in_features, num_classes))
    # The paper's head: Dense(2048)-BN-Dense(1024)-BN-Dense(C), with Dropout(0.5)
    # after the first block and Dropout(0.3)-BN-Dropout(0.3) around the second BN.
    # The paper activates with ReLU6 before the dense layers.
    return nn.Sequential(
        *pool,
        nn.Linear(in_features, 2048),
        nn.ReLU6(inplace=True),
        nn.BatchNorm1d(2048),
        nn.Dropout(0.5),
        nn.Linear(2048, 1024),
        nn.ReLU6(inplace=True),
        nn.Dropout(0.3),
        nn.BatchNorm1d(1024),
        nn.Dropout(0.3),
        nn.Linear(1024, num_classes),
    )


def build_model(architecture: Architecture | str, skeleton: Skeleton) -> nn.Module:
    """Build the network; timm baselines get `in_chans` and `num_classes` from the skeleton."""
    if isinstance(architecture, str):
        architecture = resolve_architecture(architecture, skeleton)
    if architecture.is_baseline:
        return _build_timm(architecture.name[len(TIMM_PREFIX) :], skeleton)
    return BlockSequenceNet(architecture, skeleton)


def _build_timm(name: str, skeleton: Skeleton) -> nn.Module:
    import timm

    model = timm.create_model(
        name,
        pretrained=False,
        in_chans=skeleton.input_shape[0],
        num_classes=skeleton.num_classes,
    )
    model.output_activation = skeleton.output
    return model
