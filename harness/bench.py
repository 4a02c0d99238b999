"""`harness bench`: parameters, FLOPs and inference latency of many architectures, no training.

Models are built with `build_candidate`, as training builds them, so a timm
baseline gets the same stem, head and resize here as in a trial. Results
are flat records, as timm's benchmark.py writes them: one per architecture and
batch size, with the environment beside them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from harness.errors import ConfigError
from harness.search.members import ArchSet, merge_skeleton, space_set
from harness.tables import DASH, csv_text, render_markdown, render_table

__all__ = ["FORMATS", "bench", "bench_set", "flat_records", "format_results"]

FORMATS = ("table", "csv", "json", "md")


def bench_set(
    archs: Sequence[str], space: str | None, skeleton: dict[str, Any] | None = None
) -> ArchSet:
    """The space's architectures (if any) then `archs`; `skeleton` overrides both."""
    if not archs and not space:
        raise ConfigError("name architectures to bench (e.g. 'R*8 I*8' timm:resnet50) or --space")
    base = space_set(space) if space else ArchSet((), {}, "command line")
    return ArchSet(
        (*base.archs, *archs), merge_skeleton(base.skeleton, skeleton or {}), base.source
    )


def bench(
    chosen: ArchSet,
    *,
    input_shape: tuple[int, int, int] = (1, 48, 48),
    num_classes: int = 7,
    device: str = "auto",
    threads: int | None = None,
    batches: Sequence[int] = (1, 64),
    latency: bool = True,
    repeats: int = 20,
    max_seconds: float = 1.5,
    baseline_stem: str | None = None,
    resize: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Measure every architecture; all are resolved first so a typo fails before any timing.
    `progress` shows a bar per network on stderr (a space's timm baselines take seconds).

    `baseline_stem` and `resize` are training's settings of the same names
    (None: training's default); a baseline's own options (`?stem=small`) win.
    """
    import torch

    from harness.candidate import build_candidate
    from harness.config import DEFAULT_BASELINE_STEM, split_arch
    from harness.measure import (
        FLOPS_LABEL,
        count_flops,
        count_params,
        environment,
        measure_latency,
        resolve_device,
    )
    from harness.models import Skeleton, resolve_architecture

    torch_device = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    skeleton = Skeleton.from_dict(
        {**chosen.skeleton, "input_shape": input_shape, "num_classes": num_classes}
    )
    # The network -> its first spelling. A baseline's options make another network
    # (timm:resnet50?stem=small), so the settings they set are part of the key.
    baseline_stem = baseline_stem or DEFAULT_BASELINE_STEM
    defaults = {"baseline_stem": baseline_stem, "resize": resize, "head": skeleton.head}
    names: dict[str, str] = {}
    for text in chosen.archs:
        name, options = split_arch(text)
        key = repr(
            (resolve_architecture(name, skeleton).name, sorted({**defaults, **options}.items()))
        )
        names.setdefault(key, text)

    import sys

    from tqdm.auto import tqdm

    results = []
    bar = tqdm(
        list(names.values()), desc="bench", unit="net", disable=not progress, file=sys.stderr,
        leave=False, dynamic_ncols=True,
    )  # fmt: skip
    for text in bar:
        bar.set_postfix_str(text)
        candidate = build_candidate(
            text,
            image_shape=input_shape,
            num_classes=num_classes,
            skeleton=chosen.skeleton,
            baseline_stem=baseline_stem,
            resize=resize,
        )
        canonical = candidate.architecture.name
        model = candidate.model
        # The network's own input: the data's, or the resize it upsamples to.
        model_shape = candidate.input_shape
        flops = count_flops(model, model_shape)
        timings = []
        if latency:
            for batch in batches:
                measured = measure_latency(
                    model,
                    model_shape,
                    batch=batch,
                    device=torch_device,
                    threads=threads,
                    repeats=repeats,
                    min_repeats=min(5, repeats),
                    max_seconds=max_seconds,
                )
                timings.append(measured.to_dict())
        results.append(
            {
                "arch": canonical,
                "input": text,
                "kind": candidate.architecture.kind,
                "family": candidate.architecture.family,
                "stem": candidate.baseline_stem or candidate.skeleton.resolved_stem,
                "head": candidate.skeleton.head,
                "resize": candidate.resize,
                "params": count_params(model),
                "flops": flops,
                "latency": timings,
            }
        )
        del model, candidate
        if torch_device.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "source": chosen.source,
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "device": str(torch_device),
        "flops_unit": FLOPS_LABEL,
        "results": results,
        "environment": environment(torch_device),
    }


def flat_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per architecture and batch size (one per architecture without latency)."""
    records = []
    for row in report["results"]:
        base = {k: row[k] for k in ("arch", "family", "stem", "head", "resize", "params", "flops")}
        base["input_shape"] = "x".join(str(s) for s in report["input_shape"])
        if not row["latency"]:
            records.append(base)
        for lat in row["latency"]:
            records.append(
                {
                    **base,
                    "batch": lat["batch"],
                    "median_ms": lat["median_ms"],
                    "p90_ms": lat["p90_ms"],
                    "images_per_s": lat["images_per_s"],
                    "repeats": lat["repeats"],
                    "wide_spread": lat["wide_spread"],
                    "device": lat["device"],
                    "threads": lat["threads"],
                }
            )
    return records


def format_results(report: dict[str, Any], fmt: str = "table") -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "json":
        return json.dumps(report, indent=2)
    if fmt == "csv":
        return _csv(flat_records(report))
    headers, rows = _display_rows(report)
    if fmt == "md":
        return render_markdown(headers, rows, right=_right(headers))
    env = report["environment"]
    shape = "x".join(str(s) for s in report["input_shape"])
    timed = any(row["latency"] for row in report["results"])
    where = env.get("device", report["device"])
    header = (
        f"{report['source']}: input {shape}, {report['num_classes']} classes; "
        f"FLOPs per image [{report['flops_unit']}]"
        + (f"; inference latency on {where}, {env['threads']} threads" if timed else "")
    )
    lines = [header, render_table(headers, rows, right=_right(headers))]
    if any(lat["wide_spread"] for row in report["results"] for lat in row["latency"]):
        lines.append("* max > 1.5 x median: the machine was busy while timing")
    return "\n".join(lines)


def _display_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["arch", "family", "stem", "head", "params", "GFLOPs"]
    timed = any(row["latency"] for row in report["results"])
    if timed:
        headers += ["batch", "median ms", "p90 ms", "images/s"]
    rows = []
    for row in report["results"]:
        # A resized baseline's stem sees the upsampled image: say so where the stem is named.
        stem = row["stem"] + (f" @{row['resize']}px" if row.get("resize") else "")
        first = [row["arch"], row["family"], stem, row["head"], f"{row['params']:,}"]
        first.append(f"{row['flops'] / 1e9:.4g}")
        if not timed:
            rows.append(first)
            continue
        for index, lat in enumerate(row["latency"] or [None]):
            # Repeat the model's columns only on its first line, as a grouped table reads.
            cells = first if index == 0 else [""] * len(first)
            if lat is None:
                rows.append(cells + [DASH] * 4)
                continue
            flag = "*" if lat["wide_spread"] else ""
            rows.append(
                cells
                + [
                    str(lat["batch"]),
                    f"{lat['median_ms']:.2f}{flag}",
                    f"{lat['p90_ms']:.2f}",
                    f"{lat['images_per_s']:,.0f}",
                ]
            )
    return headers, rows


# Columns shown left-aligned; every other column holds numbers and is right-aligned.
_TEXT_COLUMNS = {"arch", "family", "stem", "head"}


def _right(headers: list[str]) -> list[bool]:
    return [h not in _TEXT_COLUMNS for h in headers]


def _csv(records: list[dict[str, Any]]) -> str:
    import pandas as pd

    if not records:
        return ""
    fields = list(dict.fromkeys(key for record in records for key in record))
    # Values as given: a column of ints with a gap must not print as floats (1.0).
    cells = [[record.get(key) for key in fields] for record in records]
    return csv_text(pd.DataFrame(cells, columns=fields, dtype=object)).rstrip("\n")
