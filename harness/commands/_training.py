"""Flags for every training setting, generated from `TrainConfig`, shared by
`train`, `baselines` and `run`, so that no hyperparameter lacks a flag."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from harness.commands._common import add_skeleton_args, skeleton_overrides

# Settings that are not flags here: the positional ARCH, the skeleton (its own
# flag group), and the free-text note. `data`, `protocol`, `device` and
# `threads` get hand-written flags because they come first in --help.
_NOT_FLAGS = {"arch", "skeleton", "description", "data", "protocol", "device", "threads"}

_HELP: dict[str, str] = {
    "epochs": "training epochs",
    "batch_size": "training batch size (CPU; also CUDA unless --batch-size-cuda)",
    "batch_size_cuda": "training batch size on CUDA",
    "eval_batch_size": "batch size for validation and test",
    "optimizer": "optimiser",
    "lr": "learning rate (peak rate for one-cycle)",
    "beta1": "Adam/AdamW beta1",
    "beta2": "Adam/AdamW beta2",
    "momentum": "SGD momentum",
    "weight_decay": "weight decay",
    "schedule": "learning-rate schedule",
    "label_smoothing": "label smoothing",
    "crop_padding": "random-crop padding in pixels (0: no crop)",
    "flip": "random horizontal flips",
    "rotate_deg": "maximum random rotation in degrees (0: none)",
    "seed": "random seed (python, numpy, torch, batch order, augmentation)",
    "precision": "auto: bf16/fp16 mixed precision on CUDA, fp32 on the CPU",
    "channels_last": "channels_last memory format",
    "compile": "torch.compile the model",
    "resize": "upsample inputs to NxN on the device (timm baselines at 48x48)",
    "baseline_stem": "timm baselines: auto (small below 96 px), timm (unchanged), small "
    "(first 4x of downsampling removed)",
    "pretrained": "start from this local checkpoint (loaded with weights_only=True)",
    "patience": "stop after N epochs without a better validation accuracy",
    "max_batches": "at most N training batches per epoch (quick runs)",
}


def add_training_args(parser: argparse.ArgumentParser, *, skeleton: bool = True) -> None:
    from harness.config import CHOICES, TrainConfig

    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="dataset: synthetic (default), fer2013:PATH, ferplus:DIR, ckplus:DIR, folder:DIR",
    )
    parser.add_argument(
        "--protocol", default=None, help="training protocol: fast (default) or paper"
    )
    parser.add_argument(
        "--device", default=None, help="auto (CUDA when present, the default), cpu, cuda, cuda:N"
    )
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all)")
    group = parser.add_argument_group(
        "training settings", "each overrides the protocol's value (see `harness train --help`)"
    )
    for field in dataclasses.fields(TrainConfig):
        if field.name in _NOT_FLAGS:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = str(field.type)
        help_text = _HELP.get(field.name, field.name.replace("_", " "))
        if kind == "bool":
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
            continue
        convert: Any = int if kind.startswith("int") else float if kind == "float" else str
        metavar = None if field.name in CHOICES else "N" if convert is not str else "VALUE"
        group.add_argument(
            flag,
            type=convert,
            choices=CHOICES.get(field.name),
            metavar=metavar,
            default=None,
            help=help_text,
        )
    if skeleton:
        add_skeleton_args(parser)


def training_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given on the command line (None: not given)."""
    from harness.config import TrainConfig

    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(TrainConfig)
        if field.name not in {"arch", "skeleton", "description"}
        and getattr(args, field.name, None) is not None
    }
    if getattr(args, "input", None) is not None or getattr(args, "classes", None) is not None:
        from harness.errors import ConfigError

        raise ConfigError("--input and --classes come from the data when training; use --resize")
    if hasattr(args, "width_mult"):
        skeleton = skeleton_overrides(args)
        if skeleton:
            overrides["skeleton"] = skeleton
    return overrides


def config_from_args(args: argparse.Namespace, arch: str, **extra: Any):
    """The protocol (default `fast`), then the flags, then `extra`."""
    from harness.config import TrainConfig

    overrides = training_overrides(args)
    protocol = overrides.pop("protocol", None) or "fast"
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return TrainConfig.from_protocol(protocol, arch=arch, **overrides)
