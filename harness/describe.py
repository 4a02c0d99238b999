"""`harness describe`: build one architecture and report its shape and cost."""

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
from harness.models import Skeleton, build_model, resolve_architecture

__all__ = ["describe", "format_description"]


def describe(
    text: str,
    skeleton: Skeleton,
    *,
    device: str = "auto",
    threads: int | None = None,
    batches: tuple[int, ...] = (1, 64),
    latency: bool = True,
    max_seconds: float = 1.5,
) -> dict[str, Any]:
    """Everything `describe` prints, as plain data."""
    started = time.perf_counter()
    torch_device = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    architecture = resolve_architecture(text, skeleton)
    model = build_model(architecture, skeleton)
    params = count_params(model)
    flops = count_flops(model, skeleton.input_shape)
    result: dict[str, Any] = {
        "input": text,
        "architecture": architecture.name,
        "kind": architecture.kind,
        "family": architecture.family,
        "blocks": architecture.counts(),
        "input_shape": list(skeleton.input_shape),
        "num_classes": skeleton.num_classes,
        "stem": skeleton.resolved_stem if not architecture.is_baseline else "timm",
        "head": skeleton.head if not architecture.is_baseline else "timm",
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
        "params": params,
        "flops": flops,
        "flops_unit": FLOPS_LABEL,
        "latency": [],
    }
    if latency:
        for batch in batches:
            measured = measure_latency(
                model,
                skeleton.input_shape,
                batch=batch,
                device=torch_device,
                threads=threads,
                max_seconds=max_seconds,
            )
            result["latency"].append(measured.to_dict())
    result["environment"] = environment(torch_device)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def format_description(info: dict[str, Any]) -> str:
    lines = [
        f"architecture  {info['architecture']}"
        + (f"   (from {info['input']!r})" if info["input"] != info["architecture"] else ""),
        f"family        {info['family']}",
    ]
    if info["blocks"]:
        lines.append("blocks        " + ", ".join(f"{k}: {v}" for k, v in info["blocks"].items()))
    shape = "x".join(str(s) for s in info["input_shape"])
    lines.append(
        f"input         {shape} -> {info['num_classes']} classes (stem {info['stem']}, head {info['head']})"
    )
    if info["stages"]:
        lines.append("stages        stage  width  stride  output  blocks")
        for s in info["stages"]:
            out = "x".join(str(v) for v in s["output"])
            lines.append(
                f"              {s['stage']:>5}  {s['width']:>5}  {s['stride']:>6}  {out:>6}  {s['blocks']}"
            )
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
    env = info["environment"]
    lines.append(
        f"environment   harness {env['harness']} ({env['commit'] or 'no git'}), torch {env['torch']}, "
        f"timm {env['timm']}, {env['device']}"
    )
    return "\n".join(lines)


def to_json(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2, sort_keys=False)
