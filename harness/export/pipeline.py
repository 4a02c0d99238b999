"""One trial's saved weights -> a checked export folder: the steps in order.

1. The output folder must be new (or an earlier export, with --force), the export
   extra present when ONNX is asked for: refused before any work.
2. The trial's network is rebuilt with the weights and its test accuracy re-measured
   (`evaluate`); the preprocessing written to config.json is checked to give exactly
   the batch training gives (`preprocess.prepare` against `Trainer.prepare`), from
   the stored uint8 test images: the dataset keeps no file names, so the reading step
   (`preprocess.read_images`: crop, resize) is covered by the tests, not here.
3. In a hidden sibling folder: model.safetensors, rebuilt from config.json alone and
   compared; for our networks, loaded by `timm.create_model` and compared; model.onnx
   through ONNX Runtime and model.torchscript.pt, each compared on the same batch of
   the trial's own test images.
4. config.json with every file's SHA-256 and every check, then the rename into place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.export.bundle import ONNX_FILE, TORCHSCRIPT_FILE, staged, write_config
from harness.export.checks import AccuracyCheck, ExportError, OutputCheck, compare_outputs
from harness.weights import WEIGHTS_FILE

if TYPE_CHECKING:
    import torch

__all__ = ["FORMATS", "ExportResult", "export_trial", "parse_formats"]

FORMATS = ("safetensors", "onnx", "torchscript")
# Test images every format is compared on (the first ones of the test split).
CHECK_IMAGES = 64


@dataclass
class ExportResult:
    folder: Path
    config: dict[str, Any]
    accuracy: AccuracyCheck
    checks: list[tuple[OutputCheck, str]] = field(default_factory=list)  # (check, detail)

    def lines(self) -> list[str]:
        return [self.accuracy.line(), *(check.line(detail) for check, detail in self.checks)]


def parse_formats(values: Iterable[str] | None) -> list[str]:
    """--format values (repeated or comma lists) -> formats in FORMATS order; safetensors always."""
    asked = {"safetensors"}
    for value in values or ():
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in FORMATS:
                raise ExportError(f"unknown --format {name!r} (known: {', '.join(FORMATS)})")
            asked.add(name)
    return [name for name in FORMATS if name in asked]


def export_trial(
    trial: dict[str, Any],
    state: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None,
    *,
    out: Path,
    formats: Iterable[str] = ("safetensors",),
    force: bool = False,
    check_images: int = CHECK_IMAGES,
) -> ExportResult:
    """Export trial row `trial` (`Store.trial`) with its saved weights `state` to `out`."""
    import torch

    from harness.export import preprocess
    from harness.export.bundle import refuse_existing
    from harness.export.evaluate import rebuild_trial, reevaluate
    from harness.export.manifest import export_environment, file_entries, manifest
    from harness.export.network import create_timm_model, load_model
    from harness.weights import save_weights

    formats = parse_formats(formats)
    refuse_existing(out, force)
    if "onnx" in formats:
        from harness.export.to_onnx import require_onnx

        require_onnx()

    network = rebuild_trial(trial, state, source=f"saved for trial {trial['id']}")
    accuracy = reevaluate(network)
    images_u8, batch = network.test_batch(check_images)
    spec = preprocess.input_spec(
        network.dataset.image_shape, network.config.resize, network.trainer.mean,
        network.trainer.std, crop=network.dataset.crop,
    )  # fmt: skip
    if not torch.equal(preprocess.prepare(images_u8, spec), batch):
        raise ExportError(
            "preprocessing check failed: config.json's input steps do not give the batch "
            "training gives; nothing was written (a bug: please report it)"
        )
    model = network.model.eval()
    with torch.inference_mode():
        reference = model(batch).float().numpy()
    candidate = network.candidate
    config = manifest(
        trial,
        classes=list(network.dataset.classes),
        skeleton=candidate.skeleton.to_dict(),
        baseline_stem=candidate.baseline_stem,
        is_baseline=candidate.is_baseline,
        input_spec=spec,
        output=candidate.skeleton.output,
    )
    result = ExportResult(out, config, accuracy)
    with staged(out, force=force) as folder:
        weights_meta = {
            "format": config["format"], "arch": config["architecture"]["arch"],
            "trial_id": trial["id"], "study": trial.get("study"),
            "classes": config["classes"], "saved": metadata or {},
        }  # fmt: skip
        save_weights(model.state_dict(), folder / WEIGHTS_FILE, weights_meta)
        files = [WEIGHTS_FILE]

        # What predict and a user's `load_model` do: the network from config.json alone.
        config["files"] = file_entries(folder, files)
        write_config(folder, config)
        rebuilt = load_model(folder)
        check = _torch_check("safetensors", rebuilt, batch, reference)
        result.checks.append((check, "rebuilt from config.json"))
        if config["architecture"]["timm"]:
            timm_model = create_timm_model(config, folder / WEIGHTS_FILE)
            check = _torch_check("timm", timm_model, batch, reference)
            result.checks.append(
                (check, "timm.create_model('harness_blockseq') on model.safetensors")
            )
        if "onnx" in formats:
            from harness.export.to_onnx import OPSET, export_onnx, run_onnx

            export_onnx(rebuilt, batch, folder / ONNX_FILE)
            logits = run_onnx(folder / ONNX_FILE, batch.numpy())
            check = compare_outputs("onnx", reference, logits)
            result.checks.append((check, f"opset {OPSET}, onnxruntime CPU"))
            files.append(ONNX_FILE)
        if "torchscript" in formats:
            from harness.export.to_torchscript import export_torchscript, run_torchscript

            export_torchscript(rebuilt, batch, folder / TORCHSCRIPT_FILE)
            logits = run_torchscript(folder / TORCHSCRIPT_FILE, batch).float().numpy()
            check = compare_outputs("torchscript", reference, logits)
            result.checks.append((check, "torch.jit.trace"))
            files.append(TORCHSCRIPT_FILE)

        config["files"] = file_entries(folder, files)
        config["accuracy"] = {
            "val_acc_recorded": trial.get("val_acc"),
            "test_acc_recorded": accuracy.recorded,
            "test_acc_reevaluated": accuracy.reevaluated,
            "test_images": accuracy.images,
        }
        config["checks"] = {
            "accuracy": accuracy.to_dict(),
            "preprocessing": {"images": int(batch.shape[0]), "equal_to_training": True},
            **{check.format: {**check.to_dict(), "how": detail} for check, detail in result.checks},
        }
        if "onnx" in formats:
            config["checks"]["onnx"]["opset"] = OPSET
        config["environment"] = export_environment(trial)
        config["exported_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        write_config(folder, config)
    return result


def _torch_check(name: str, model: Any, batch: torch.Tensor, reference: Any) -> OutputCheck:
    import torch

    with torch.inference_mode():
        logits = model.eval()(batch).float().numpy()
    return compare_outputs(name, reference, logits)
