"""`harness describe`: build one architecture and report its shape and cost.

The network comes from `build_candidate`, as a trial builds it: a timm
baseline gets the stem, head and resize training would give it, so the FLOPs
printed here are the FLOPs a trial records.
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from harness.measure import (
    FLOPS_LABEL,
    count_flops,
    count_params,
    environment,
    measure_latency,
    resolve_device,
)
from harness.models import Skeleton

# How a timm baseline's stem was left or changed, for the table.
_STEM_NOTES = {"timm": "timm's own", "small": "first 4x of downsampling removed"}

__all__ = ["describe", "format_description"]


def describe(
    text: str,
    skeleton: Skeleton,
    *,
    baseline_stem: str | None = None,
    resize: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    batches: tuple[int, ...] = (1, 64),
    latency: bool = True,
    max_seconds: float = 1.5,
) -> dict[str, Any]:
    """Everything `describe` prints, as plain data.

    `skeleton.input_shape` is the data's; `baseline_stem` and `resize` are
    training's settings of the same names (None: training's default).
    """
    from harness.candidate import build_candidate
    from harness.config import DEFAULT_BASELINE_STEM

    started = time.perf_counter()
    torch_device = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    candidate = build_candidate(
        text,
        image_shape=skeleton.input_shape,
        num_classes=skeleton.num_classes,
        skeleton=skeleton.to_dict(),
        resize=resize,
        baseline_stem=baseline_stem or DEFAULT_BASELINE_STEM,
    )
    architecture, model, built = candidate.architecture, candidate.model, candidate.skeleton
    params = count_params(model)
    flops = count_flops(model, candidate.input_shape)
    result: dict[str, Any] = {
        "input": text,
        "architecture": architecture.name,
        "kind": architecture.kind,
        "family": architecture.family,
        "blocks": architecture.counts(),
        "input_shape": list(skeleton.input_shape),
        "model_input_shape": list(candidate.input_shape),
        "resize": candidate.resize,
        "num_classes": skeleton.num_classes,
        "stem": candidate.baseline_stem or built.resolved_stem,
        "head": built.head,
        "head_activation": built.head_activation if built.head == "paper" else None,
        "output": built.output,
        "pretrained": candidate.pretrained,
        "stages": [
            {
                "stage": s.index,
                "blocks": s.blocks,
                "width": s.width,
                "stride": s.stride,
                "output": list(s.out_hw),
            }
            for s in architecture.stages
        ],
        "narrowest_conv": narrowest_convs(model),
        "min_channels": built.min_channels,
        "params": params,
        "flops": flops,
        "flops_unit": FLOPS_LABEL,
        "latency": [],
    }
    if latency:
        for batch in batches:
            measured = measure_latency(
                model,
                candidate.input_shape,
                batch=batch,
                device=torch_device,
                threads=threads,
                max_seconds=max_seconds,
            )
            result["latency"].append(measured.to_dict())
    result["environment"] = environment(torch_device)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def narrowest_convs(model: torch.nn.Module) -> dict[str, int]:
    """The fewest output channels of any conv of the stem and of each block kind of one of
    our networks (harness.blocks.narrowest_conv); {} for a timm baseline."""
    from harness.blocks import narrowest_conv
    from harness.models import BlockSequenceNet

    if not isinstance(model, BlockSequenceNet):
        return {}
    found: dict[str, int] = {}
    stem = narrowest_conv(model.stem)
    if stem is not None:
        found["stem"] = stem
    for stage, layout in zip(model.stages, model.architecture.stages, strict=True):
        for block, letter in zip(stage, layout.blocks, strict=True):
            width = narrowest_conv(block)
            if width is not None:
                found[letter] = min(width, found.get(letter, width))
    return found


def format_description(info: dict[str, Any]) -> str:
    lines = [
        f"architecture  {info['architecture']}"
        + (f"   (from {info['input']!r})" if info["input"] != info["architecture"] else ""),
        f"family        {info['family']}",
    ]
    if info["blocks"]:
        lines.append("blocks        " + ", ".join(f"{k}: {v}" for k, v in info["blocks"].items()))
    shape = "x".join(str(s) for s in info["input_shape"])
    if info.get("resize"):
        shape += " upsampled to " + "x".join(str(s) for s in info["model_input_shape"])
    lines.append(f"input         {shape} -> {info['num_classes']} classes, {info['output']}")
    stem = info["stem"]
    if info["kind"] == "baseline":
        stem += f" ({_STEM_NOTES.get(stem, stem)})"
    head = info["head"]
    if info.get("head_activation"):
        head += f" (hidden activation {info['head_activation']})"
    elif info["kind"] == "baseline" and head == "linear":
        head += " (timm's classifier)"
    lines.append(f"stem, head    {stem}; {head}")
    if info.get("pretrained"):
        lines.append(f"weights       {info['pretrained']}")
    if info["stages"]:
        lines.append("stages        stage  width  stride  output  blocks")
        for s in info["stages"]:
            out = "x".join(str(v) for v in s["output"])
            lines.append(
                f"              {s['stage']:>5}  {s['width']:>5}  {s['stride']:>6}  {out:>6}  {s['blocks']}"
            )
    if info.get("narrowest_conv"):
        narrowest = ", ".join(f"{k} {v}" for k, v in info["narrowest_conv"].items())
        lines.append(f"narrowest     conv channels: {narrowest} (floor {info['min_channels']})")
    lines.append(f"parameters    {info['params']:,} ({info['params'] / 1e6:.2f} M)")
    lines.append(f"FLOPs         {info['flops'] / 1e9:.3f} G per image   [{info['flops_unit']}]")
    if info["latency"]:
        first = info["latency"][0]
        lines.append(
            f"latency       on {first['device']}, {first['threads']} threads, inference, channels_last"
        )
        lines.append("              batch  median ms    p90 ms    min ms    max ms  images/s  runs")
        for lat in info["latency"]:
            flag = "  (wide spread: machine busy?)" if lat["wide_spread"] else ""
            lines.append(
                f"              {lat['batch']:>5}  {lat['median_ms']:>9.2f} {lat['p90_ms']:>9.2f} "
                f"{lat['min_ms']:>9.2f} {lat['max_ms']:>9.2f} {lat['images_per_s']:>9.0f} {lat['repeats']:>5}{flag}"
            )
    if info.get("budget"):
        budget = info["budget"]
        settings = ", ".join(f"{k} {v}" for k, v in budget.items() if k not in ("name", "data"))
        lines.append(f"budget        {budget['name']}: data {budget['data']}; {settings}")
    env = info["environment"]
    lines.append(
        f"environment   harness {env['harness']} ({env['commit'] or 'no git'}), torch {env['torch']}, "
        f"timm {env['timm']}, {env['device']}"
    )
    return "\n".join(lines)


def to_json(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2, sort_keys=False)
