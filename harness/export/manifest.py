"""config.json: everything someone handed an export folder needs to use, trust and trace it.

The network (arch, family, skeleton, how timm builds it), its classes, its input
(shape, grayscale, resize, value range, mean/std), its training settings as recorded,
its measured accuracies (recorded and re-evaluated), the trial it came from, the
environment of the trial and of the export, every file with its SHA-256, and what
each check found.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from harness.export.bundle import FORMAT, FORMAT_VERSION
from harness.export.network import TIMM_NAME, timm_kwargs
from harness.weights import file_sha256

__all__ = ["export_environment", "file_entries", "manifest"]


def manifest(
    trial: dict[str, Any],
    *,
    classes: list[str],
    skeleton: dict[str, Any],
    baseline_stem: str | None,
    is_baseline: bool,
    input_spec: dict[str, Any],
    output: str,
) -> dict[str, Any]:
    """config.json without `files`, `accuracy` and `checks` (the export adds them once
    they are known); enough for `build_network` to rebuild the network."""
    recorded = dict(trial.get("config") or {})
    timm = None
    if not is_baseline:
        timm = {"model_name": TIMM_NAME, "kwargs": timm_kwargs(skeleton, len(classes))}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": {
            "arch": trial["arch"],
            "family": trial.get("family"),
            "kind": trial.get("kind"),
            "skeleton": skeleton,
            "baseline_stem": baseline_stem,
            "params": trial.get("params"),
            "flops": trial.get("flops"),
            # timm.create_model(model_name, arch=arch, **kwargs, pretrained=True,
            #   pretrained_cfg_overlay=dict(file="model.safetensors")); None for a timm
            # baseline, whose harness stem and head timm does not build.
            "timm": timm,
        },
        "classes": list(classes),
        "input": input_spec,
        "output": {
            "logits": "model output, N x classes",
            "activation": output,
            "probabilities": "softmax"
            if output != "sigmoid"
            else "sigmoid, divided by the sum over classes",
        },
        "training": recorded,
        "trial": {
            "id": trial["id"],
            "study": trial.get("study"),
            "optuna_trial_number": trial.get("optuna_trial_number"),
            "seed": trial.get("seed"),
            "protocol": trial.get("protocol"),
            "best_epoch": trial.get("best_epoch"),
            "data_spec": trial.get("data_spec"),
            "data_fingerprint": trial.get("data_fingerprint"),
            "label_mode": trial.get("label_mode"),
            "device": trial.get("device"),
            "finished_at": _iso(trial.get("finished_at")),
        },
    }


def export_environment(trial: dict[str, Any]) -> dict[str, Any]:
    """Where the trial ran (as recorded) and where it was exported. The host name is
    left out: the folder is meant to be handed over."""
    import importlib.metadata

    from harness.measure import environment

    exported = environment("cpu")
    for name in ("onnx", "onnxruntime", "onnxscript", "safetensors"):
        try:
            exported[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            exported[name] = None
    recorded = dict(trial.get("environment") or {})
    for env in (exported, recorded):
        env.pop("hostname", None)
    return {"trial": recorded, "export": exported}


def file_entries(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    return {
        name: {"sha256": file_sha256(folder / name), "bytes": (folder / name).stat().st_size}
        for name in names
    }


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return None if value is None else str(value)
