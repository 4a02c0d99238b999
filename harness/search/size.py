"""How big a space is, and how cheap and dear its networks are, without enumerating it.

Size: with the stage cut fixed by the skeleton, a space's canonical forms are
exactly its per-position letter strings, so its encoding counts them
(len(letters) ** positions, 2n splits, n! / (n_R! n_I!) orders of fixed counts);
a choices space resolves each choice and counts distinct canonical forms ("RI"
and "R*8 I*8" are one network).

FLOPs and parameters: every block position's cost depends only on its letter,
its stage width and its input (the previous stage's width for a stage's first
block, whatever letter came before), so a network's cost is stem + head + the
sum over positions. Building one all-R and one all-I network per skeleton and
reading fvcore's per-module counts gives every position's cost; the encoding
picks the cheapest and dearest member from those (the cheaper letter at each
position; the best split; an assignment for fixed counts).
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.search.space import SearchSpace, canonical_of, skeleton_value

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
    architectures = space.encoding.size()
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
    # Parameter counts of the smallest and largest networks (not the FLOPs extremes').
    params_low: int = 0
    params_high: int = 0
    params_low_arch: str = ""
    params_high_arch: str = ""


def _extremes(choices: tuple[Any, ...]) -> tuple[Any, ...]:
    """Numeric choices (width multiplier, expansion ratio, stem width) only at their ends:
    every conv grows with them, so the FLOPs extremes sit there."""
    numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices)
    return tuple(sorted({min(choices), max(choices)})) if numeric else choices


def _skeleton_combos(
    space: SearchSpace, budget_skeleton: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every combination of searched skeleton values and block parameters, over the
    space's skeleton with a budget's own fields (its stem) as training sets them."""
    params = [p for p in space.params if p.target in ("skeleton", "block_params") and p.choices]
    combos = list(itertools.product(*(_extremes(p.choices) for p in params))) or [()]
    if len(combos) > _MAX_SKELETON_COMBOS:
        step = len(combos) / _MAX_SKELETON_COMBOS
        combos = [combos[math.floor(i * step)] for i in range(_MAX_SKELETON_COMBOS)] + [combos[-1]]
    out = []
    for combo in combos:
        fixed = {**space.skeleton, **(budget_skeleton or {})}
        skeleton = {**fixed, "block_params": dict(fixed.get("block_params", {}))}
        for param, value in zip(params, combo, strict=True):
            if param.target == "skeleton":
                skeleton[param.key] = skeleton_value(param.key, value)
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
    budget_skeleton: Mapping[str, Any] | None = None,
) -> FlopsRange:
    """The cheapest and dearest networks of the space (fvcore forward MACs per image),
    and the smallest and largest by parameter count; at a budget, with its skeleton
    fields (`Budget.skeleton`)."""
    combos = _skeleton_combos(space, budget_skeleton)
    found: dict[str, list[tuple[int, str]]] = {"flops": [], "params": []}
    with warnings.catch_warnings():
        # fvcore traces with torch.jit, which torch 2.x marks deprecated on every call.
        warnings.simplefilter("ignore", FutureWarning)
        for skeleton in combos:
            if space.kind == "choices":
                measured = _choice_costs(space, skeleton, input_shape, num_classes)
            else:
                measured = _position_extremes(space, skeleton, input_shape, num_classes)
            for metric, candidates in measured.items():
                found[metric].extend(candidates)
    flops, params = found["flops"], found["params"]
    low, high = min(flops), max(flops)
    small, large = min(params), max(params)
    sampled = len(combos) > _MAX_SKELETON_COMBOS
    return FlopsRange(
        low[0],
        high[0],
        low[1],
        high[1],
        input_shape,
        sampled,
        params_low=small[0],
        params_high=large[0],
        params_low_arch=small[1],
        params_high_arch=large[1],
    )


def _choice_costs(
    space: SearchSpace,
    skeleton: dict[str, Any],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> dict[str, list[tuple[int, str]]]:
    from harness.candidate import build_candidate
    from harness.measure import count_flops, count_params

    out: dict[str, list[tuple[int, str]]] = {"flops": [], "params": []}
    for text in space.choices:
        candidate = build_candidate(
            text, image_shape=input_shape, num_classes=num_classes, skeleton=skeleton
        )
        arch = canonical_of(space, text)
        out["flops"].append((count_flops(candidate.model, candidate.input_shape), arch))
        out["params"].append((count_params(candidate.model), arch))
    return out


def _position_extremes(
    space: SearchSpace,
    skeleton: dict[str, Any],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> dict[str, list[tuple[int, str]]]:
    """metric -> [(cost, arch)] of the cheapest and the dearest member, from one net per letter."""
    costs: dict[str, dict[str, list[int]]] = {"flops": {}, "params": {}}
    fixed: dict[str, int] = {}
    for letter in space.letters:
        arch = "|".join(letter * depth for depth in space.depths)
        measured = _per_position_costs(arch, skeleton, input_shape, num_classes)
        for metric, (total, per_position) in measured.items():
            costs[metric][letter] = per_position
            fixed[metric] = total - sum(per_position)  # stem and head: the same for every letter
    out = {}
    for metric, by_letter in costs.items():
        out[metric] = [
            (
                fixed[metric] + sum(by_letter[letter][i] for i, letter in enumerate(flat)),
                _staged(flat, space.depths),
            )
            for flat in space.encoding.extremes(by_letter)
        ]
    return out


def _staged(flat: str, depths: tuple[int, ...]) -> str:
    out, start = [], 0
    for depth in depths:
        out.append(flat[start : start + depth])
        start += depth
    return "|".join(out)


def _per_position_costs(
    arch: str, skeleton: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int
) -> dict[str, tuple[int, list[int]]]:
    """Total forward MACs and parameters, and each block's own (fvcore's per-module counts)."""
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
    names = [
        f"stages.{s}.{b}" for s, depth in enumerate(space_depths(skeleton)) for b in range(depth)
    ]
    flops = [int(by_module.get(name, 0)) for name in names]
    params = [sum(p.numel() for p in model.get_submodule(name).parameters()) for name in names]
    total_params = sum(p.numel() for p in model.parameters())
    return {"flops": (int(analysis.total()), flops), "params": (total_params, params)}


def space_depths(skeleton: dict[str, Any]) -> tuple[int, ...]:
    return tuple(skeleton.get("depths", (3, 4, 6, 3)))
