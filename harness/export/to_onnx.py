"""ONNX: `torch.onnx.export` (the torch.export-based exporter) and a check through ONNX Runtime.

The exporter is torch's current one (`dynamo=True`, needs onnxscript): the
TorchScript-based one (`dynamo=False`) still runs in torch 2.14 but warns that it
will be removed. Opset 18 is that exporter's own opset (a lower one is converted
afterwards, a step that can fail); the batch axis is dynamic, so the file takes any
number of images. onnx, onnxruntime and onnxscript come with the `export` extra.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from harness.export.checks import ExportError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = ["EXTRA", "OPSET", "OnnxModel", "export_onnx", "require_onnx", "run_onnx"]

OPSET = 18
EXTRA = "pip install 'harness[export]'"
_MODULES = ("onnx", "onnxruntime", "onnxscript")


def require_onnx(flag: str = "--format onnx") -> None:
    """ExportError (one line, what to install) when the export extra is missing."""
    import importlib

    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ExportError(
                f"{flag} needs the export extra: {EXTRA} ({name} is not installed)"
            ) from None


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write `model` (eval mode) to `path` as one self-contained ONNX file."""
    import torch

    if example.shape[0] < 2:
        # torch.export specialises a batch of 1 to a constant: trace with two or more.
        example = example.expand(2, *example.shape[1:])
    batch = torch.export.Dim("batch", min=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes, not the user's business
            torch.onnx.export(
                model.eval(),
                (example.contiguous(),),
                str(path),
                dynamo=True,
                opset_version=OPSET,
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes=({0: batch},),
                external_data=False,  # one file: the weights inside model.onnx
                verbose=False,
            )
    except Exception as error:  # the exporter's errors have many types; one line for all
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"torch.onnx.export failed: {first}") from None


class OnnxModel:
    """An ONNX file under ONNX Runtime on the CPU: logits of float32 (N, C, H, W) images."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about its own graph passes
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise ExportError(
                f"onnxruntime cannot load {path}: {str(error).strip()[:200]}"
            ) from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import numpy as np

        feed = {self.input: np.ascontiguousarray(images, dtype=np.float32)}
        return self.session.run(None, feed)[0]


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    """Logits of the ONNX file at `path` on float32 `images` (N, C, H, W)."""
    return OnnxModel(path)(images)
