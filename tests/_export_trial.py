"""A real tiny trial with its trained weights saved, for the export and predict tests.

`run_trial` trains and records the trial; its Trainer is wrapped to keep the network it
trained (after `fit` it holds the best-validation weights, the ones the recorded
accuracies were measured with), and `save_weights` writes them as the keep helper's
artifacts will. `fake_artifacts` stands in for `harness.artifacts.trial_weights`
(branch keep) in the command tests: it serves that file through `load_weights`.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

DATA = "synthetic?n=200&size=32"


@dataclass
class TinyTrial:
    db: str
    trial_id: int
    study: str
    weights: Path
    model: torch.nn.Module  # the network run_trial trained, best-validation weights
    mean: float
    std: float
    test_images: torch.Tensor  # uint8 (N, 1, 32, 32)
    classes: list[str]

    def logits(self, images_u8: torch.Tensor) -> torch.Tensor:
        """The trained network's own logits, on images prepared as its Trainer prepared them."""
        x = (images_u8.float() / 255.0 - self.mean) / self.std
        with torch.inference_mode():
            return self.model.eval()(x)


def train_tiny_trial(folder: Path, *, study: str = "demo", **changes: Any) -> TinyTrial:
    """`changes` go to the TrainConfig (another arch, resize, ...)."""
    import harness.trial
    from harness.config import TrainConfig
    from harness.store import Store
    from harness.train import Trainer
    from harness.trial import run_trial
    from harness.weights import save_weights

    trainers: list[Trainer] = []

    class Keeping(Trainer):
        def fit(self, *args: Any, **kwargs: Any):
            result = super().fit(*args, **kwargs)
            trainers.append(self)
            return result

    values = dict(
        arch="R I", data=DATA, epochs=2, batch_size=32, max_batches=3,
        skeleton={"width_mult": 0.25}, device="cpu",
    )  # fmt: skip
    config = TrainConfig.from_protocol("fast", **{**values, **changes})
    db = f"sqlite:///{folder / 'results.db'}"
    with pytest.MonkeyPatch.context() as patch, Store(db) as store:
        patch.setattr(harness.trial, "Trainer", Keeping)
        outcome = run_trial(config, store, study=study, measure_latency=False)
    assert outcome.status == "complete", outcome.reason
    (trainer,) = trainers
    weights = folder / "trial.safetensors"
    save_weights(trainer.model.state_dict(), weights, {"trial_id": outcome.trial_id})
    return TinyTrial(
        db, outcome.trial_id, study, weights, trainer.model.eval(), trainer.mean, trainer.std,
        trainer.splits["test"].images.cpu(), list(trainer.classes),
    )  # fmt: skip


def fake_artifacts(monkeypatch: pytest.MonkeyPatch, files: dict[int, Path]) -> None:
    """`harness.artifacts.trial_weights` serving `files` (our trial id -> weights file);
    another trial has no saved weights. Patched for this test only (a stand-in module
    where harness.artifacts does not exist yet)."""
    from harness.weights import WeightsError, load_weights

    def trial_weights(store: Any, trial_id: int, location: str | None = None):
        if trial_id not in files:
            raise WeightsError(
                f"trial {trial_id} has no saved weights: rerun it with --keep-weights all"
            )
        return load_weights(files[trial_id])

    try:
        import harness.artifacts as module
    except ImportError:  # before the keep branch is merged: a stand-in module
        module = types.ModuleType("harness.artifacts")
        monkeypatch.setitem(sys.modules, "harness.artifacts", module)
    monkeypatch.setattr(module, "trial_weights", trial_weights, raising=False)
