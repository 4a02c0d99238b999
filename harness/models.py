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
from harness.config import MIN_CONV_CHANNELS, TIMM_PREFIX, split_arch
from harness.errors import ModelError
from harness.grammar import Genotype, family, resolve
from harness.skeleton_limits import SKELETON_LIMITS, check_skeleton_field
from harness.weight_init import init_network

__all__ = [
    "PAPER_BASELINES",
    "Architecture",
    "BlockSequenceNet",
    "Skeleton",
    "TimmWithHead",
    "build_model",
    "paper_head",
    "resolve_architecture",
]

# The three baselines of the Bi-ResNet paper's Table 1.
PAPER_BASELINES: tuple[str, ...] = ("timm:resnet50", "timm:mobilenetv1_100", "timm:mobilenetv2_100")


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
    head_activation: str = "relu6"  # the paper head's hidden layers (docs/protocol.md)
    output: str = "softmax"
    drop_rate: float = 0.0
    block_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    init: str = "timm"  # harness.weight_init; part of every trial's identity
    # No conv narrower than this, whatever width_mult asks for (config.MIN_CONV_CHANNELS).
    min_channels: int = MIN_CONV_CHANNELS

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ModelError(
                f"input shape must be C x H x W with positive sizes, got {self.input_shape}"
            )
        if self.num_classes < 1:
            raise ModelError(f"number of classes must be at least 1, got {self.num_classes}")
        for name in SKELETON_LIMITS:
            check_skeleton_field(name, name, getattr(self, name), ModelError)
        if len(self.widths) != len(self.depths):
            raise ModelError(
                f"widths {self.widths} and depths {self.depths} must have the same, non-zero length"
            )

    @property
    def resolved_stem(self) -> str:
        """`auto`: the ResNet stem's 4x early downsampling would waste a 48x48 face."""
        if self.stem != "auto":
            return self.stem
        return "small" if min(self.input_shape[1:]) < 96 else "resnet"

    @property
    def stem_stride(self) -> int:
        """How much the stem downsamples. `strided` (the budgets' stem) is ResNet's 7x7/2
        conv with its 3x3/2 max-pool (4x) where stage 1 then still gets 8 px a side, the
        conv alone (2x) where that does, else no downsampling: resolution is what a
        budget cuts, so that widths stay whole."""
        stem = self.resolved_stem
        if stem == "strided":
            side = min(self.input_shape[1:])
            return next((s for s in (4, 2) if side >= 8 * s), 1)
        return 4 if stem == "resnet" else 1

    def scaled_widths(self) -> tuple[int, ...]:
        """Stage widths at `width_mult`, none narrower than the floor: each stage has at
        least the channels at which every block kind's narrowest conv reaches
        `min_channels` (an R block of reduction 4 needs 4x)."""
        floor = _round_up(blocks.min_stage_width(self.min_channels, self.block_params))
        return tuple(max(floor, _round_channels(w * self.width_mult)) for w in self.widths)

    def raised_widths(self) -> tuple[int, ...]:
        """The stages (1-based) whose width the floor raised above `width_mult`'s."""
        asked = (_round_channels(w * self.width_mult) for w in self.widths)
        return tuple(
            i
            for i, (got, want) in enumerate(zip(self.scaled_widths(), asked, strict=True), 1)
            if got > want
        )

    def scaled_stem_width(self) -> int:
        return max(_round_up(self.min_channels), _round_channels(self.stem_width * self.width_mult))

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


def _round_up(value: float, divisor: int = 8) -> int:
    return max(divisor, math.ceil(value / divisor) * divisor)


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
    """Parse a grammar string, a named ordering or `timm:NAME` (raises GrammarError/ModelError).

    A baseline's options (`timm:NAME?stem=small`) are not part of its name;
    `harness.candidate.build_candidate` applies them.
    """
    text = split_arch(text)[0]
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
    stem_stride = skeleton.stem_stride
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
    """Stem, stages of registry blocks, head. Returns logits.

    It has timm's model interface (`forward_features`, `forward_head`,
    `get_classifier`, `reset_classifier`, `num_classes`, `num_features`,
    `head_hidden_size`, `pretrained_cfg`), so timm's scripts can train, fine-tune
    and benchmark it; `harness.timm_model` registers it as `harness_blockseq`.
    """

    def __init__(self, architecture: Architecture, skeleton: Skeleton) -> None:
        super().__init__()
        self.architecture = architecture
        self.skeleton = skeleton
        self.output_activation = skeleton.output
        in_chs = skeleton.input_shape[0]
        stem_width = skeleton.scaled_stem_width()
        self.stem = _make_stem(skeleton.stem_stride, in_chs, stem_width)
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
        self.num_classes = skeleton.num_classes
        self.head = _make_head(skeleton, chs)
        # What the classifier reads: the pooled features, or the paper head's last hidden layer.
        self.head_hidden_size = self.get_classifier().in_features
        self.pretrained_cfg = self.default_cfg = self._pretrained_cfg()
        init_network(self.stem, self.stages, skeleton.init)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and stages: the last feature map, unpooled."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on a feature map; `pre_logits` stops before the final classifier."""
        for module in self._pre_logits_modules():
            x = module(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        logits = self(x)
        return torch.sigmoid(logits) if self.output_activation == "sigmoid" else logits.softmax(-1)

    def get_classifier(self) -> nn.Module:
        """The final classifier layer (`nn.Identity` after `reset_classifier(0)`)."""
        return self._classifier_holder()[-1]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new final classifier for `num_classes` (0: none, the model returns pre-logits).

        The paper head keeps its hidden layers: only its last Dense layer is replaced,
        as timm's models keep theirs. The networks pool by average only.
        """
        if global_pool not in (None, "avg"):
            raise ModelError(f"global_pool must be 'avg' (the only pooling), got {global_pool!r}")
        old = self.get_classifier()
        new: nn.Module = nn.Identity()
        if num_classes > 0:
            weight = next(self.parameters())
            new = nn.Linear(self.head_hidden_size, num_classes)
            new.to(device=weight.device, dtype=weight.dtype)
        new.train(old.training)
        self._classifier_holder()[-1] = new
        self.num_classes = num_classes
        self.pretrained_cfg = self.default_cfg = {**self.pretrained_cfg, "num_classes": num_classes}

    def _classifier_holder(self) -> nn.Sequential:
        """The Sequential whose last module is the classifier: the paper head nests its own."""
        last = self.head[-1]
        return last if isinstance(last, nn.Sequential) else self.head

    def _pre_logits_modules(self) -> list[nn.Module]:
        holder = self._classifier_holder()
        nested = list(holder)[:-1] if holder is not self.head else []
        return [*list(self.head)[:-1], *nested]

    def _pretrained_cfg(self) -> dict[str, Any]:
        """timm's data and head config: images as the harness feeds them (floats in
        [0, 1], no mean/std normalisation, resized bilinearly, no crop)."""
        from timm.models import PretrainedCfg

        channels = self.skeleton.input_shape[0]
        classifier = next(n for n, m in self.named_modules() if m is self.get_classifier())
        return PretrainedCfg(
            architecture="harness_blockseq",
            input_size=self.skeleton.input_shape,
            interpolation="bilinear",
            crop_pct=1.0,
            mean=(0.0,) * channels,
            std=(1.0,) * channels,
            num_classes=self.num_classes,
            pool_size=self.architecture.stages[-1].out_hw,
            first_conv="stem.0",
            classifier=classifier,
        ).to_dict()


def _make_stem(stride: int, in_chs: int, width: int) -> nn.Module:
    if stride == 1:
        # 3x3 at stride 1: a 48x48 face keeps its full resolution into stage 1.
        return nn.Sequential(
            nn.Conv2d(in_chs, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
    # ResNet's stem: 7x7/2 conv and (for 4x) its 3x3/2 max-pool.
    pool = [nn.MaxPool2d(3, stride=2, padding=1)] if stride == 4 else []
    return nn.Sequential(
        nn.Conv2d(in_chs, width, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        *pool,
    )


def _make_head(skeleton: Skeleton, in_features: int) -> nn.Module:
    pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if skeleton.head == "linear":
        return nn.Sequential(
            *pool, nn.Dropout(skeleton.drop_rate), nn.Linear(in_features, skeleton.num_classes)
        )
    # "Finally Relu(6) is used to activate and fully connected layer is used to
    # produce output" (section 3.4): the paper's networks end in a ReLU6, which
    # our last block (an I block ends in a linear projection) does not have.
    return nn.Sequential(
        nn.ReLU6(),  # not in place: an R block's last ReLU needs its output for backward
        *pool,
        paper_head(in_features, skeleton.num_classes, skeleton.head_activation),
    )


def paper_head(in_features: int, num_classes: int, activation: str = "relu6") -> nn.Sequential:
    """The paper's classifier on pooled features (section 3.5 and 4.2).

    Dense(2048)-BN-Dense(1024)-BN-Dense(C), with its two dropouts placed as
    the paper lists them: Dropout(0.5) after the first BN, and Dropout(0.3)-
    BN-Dropout(0.3) around the second. The paper gives the hidden Dense layers
    no activation; `activation="relu6"` puts a ReLU6 (the one activation the
    paper names) right after each, where an activation given to a Keras Dense
    layer sits, and "none" leaves them linear, as a bare Dense(n) is.
    """

    def act() -> list[nn.Module]:
        return [nn.ReLU6(inplace=True)] if activation == "relu6" else []

    return nn.Sequential(
        nn.Linear(in_features, 2048),
        *act(),
        nn.BatchNorm1d(2048),
        nn.Dropout(0.5),
        nn.Linear(2048, 1024),
        *act(),
        nn.Dropout(0.3),
        nn.BatchNorm1d(1024),
        nn.Dropout(0.3),
        nn.Linear(1024, num_classes),
    )


class TimmWithHead(nn.Module):
    """A timm network without its classifier, under the paper head.

    timm's body ends in its own activation and pooling (ResNet-50's ReLU, the
    MobileNets' ReLU6), so the head starts at the first Dense layer.
    """

    def __init__(self, body: nn.Module, skeleton: Skeleton) -> None:
        super().__init__()
        body.reset_classifier(0)
        features = getattr(body, "head_hidden_size", None) or body.num_features
        self.body = body
        self.head = paper_head(features, skeleton.num_classes, skeleton.head_activation)
        self.output_activation = skeleton.output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.forward_features(x)


def with_head(model: nn.Module, skeleton: Skeleton) -> nn.Module:
    """A timm model with the skeleton's head: its own classifier ("linear") or the paper's."""
    if skeleton.head == "paper":
        return TimmWithHead(model, skeleton)
    model.output_activation = skeleton.output
    return model


def build_model(architecture: Architecture | str, skeleton: Skeleton) -> nn.Module:
    """Build the network; timm baselines get `in_chans` and `num_classes` from the skeleton."""
    if isinstance(architecture, str):
        if "?" in architecture:
            raise ModelError(f"build {architecture!r} with build_candidate, which applies options")
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
    return with_head(model, skeleton)
