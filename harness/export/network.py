"""The network of an export folder, rebuilt from its config.json alone (no database, no data).

    model = load_model("exports/demo-trial-12")      # eval mode, weights loaded and checked

Our block sequences are rebuilt from the grammar string and skeleton, timm baselines
from their name, stem and head, exactly as the harness built them for training
(`harness.candidate.build_candidate`); the weights file must fit that network tensor
for tensor (`harness.weights.load_into`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.export.bundle import Bundle, read_bundle
from harness.weights import WEIGHTS_FILE, load_into, load_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.candidate import Candidate

__all__ = ["build_network", "load_model", "probabilities", "timm_kwargs", "timm_line"]

TIMM_NAME = "harness_blockseq"


def build_network(config: dict[str, Any]) -> Candidate:
    """The untrained network config.json describes (random weights)."""
    from harness.candidate import build_candidate
    from harness.config import DEFAULT_BASELINE_STEM

    architecture, spec = config["architecture"], config["input"]
    channels = int(spec["shape"][0])
    height, width = (int(v) for v in spec["image_size"])
    return build_candidate(
        architecture["arch"],
        image_shape=(channels, height, width),
        num_classes=len(config["classes"]),
        skeleton=architecture["skeleton"],
        resize=spec.get("resize"),
        baseline_stem=architecture.get("baseline_stem") or DEFAULT_BASELINE_STEM,
        pretrained=None,  # the exported weights replace whatever it started from
    )


def load_model(folder: str | Path | Bundle) -> nn.Module:
    """The exported network with its weights, in eval mode, on the CPU."""
    bundle = folder if isinstance(folder, Bundle) else read_bundle(folder)
    path = bundle.path(WEIGHTS_FILE)
    state, _ = load_weights(path, sha256=bundle.config["files"][WEIGHTS_FILE]["sha256"])
    model = build_network(bundle.config).model
    load_into(model, state, source=f"in {path}")
    return model.eval()


def probabilities(logits: torch.Tensor, output: str) -> torch.Tensor:
    """Class probabilities from logits: softmax, or for a sigmoid output (the paper's
    head) the sigmoids divided by their sum, as its Keras-style loss reads them."""
    import torch

    if output == "sigmoid":
        p = torch.sigmoid(logits)
        return p / p.sum(-1, keepdim=True).clamp_min(1e-12)
    return logits.softmax(-1)


def timm_kwargs(skeleton: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """`timm.create_model("harness_blockseq", **kwargs)`'s arguments for this skeleton."""
    fields = dict(skeleton)
    channels, *size = fields.pop("input_shape")
    fields.pop("num_classes", None)
    kwargs: dict[str, Any] = {"in_chans": int(channels), "img_size": tuple(int(v) for v in size)}
    kwargs["num_classes"] = num_classes
    for key, value in fields.items():
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return kwargs


def timm_line(config: dict[str, Any], file: str) -> str | None:
    """The Python line that loads this export through timm, or None for a timm baseline
    (its harness stem and head are not timm's: use `load_model`)."""
    timm = config["architecture"].get("timm")
    if not timm:
        return None
    args = ", ".join(f"{k}={v!r}" for k, v in timm["kwargs"].items())
    spec = config["input"]
    overlay = f"dict(file={file!r}, mean={tuple(spec['mean'])!r}, std={tuple(spec['std'])!r})"
    return (
        f"import timm, harness.timm_model; model = timm.create_model({timm['model_name']!r}, "
        f"arch={config['architecture']['arch']!r}, {args}, pretrained=True, "
        f"pretrained_cfg_overlay={overlay})"
    )


def create_timm_model(config: dict[str, Any], file: str | Path) -> nn.Module:
    """What `timm_line` does: the export loaded by timm's own `create_model`."""
    import timm

    import harness.timm_model  # noqa: F401  (registers harness_blockseq)

    recipe = config["architecture"]["timm"]
    spec = config["input"]
    return timm.create_model(
        recipe["model_name"],
        arch=config["architecture"]["arch"],
        pretrained=True,
        pretrained_cfg_overlay=dict(
            file=str(file), mean=tuple(spec["mean"]), std=tuple(spec["std"])
        ),
        **recipe["kwargs"],
    ).eval()
