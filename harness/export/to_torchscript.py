"""TorchScript: the network traced (`torch.jit.trace`) and saved, loaded back for the check.

Tracing records the operations of one forward pass; our networks and the timm
baselines have no data-dependent control flow, so the trace is the network. torch
2.14 marks torch.jit as deprecated (in favour of torch.export, which the ONNX export
uses) but still runs it; its FutureWarnings are silenced here, not the errors.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from harness.export.checks import ExportError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["export_torchscript", "run_torchscript"]


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    import torch

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(model.eval(), example.contiguous(), check_trace=False)
            torch.jit.save(traced, str(path))
    except Exception as error:  # tracing errors have many types; one line for all
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"torch.jit.trace failed: {first}") from None


def run_torchscript(path: Path, images: torch.Tensor) -> torch.Tensor:
    """Logits of the saved TorchScript file on `images`."""
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
        return module(images)
