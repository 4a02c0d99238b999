"""A recorded trial's network rebuilt with its saved weights, and its test accuracy re-measured.

The network is built as the trial built it (`harness.trial.candidate_for` on the
recorded configuration and the trial's data, loaded again from its spec and checked
against the recorded fingerprint), the weights are loaded strictly, and the test split
is evaluated by the harness's own `Trainer.evaluate`: the same batches, the same
preprocessing (`Trainer.prepare`) and the same argmax as when the trial was recorded.

Re-evaluation runs on the CPU in float32. A trial that was recorded there must score
exactly its recorded accuracy: CPU float32 inference is deterministic for the same
weights and batches, so one image off means the weights or the data are not the ones
the trial measured. A trial recorded on CUDA (or under bf16/fp16 autocast) used other
kernels and rounding, which can flip a borderline prediction: up to 1% of the test
images may differ there, and the output says so.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.export.checks import AccuracyCheck, ExportError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.candidate import Candidate
    from harness.config import TrainConfig
    from harness.data import Dataset
    from harness.train import Trainer

__all__ = [
    "TrialNetwork",
    "rebuild_trial",
    "reevaluate",
    "require_complete",
    "trial_data",
    "training_config",
]

# Share of the test images whose prediction may differ from the recorded run when it ran
# on another device or precision than the CPU's float32 (see the module's docstring).
OTHER_DEVICE_SHARE = 0.01


@dataclass
class TrialNetwork:
    """A trial's network with its saved weights, and what evaluates it as training did."""

    trial: dict[str, Any]
    config: TrainConfig
    dataset: Dataset
    candidate: Candidate
    trainer: Trainer

    @property
    def model(self) -> nn.Module:
        return self.candidate.model

    def test_batch(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `count` test images: uint8 as stored, and as the network is fed them."""
        images = self.dataset.splits["test"].images[:count]
        return images, self.trainer.prepare(images, augment=False).contiguous()


def training_config(recorded: dict[str, Any], *, for_training: bool = False) -> TrainConfig:
    """The recorded configuration as a `TrainConfig` on the CPU, without compile and
    the recorded extras (input_shape, arch_requested). For re-evaluation (the default)
    also float32, all threads and no checkpoint to load: the saved weights replace it.
    For training again (`for_training`) the checkpoint, precision and thread count
    stay: they shape the result."""
    from harness.config import DEFAULT_BASELINE_STEM, TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in recorded.items() if k in known}
    values["baseline_stem"] = values.get("baseline_stem") or DEFAULT_BASELINE_STEM
    values.update(device="cpu", compile=False)
    if not for_training:  # the thread count changes training's sums, not evaluation's result
        values.update(precision="fp32", pretrained=None, threads=None)
    return TrainConfig.from_dict(values)


def trial_data(trial: dict[str, Any], config: TrainConfig) -> Dataset:
    """The trial's data, loaded again from its spec; ExportError unless it is the data
    the trial was measured on (its recorded fingerprint)."""
    from harness.trial import load_trial_dataset

    dataset = load_trial_dataset(trial["data_spec"] or config.data)
    expected = trial.get("data_fingerprint")
    if expected and dataset.fingerprint != expected:
        raise ExportError(
            f"the data {dataset.spec} is not what trial {trial['id']} was measured on "
            f"(fingerprint {dataset.fingerprint}, recorded {expected}): restore that data "
            "to export it"
        )
    return dataset


def require_complete(trial: dict[str, Any]) -> dict[str, Any]:
    """The trial's recorded configuration; ExportError unless the trial completed."""
    trial_id = trial["id"]
    if trial.get("status") != "complete" or trial.get("test_acc") is None:
        raise ExportError(
            f"trial {trial_id} is {trial.get('status')}, not complete: only a complete trial "
            "has a measured network to export"
        )
    recorded = trial.get("config")
    if not isinstance(recorded, dict) or "arch" not in recorded:
        raise ExportError(f"trial {trial_id} has no recorded configuration to rebuild it from")
    return recorded


def rebuild_trial(
    trial: dict[str, Any], state: dict[str, torch.Tensor], *, source: str = ""
) -> TrialNetwork:
    """Trial row `trial` (`Store.trial`) with `state` loaded into its network."""
    import torch

    from harness.train import Trainer
    from harness.trial import candidate_for
    from harness.weights import load_into

    config = training_config(require_complete(trial))
    dataset = trial_data(trial, config)
    candidate = candidate_for(config, dataset)
    load_into(candidate.model, state, source=source)
    trainer = Trainer(candidate.model, dataset, config, torch.device("cpu"))
    candidate.model.eval()
    return TrialNetwork(trial, config, dataset, candidate, trainer)


def reevaluate(network: TrialNetwork) -> AccuracyCheck:
    """The test accuracy of the loaded weights against the recorded one; ExportError
    when they differ by more than the rule allows."""
    trial = network.trial
    evaluation = network.trainer.evaluate("test")
    images = len(network.dataset.splits["test"])
    device = str(trial.get("device") or "cpu").partition(":")[0]
    precision = str((trial.get("config") or {}).get("precision") or "auto")
    if device == "cpu" and precision in ("auto", "fp32"):
        allowed, rule = 0, "recorded on the CPU in float32, so it must be equal"
    else:
        allowed = max(1, math.floor(OTHER_DEVICE_SHARE * images))
        rule = (
            f"recorded on {device} ({precision}), re-evaluated on the CPU in float32: "
            f"up to {allowed} image{'s' if allowed != 1 else ''} may differ"
        )
    check = AccuracyCheck(float(trial["test_acc"]), evaluation.acc, images, allowed, rule)
    if not check.passed:
        raise ExportError(
            f"trial {trial['id']}'s weights score {100 * check.reevaluated:.2f}% on the test "
            f"split, not the recorded {100 * check.recorded:.2f}% ({check.correct_now} against "
            f"{check.correct_recorded} of {images} images; {rule}): these are not the weights "
            "it measured; nothing was written"
        )
    return check
