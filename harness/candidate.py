"""The network a training configuration asks for, sized for its data.

The skeleton takes its input shape and class count from the dataset (or the
`resize` the configuration asks for); timm baselines get their stem (timm's
own, or the small-input one), their head and a local pretrained checkpoint
here, so that every caller (train, baselines, search, bench, describe)
builds the same model from the same configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from harness.config import CHOICES, DEFAULT_BASELINE_STEM, TIMM_PREFIX, split_arch
from harness.errors import ConfigError, ModelError
from harness.models import (
    Architecture,
    Skeleton,
    build_model,
    resolve_architecture,
    with_head,
)

__all__ = ["Candidate", "build_candidate", "shrink_stem", "SMALL_INPUT_PX"]

# Below this many pixels per side timm's 32x ImageNet stems leave a 1x1 or 2x2
# final map (48x48 -> 2x2); `baseline_stem="auto"` drops the stem's first 4x there.
SMALL_INPUT_PX = 96


@dataclass
class Candidate:
    model: nn.Module
    architecture: Architecture
    skeleton: Skeleton
    # Which remedy for small inputs a timm baseline used: "timm" (unchanged),
    # "small" (first 4x of downsampling removed); None for our networks.
    baseline_stem: str | None
    pretrained: str | None
    resize: int | None = None  # inputs upsampled to resize x resize on the device

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.skeleton.input_shape

    @property
    def is_baseline(self) -> bool:
        return self.architecture.is_baseline


def model_input_shape(
    image_shape: tuple[int, int, int], resize: int | None
) -> tuple[int, int, int]:
    """The shape the network sees: the data's, or upsampled on the device to `resize`."""
    channels = image_shape[0]
    return (channels, resize, resize) if resize else tuple(image_shape)  # type: ignore[return-value]


def build_candidate(
    arch: str,
    *,
    image_shape: tuple[int, int, int],
    num_classes: int,
    skeleton: dict[str, Any] | None = None,
    resize: int | None = None,
    baseline_stem: str = DEFAULT_BASELINE_STEM,
    pretrained: str | None = None,
) -> Candidate:
    """Build `arch` for images of `image_shape` (before any resize) and `num_classes`.

    Options in a baseline's name (`timm:resnet50?stem=small&head=paper`) win
    over the keyword arguments, as they do in `TrainConfig`.
    """
    arch, options = split_arch(arch)
    baseline_stem = options.get("baseline_stem", baseline_stem)
    resize = options.get("resize", resize)
    pretrained = options.get("pretrained", pretrained)
    if baseline_stem not in CHOICES["baseline_stem"]:
        allowed = ", ".join(CHOICES["baseline_stem"])
        raise ConfigError(f"unknown baseline stem {baseline_stem!r} (known: {allowed})")
    if resize is not None and resize < 8:
        raise ConfigError(f"resize must be at least 8 pixels, got {resize}")
    values = dict(skeleton or {})
    if "head" in options:
        values["head"] = options["head"]
    values["input_shape"] = model_input_shape(image_shape, resize)
    values["num_classes"] = num_classes
    built_skeleton = Skeleton.from_dict(values)
    architecture = resolve_architecture(arch, built_skeleton)
    stem = None
    if architecture.is_baseline:
        name = architecture.name[len(TIMM_PREFIX) :]
        model = _build_timm_baseline(name, built_skeleton, pretrained)
        stem = baseline_stem
        if stem == "auto":
            stem = "small" if min(built_skeleton.input_shape[1:]) < SMALL_INPUT_PX else "timm"
        if stem == "small":
            shrink_stem(model, factor=4)
    else:
        model = build_model(architecture, built_skeleton)
        if pretrained:
            _load_own_checkpoint(model, pretrained)
    return Candidate(model, architecture, built_skeleton, stem, pretrained, resize)


# How a readable state dict that does not fit the network is refused, and only that:
# torch's load_state_dict (tensors missing, unexpected or of another shape; "size
# mismatch for bn1.weight" follows on the next line) and timm's adaptation of the first
# convolution to the data's channels (a stem of another channel count).
_MISFIT_MARKERS = ("Error(s) in loading state_dict", "is inconsistent with input_size")


def _build_timm_baseline(name: str, skeleton: Skeleton, pretrained: str | None) -> nn.Module:
    if not pretrained:
        return build_model(TIMM_PREFIX + name, skeleton)
    import timm

    path = _checkpoint_path(pretrained)
    # timm loads a local file with torch.load(weights_only=True), adapts the
    # first convolution to `in_chans` and drops a classifier of another size. Read
    # it once ourselves first, so a refused file gets our one-line message.
    read_checkpoint(path)
    try:
        model = timm.create_model(
            name,
            pretrained=True,
            pretrained_cfg_overlay={"file": str(path)},
            in_chans=skeleton.input_shape[0],
            num_classes=skeleton.num_classes,
        )
    except RuntimeError as error:
        if not any(marker in str(error) for marker in _MISFIT_MARKERS):
            raise  # out of memory, a driver, a bug: an error of the run, not of the weights
        # torch's first line only says "Error(s) in loading state_dict"; the second says which.
        detail = " ".join(line.strip() for line in str(error).splitlines()[:2])
        raise ModelError(f"pretrained weights {path} do not fit timm:{name}: {detail}") from None
    return with_head(model, skeleton)


def _checkpoint_path(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise ModelError(f"pretrained checkpoint {path} is a folder; give the checkpoint file")
    if not path.is_file():
        raise ModelError(f"pretrained checkpoint {path} does not exist (give a local file path)")
    return path


_WEIGHTS_ONLY = "only weights-only checkpoints (torch.save of a state dict of tensors) are loaded"


def _looks_like_torch_save(path: Path) -> bool:
    """A torch.save file: a zip archive (PyTorch 1.6 on) or a bare pickle (protocol 2+)."""
    import zipfile

    with path.open("rb") as file:
        first = file.read(1)
    return first == b"\x80" or zipfile.is_zipfile(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The state dict saved at `path`, read with torch.load(weights_only=True).

    Every refusal is one ModelError line of ours: PyTorch's own message runs to
    several lines and advises weights_only=False, which would run whatever code
    an untrusted pickle holds."""
    import pickle
    import warnings

    import torch

    if path.stat().st_size == 0:
        raise ModelError(f"checkpoint {path} is an empty file, not a PyTorch checkpoint")
    try:
        with warnings.catch_warnings():
            # A checkpoint saved with another pickle protocol warns over several lines.
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not _looks_like_torch_save(path):  # junk bytes fail to unpickle the same way
            raise ModelError(
                f"checkpoint {path} is not a PyTorch checkpoint (torch.save file); {_WEIGHTS_ONLY}"
            ) from None
        raise ModelError(
            f"checkpoint {path} is not weights-only: it holds Python objects beyond tensors "
            f"and plain values, which could run code, so it was not loaded; {_WEIGHTS_ONLY}"
        ) from None
    except Exception:  # a text file, a truncated zip, another format: each fails its own way
        raise ModelError(
            f"checkpoint {path} is not a PyTorch checkpoint (torch.save file); {_WEIGHTS_ONLY}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(
            f"checkpoint {path} holds a {type(state).__name__} but no state dict of tensors; "
            f"{_WEIGHTS_ONLY}"
        )
    return state


def _load_own_checkpoint(model: nn.Module, text: str) -> None:
    """Load matching tensors of a saved state dict; a head of another size stays new."""
    import torch

    path = _checkpoint_path(text)
    state = read_checkpoint(path)
    own = model.state_dict()
    matching = {
        k: v
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and own[k].shape == v.shape
    }
    if not matching:
        raise ModelError(f"checkpoint {path} has no tensor that fits this architecture")
    model.load_state_dict(matching, strict=False)


def shrink_stem(model: nn.Module, factor: int = 4) -> int:
    """Set the first stride-2 convolutions and pools to stride 1 until `factor`
    of downsampling is removed; return the factor removed.

    For timm's resnet50 that is conv1 and the max-pool; for the MobileNets the
    stem convolution and the first stride-2 depthwise block, which have no
    shortcut whose stride would have to change with them.
    """
    removed = 1
    for module in model.modules():
        if removed >= factor:
            break
        if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            stride = module.stride if isinstance(module.stride, tuple) else (module.stride,) * 2
            if tuple(stride) == (2, 2):
                module.stride = (1, 1) if isinstance(module, nn.Conv2d) else 1
                removed *= 2
    if removed < factor:
        raise ModelError(f"could only remove {removed}x of the stem's {factor}x downsampling")
    return removed
