"""How big a space is, and how cheap and dear its networks are, without enumerating it.

Size: with the stage cut fixed by the skeleton, a positions space's canonical
forms are exactly its per-position letter strings, so there are
len(letters) ** positions of them; a choices space resolves each choice and
counts distinct canonical forms ("RI" and "R*8 I*8" are one network).

FLOPs: every block position's cost depends only on its letter, its stage width
and its input (the previous stage's width for a stage's first block, whatever
letter came before), so a network's FLOPs are stem + head + the sum over
positions. Building one all-R and one all-I network per skeleton and reading
fvcore's per-module counts gives every position's cost; the cheapest and dearest
networks pick the cheaper or dearer letter at each position.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

from harness.search.space import SearchSpace, _skeleton_value, canonical_of

__all__ = ["FlopsRange", "flops_range", "space_size"]

# A FLOPs range over more skeleton combinations than this samples them evenly.
_MAX_SKELETON_COMBOS = 64


@dataclass(frozen=True)
class SpaceSize:
    architectures: int  # distinct canonical architectures (and baselines)
    settings: int | None  # combinations of the other categorical parameters; None if continuous

    @property
    def total(self) -> int | None:
        return None if self.settings is None else self.architectures * self.settings

    def describe(self) -> str:
        text = f"{self.architectures:,} distinct architectures"
        if self.settings is None:
            return text + " x continuous settings"
        if self.settings > 1:
            return text + f" x {self.settings:,} settings = {self.total:,} configurations"
        return text


def space_size(space: SearchSpace) -> SpaceSize:
    if space.kind == "positions":
        architectures = len(space.letters) ** space.n_positions
    else:
        architectures = len({canonical_of(space, text) for text in space.choices})
    settings: int | None = 1
    for param in space.params:
        if param.choices is None:
            if param.is_int and param.step is None and not param.log:
                settings = (
                    None if settings is None else settings * (int(param.high) - int(param.low) + 1)
                )
            elif param.is_int and param.step:
                count = (int(param.high) - int(param.low)) // int(param.step) + 1
                settings = None if settings is None else settings * count
            else:
                settings = None
        elif settings is not None:
            settings *= len(param.choices)
    return SpaceSize(architectures, settings)


@dataclass(frozen=True)
class FlopsRange:
    low: int
    high: int
    low_arch: str
    high_arch: str
    input_shape: tuple[int, int, int]
    sampled: bool = False  # skeleton combinations were sampled, not all measured


def _extremes(choices: tuple[Any, ...]) -> tuple[Any, ...]:
    """Numeric choices (width multiplier, expansion ratio, stem width) only at their ends:
    every conv grows with them, so the FLOPs extremes sit there."""
    numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices)
    return tuple(sorted({min(choices), max(choices)})) if numeric else choices


def _skeleton_combos(space: SearchSpace) -> list[dict[str, Any]]:
    """Every combination of searched skeleton values and block parameters."""
    params = [p for p in space.params if p.target in ("skeleton", "block_params") and p.choices]
    combos = list(itertools.product(*(_extremes(p.choices) for p in params))) or [()]
    if len(combos) > _MAX_SKELETON_COMBOS:
        step = len(combos) / _MAX_SKELETON_COMBOS
        combos = [combos[math.floor(i * step)] for i in range(_MAX_SKELETON_COMBOS)] + [combos[-1]]
    out = []
    for combo in combos:
        skeleton = {**space.skeleton, "block_params": dict(space.skeleton.get("block_params", {}))}
        for param, value in zip(params, combo, strict=True):
            if param.target == "skeleton":
                skeleton[param.key] = _skeleton_value(param.key, value)
            else:
                letter_params = dict(skeleton["block_params"].get(param.letter, {}))
                letter_params[param.key] = value
                skeleton["block_params"][param.letter] = letter_params
        out.append(skeleton)
    return out


def flops_range(
    space: SearchSpace,
    *,
    input_shape: tuple[int, int, int] = (1, 48, 48),
    num_classes: int = 7,
    width_scale: float = 1.0,
) -> FlopsRange:
    """The cheapest and dearest networks of the space (fvcore forward MACs per image)."""
    combos = _skeleton_combos(space)
    with warnings.catch_warnings():
        # fvcore traces with torch.jit, which torch 2.x marks deprecated on every call.
        warnings.simplefilter("ignore", FutureWarning)
        low, high = _extremes_over(space, combos, input_shape, num_classes, width_scale)
    sampled = len(combos) > _MAX_SKELETON_COMBOS
    return FlopsRange(low[0], high[0], low[1], high[1], input_shape, sampled)


def _extremes_over(
    space: SearchSpace,
    combos: list[dict[str, Any]],
    input_shape: tuple[int, int, int],
    num_classes: int,
    width_scale: float,
) -> tuple[tuple[int, str], tuple[int, str]]:
    low: tuple[int, str] | None = None
    high: tuple[int, str] | None = None
    for skeleton in combos:
        skeleton = dict(skeleton)
        skeleton["width_mult"] = float(skeleton.get("width_mult", 1.0)) * width_scale
        if space.kind == "positions":
            candidates = _position_extremes(space, skeleton, input_shape, num_classes)
        else:
            candidates = [
                (_flops_of(text, skeleton, input_shape, num_classes), canonical_of(space, text))
                for text in space.choices
            ]
        for flops, arch in candidates:
            if low is None or flops < low[0]:
                low = (flops, arch)
            if high is None or flops > high[0]:
                high = (flops, arch)
    assert low is not None and high is not None  # a space has at least one architecture
    return low, high


def _flops_of(
    arch: str, skeleton: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int
) -> int:
    from harness.candidate import build_candidate
    from harness.measure import count_flops

    candidate = build_candidate(
        arch, image_shape=input_shape, num_classes=num_classes, skeleton=skeleton
    )
    return count_flops(candidate.model, candidate.input_shape)


def _position_extremes(
    space: SearchSpace,
    skeleton: dict[str, Any],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> list[tuple[int, str]]:
    """(FLOPs, arch) of the cheapest and the dearest letter string, from one net per letter."""
    costs: dict[str, list[int]] = {}
    fixed = 0
    for letter in space.letters:
        arch = "|".join(letter * depth for depth in space.depths)
        total, per_position = _per_position_flops(arch, skeleton, input_shape, num_classes)
        costs[letter] = per_position
        fixed = total - sum(per_position)  # stem and head: the same for every letter
    cheap = "".join(
        min(space.letters, key=lambda k, i=i: costs[k][i]) for i in range(space.n_positions)
    )
    dear = "".join(
        max(space.letters, key=lambda k, i=i: costs[k][i]) for i in range(space.n_positions)
    )

    def total_of(flat: str) -> int:
        return fixed + sum(costs[letter][i] for i, letter in enumerate(flat))

    return [
        (total_of(cheap), _staged(cheap, space.depths)),
        (total_of(dear), _staged(dear, space.depths)),
    ]


def _staged(flat: str, depths: tuple[int, ...]) -> str:
    out, start = [], 0
    for depth in depths:
        out.append(flat[start : start + depth])
        start += depth
    return "|".join(out)


def _per_position_flops(
    arch: str, skeleton: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int
) -> tuple[int, list[int]]:
    """Total forward MACs and each block's own, from fvcore's per-module counts."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    from harness.candidate import build_candidate

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    candidate = build_candidate(
        arch, image_shape=input_shape, num_classes=num_classes, skeleton=skeleton
    )
    model = candidate.model.eval()
    analysis = FlopCountAnalysis(model, torch.zeros((1, *candidate.input_shape)))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with torch.no_grad():
        by_module = analysis.by_module()
    per_position = [
        int(by_module.get(f"stages.{s}.{b}", 0))
        for s, depth in enumerate(space_depths(skeleton))
        for b in range(depth)
    ]
    return int(analysis.total()), per_position


def space_depths(skeleton: dict[str, Any]) -> tuple[int, ...]:
    return tuple(skeleton.get("depths", (3, 4, 6, 3)))
