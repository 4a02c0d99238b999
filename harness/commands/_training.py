"""Flags for every training setting, generated from `TrainConfig`, shared by
`train`, `baselines` and `run`, so that no hyperparameter lacks a flag."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

from harness.commands import argtypes
from harness.commands._common import add_skeleton_args, skeleton_overrides
from harness.config import SMOKE_RECIPE

if TYPE_CHECKING:
    from harness.config import TrainConfig
    from harness.data import Dataset

# Settings that are not flags here: the positional ARCH, the skeleton (its own
# flag group), and the free-text note. `data`, `protocol`, `device` and
# `threads` get hand-written flags because they come first in --help.
_NOT_FLAGS = {"arch", "skeleton", "description", "data", "protocol", "device", "threads"}

_HELP: dict[str, str] = {
    "epochs": "training epochs",
    "batch_size": "training batch size (CPU; also CUDA unless --batch-size-cuda)",
    "batch_size_cuda": "training batch size on CUDA",
    "crop_padding_mode": "what a random crop sees beyond the border: zeros, reflect (mirrored) "
    "or replicate (the edge pixel)",
    "eval_batch_size": "batch size for validation and test (default 128 on the CPU, 512 on CUDA)",
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
    "baseline_stem": "timm baselines: timm (their own stem, the default), small (first 4x of "
    "downsampling removed), auto (small below 96 px)",
    "output_loss": "loss of a sigmoid output: renormalised (Keras' categorical cross-entropy, "
    "the paper's) or bce",
    "pretrained": "start from this local checkpoint (loaded with weights_only=True)",
    "patience": "stop after N epochs without a better validation accuracy",
    "max_batches": "at most N training batches per epoch (quick runs)",
}


def add_training_args(parser: argparse.ArgumentParser, *, skeleton: bool = True) -> None:
    from harness.config import TRAIN_LIMITS, TrainConfig

    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="dataset: synthetic[?n=...], fer2013:PATH, ferplus:DIR, ckplus:DIR, folder:DIR "
        "(default: train/baselines the demo set in their description, run the budget's)",
    )
    parser.add_argument(
        "--protocol", default=None, help="training protocol: fast (default) or paper"
    )
    parser.add_argument(
        "--device",
        type=argtypes.device(),
        default=None,
        help="auto (CUDA when present, the default), cpu, cuda, cuda:N",
    )
    parser.add_argument(
        "--threads",
        type=argtypes.threads(),
        metavar="N",
        help=f"CPU threads, 1 to {argtypes.usable_cores()} here (default: all; more are refused)",
    )
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
        convert: Any = str
        limit = TRAIN_LIMITS.get(field.name)
        metavar = "VALUE"
        if limit is not None and limit.choices:
            convert = argtypes.Choice(flag, limit)
            metavar = convert.metavar
        elif limit is not None:
            convert, metavar = argtypes.Number(flag, limit), "N"
        group.add_argument(flag, type=convert, metavar=metavar, default=None, help=help_text)
    if skeleton:
        # Training takes the input shape and classes from the data: those flags are
        # refused with a hint (training_overrides) and left out of --help.
        add_skeleton_args(parser, data_shape=False)


def training_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given on the command line (None: not given)."""
    from harness.config import TrainConfig

    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(TrainConfig)
        if field.name not in {"arch", "skeleton", "description"}
        and getattr(args, field.name, None) is not None
    }
    if "batch_size" in overrides and "batch_size_cuda" not in overrides:
        # As --help says: --batch-size is the CUDA batch too unless --batch-size-cuda is
        # given (the protocol's CUDA batch would otherwise silently win on a GPU).
        overrides["batch_size_cuda"] = overrides["batch_size"]
    if getattr(args, "input", None) is not None or getattr(args, "classes", None) is not None:
        from harness.errors import ConfigError

        raise ConfigError("--input and --classes come from the data when training; use --resize")
    if hasattr(args, "width_mult"):
        skeleton = skeleton_overrides(args)
        if skeleton:
            overrides["skeleton"] = skeleton
    return overrides


def config_from_args(
    args: argparse.Namespace, arch: str, *, defaults: dict[str, Any] | None = None, **extra: Any
):
    """The protocol (default `fast`), then `defaults`, then the flags, then `extra`."""
    from harness.config import TrainConfig

    overrides = training_overrides(args)
    protocol = overrides.pop("protocol", None) or "fast"
    values = dict(defaults or {})
    skeleton = {**values.pop("skeleton", {}), **overrides.pop("skeleton", {})}
    values.update(overrides)
    values.update({k: v for k, v in extra.items() if v is not None})
    if skeleton:
        values["skeleton"] = skeleton
    return TrainConfig.from_protocol(protocol, arch=arch, **values)


# -- what `train` and `baselines` share beyond the flags ------------------------------------

# Without --data, `train` and `baselines` train on DEMO_DATA, small, mildly varied
# synthetic faces that a CPU learns within minutes. Without --protocol as well they
# also take DEMO_TRAINING: batch 32 (enough steps in a few epochs; on CUDA too, where
# the protocol's 512 would leave 4 steps an epoch), no random crops or rotations (the
# synthetic faces already vary in pose and position; with them a 3-epoch run stayed
# at chance) and a peak rate of 8e-3 (2e-3 left some seeds of a 3-epoch R*8 I*8 run
# near chance; 8e-3 gave 48-74% test over seeds 0-3) in the AdamW one-cycle recipe
# those rates were tuned with (config.SMOKE_RECIPE, the smoke budget's too), and
# `train` a full-width network behind the strided stem, as the smoke budget (a
# quarter width would put R blocks under the conv floor: harness.search.budgets).
# Each value yields to its flag; with --data the protocol's values hold.
DEMO_DATA = "synthetic?n=3000&size=32&difficulty=0.25"
DEMO_TRAINING: dict[str, Any] = {"batch_size": 32, "batch_size_cuda": 32, **SMOKE_RECIPE}
DEMO_SKELETON: dict[str, Any] = {"stem": "strided"}


def _demo_training(args: argparse.Namespace) -> bool:
    return getattr(args, "data", None) is None and getattr(args, "protocol", None) is None


def demo_defaults(args: argparse.Namespace, *, width: bool) -> dict[str, Any]:
    """The demo's values that apply to these arguments (see DEMO_DATA)."""
    if getattr(args, "data", None) is not None:
        return {}
    values: dict[str, Any] = {"data": DEMO_DATA}
    if _demo_training(args):
        values.update(DEMO_TRAINING)
        if getattr(args, "batch_size", None) is not None:
            # --batch-size is also the CUDA batch unless --batch-size-cuda says otherwise.
            values["batch_size_cuda"] = args.batch_size
        if width:
            skeleton = {k: v for k, v in DEMO_SKELETON.items() if getattr(args, k, None) is None}
            if skeleton:
                values["skeleton"] = skeleton
    return values


def demo_note(args: argparse.Namespace, *, width: bool) -> str:
    """'; demo settings (no --data): --stem strided ...', the demo values in use."""
    if not _demo_training(args):
        return ""
    used = [
        f"--{name.replace('_', '-')} {value if isinstance(value, str) else format(value, 'g')}"
        for name, value in DEMO_TRAINING.items()
        if name != "batch_size_cuda" and getattr(args, name, None) is None
    ]
    if width:
        used[:0] = [
            f"--{k} {v}" for k, v in DEMO_SKELETON.items() if getattr(args, k, None) is None
        ]
    return f"; demo settings (no --data): {' '.join(used)}" if used else ""


def add_folds_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--folds",
        type=argtypes.int_range("--folds", 3, 1_000, hint=argtypes.FOLDS_HINT),
        metavar="K",
        help="ckplus: data only: train on each of K subject-independent folds in turn (one "
        "recorded trial per fold, same seed) and report the mean and sd over folds",
    )


def preflight(config: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    """Build the candidate once for `dataset` (every grammar, timm-name, stem and
    checkpoint error surfaces here, before any progress is printed) and measure what
    the user should see before training: parameters, FLOPs, a baseline's remedy."""
    import torch

    from harness.measure import count_flops, count_params, resolve_device
    from harness.trial import candidate_for

    # TrainConfig itself refuses --threads below 1.
    device = resolve_device(config.device)
    candidate = candidate_for(config, dataset)
    return {
        "arch": candidate.architecture.name,
        "params": count_params(candidate.model),
        "flops": count_flops(candidate.model, candidate.input_shape),
        "input_shape": candidate.input_shape,
        "baseline_stem": candidate.baseline_stem,
        "resize": candidate.resize,
        "device": str(device),
        "threads": config.threads or torch.get_num_threads(),
    }


def device_text(info: dict[str, Any]) -> str:
    """'cpu, 2 threads' or 'cuda:0'."""
    if info["device"] != "cpu":
        return info["device"]
    return f"cpu, {info['threads']} thread{'s' if info['threads'] != 1 else ''}"


def check_arch(config: Any) -> None:
    """Parse the architecture string (no data needed), so a typo fails before data loads."""
    from harness.models import Skeleton, resolve_architecture

    resolve_architecture(config.arch, Skeleton.from_dict(config.skeleton))


def describe_preflight(info: dict[str, Any]) -> str:
    """'  R|I: 351,008 parameters, 12.0 MFLOPs per image (fvcore, multiply-add = 1), ...'."""
    shape = "x".join(str(n) for n in info["input_shape"])
    text = (
        f"  {info['arch']}: {info['params']:,} parameters, "
        f"{info['flops'] / 1e6:,.1f} MFLOPs per image (fvcore, multiply-add = 1), input {shape}"
    )
    if info["baseline_stem"] is not None:
        remedy = {
            "small": "small stem (first 4x of downsampling removed)",
            "timm": "timm's own stem",
        }.get(info["baseline_stem"], info["baseline_stem"])
        text += f"; {remedy}"
        if info["resize"]:
            text += f", inputs upsampled to {info['resize']}x{info['resize']}"
    return text
