"""A network's weights as one safetensors file: written whole, read back checked.

safetensors holds tensors and a flat string-to-string header, and no pickle: a
weights file someone hands over cannot run code when it is opened. What the file
is for (its architecture, the trial it came from) goes in that header as JSON, so
a file that lost its folder still says which network it fits.

    info = save_weights(model.state_dict(), path, {"arch": "RRR|IIII|RRRRRR|III"})
    state, metadata = load_weights(path)       # WeightsError: missing, corrupt, truncated
    load_into(model, state)                    # WeightsError: another network's file
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "WEIGHTS_FILE",
    "WeightsError",
    "WeightsFile",
    "file_sha256",
    "load_into",
    "load_weights",
    "save_weights",
]

WEIGHTS_FILE = "model.safetensors"
# The header key under which `save_weights` keeps its JSON metadata.
_META_KEY = "harness"


class WeightsError(HarnessError):
    """A weights file is missing, unreadable, or does not fit the network."""


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    sha256: str
    bytes: int

    @classmethod
    def of(cls, path: Path) -> WeightsFile:
        """The file at `path` as it is now: its digest and size."""
        return cls(path, file_sha256(path), path.stat().st_size)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(
    state_dict: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, Any] | None = None
) -> WeightsFile:
    """Write `state_dict` to `path` through a temporary file renamed into place, so that
    a crash or a full disk never leaves a truncated file under the final name."""
    from safetensors.torch import save_file

    from harness.output import atomic_path

    path = Path(path)
    # safetensors refuses views and shared storage: each tensor is written as its own copy.
    tensors = {
        name: value.detach().to("cpu").contiguous().clone() for name, value in state_dict.items()
    }
    header = {_META_KEY: json.dumps(metadata or {}, sort_keys=True, default=str)}
    with atomic_path(path) as partial:
        save_file(tensors, str(partial), metadata=header)
    return WeightsFile.of(path)


def load_weights(
    path: str | Path, *, sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the metadata of a file `save_weights` wrote (or any safetensors
    file: its metadata is then {}). With `sha256`, the file must have that digest."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    if sha256 is not None and file_sha256(path) != sha256:
        raise WeightsError(
            f"weights file {path} is not the one that was saved (its SHA-256 differs): "
            "it was changed or truncated"
        )
    try:
        tensors = load_file(str(path), device="cpu")
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(
            f"weights file {path} cannot be read as safetensors ({error}): "
            "it is corrupt or truncated"
        ) from None
    try:
        metadata = json.loads(header.get(_META_KEY, "{}"))
    except json.JSONDecodeError:
        metadata = {}
    return tensors, metadata if isinstance(metadata, dict) else {}


def load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str = "") -> None:
    """Load `state_dict` into `model`, strictly: every tensor present, of the same shape."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = sorted(
        name for name in set(own) & set(state_dict) if own[name].shape != state_dict[name].shape
    )
    where = f" {source}" if source else ""
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors missing (first {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
        if wrong:
            name = wrong[0]
            parts.append(
                f"{len(wrong)} of another shape (first {name}: "
                f"{tuple(state_dict[name].shape)} for {tuple(own[name].shape)})"
            )
        raise WeightsError(f"weights{where} do not fit this network: " + ", ".join(parts))
    model.load_state_dict(state_dict, strict=True)
