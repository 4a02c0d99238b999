"""Class probabilities of image files under an exported network: what `harness predict` prints.

The images are read and prepared as training fed them (`preprocess`, from the
folder's config.json); the network is the PyTorch one rebuilt from config.json and
model.safetensors (`network.load_model`), or with `onnx=True` model.onnx through ONNX
Runtime. Neither needs the results database or the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.export.bundle import ONNX_FILE, read_bundle
from harness.export.checks import ExportError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Predictions", "predict_files"]

# Images per forward pass: bounded memory for a folder of thousands.
BATCH = 256


@dataclass
class Predictions:
    classes: list[str]
    files: list[Path]
    probabilities: np.ndarray  # (N, classes), rows sum to 1
    runtime: str  # "pytorch" or "onnxruntime"
    data_spec: str = ""  # what the network was trained on (config.json's trial)

    def records(self) -> list[dict[str, Any]]:
        rows = []
        for path, probs in zip(self.files, self.probabilities, strict=True):
            top = int(probs.argmax())
            rows.append(
                {
                    "file": str(path),
                    "class": self.classes[top],
                    "probability": float(probs[top]),
                    "probabilities": {
                        c: float(p) for c, p in zip(self.classes, probs, strict=True)
                    },
                }
            )
        return rows


def predict_files(
    folder: str | Path, images: list[str | Path], *, onnx: bool = False
) -> Predictions:
    """Probabilities of every image named (files, or folders of images) under the export
    in `folder`. ExportError (one line) for a folder that is no export, a missing
    model.onnx, no images or an unreadable one."""
    import numpy as np
    import torch

    from harness.errors import DataError
    from harness.export.network import load_model, probabilities
    from harness.export.preprocess import collect_images, prepare, read_images

    bundle = read_bundle(folder)
    config = bundle.config
    spec, output = config["input"], config["output"]["activation"]
    if onnx:
        from harness.export.to_onnx import OnnxModel, require_onnx

        if not bundle.has(ONNX_FILE):
            raise ExportError(
                f"{bundle.folder} has no {ONNX_FILE}: export the trial with --format onnx"
            )
        require_onnx("--onnx")
    paths = collect_images(images)
    model = OnnxModel(bundle.path(ONNX_FILE)) if onnx else load_model(bundle)
    chunks = []
    for start in range(0, len(paths), BATCH):
        part = paths[start : start + BATCH]
        try:
            pixels = torch.from_numpy(read_images(part, spec))
        except DataError as error:
            raise ExportError(str(error)) from None
        x = prepare(pixels, spec)
        if onnx:
            logits = torch.from_numpy(model(x.numpy()))
        else:
            with torch.inference_mode():
                logits = model(x)
        chunks.append(probabilities(logits.float(), output).numpy())
    probs = np.concatenate(chunks)
    runtime = "onnxruntime" if onnx else "pytorch"
    data_spec = str((config.get("trial") or {}).get("data_spec") or "")
    return Predictions(list(config["classes"]), paths, probs, runtime, data_spec)
