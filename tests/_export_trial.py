"""A real tiny trial with its trained weights saved, for the export and predict tests.

`run_trial` trains and records the trial; its Trainer is wrapped to keep the network it
trained (after `fit` it holds the best-validation weights, the ones the recorded
accuracies were measured with). Its `keep_weights` hook saves them as a search keeps
them: a safetensors file uploaded as an Optuna artifact of the study and linked to our
row (`harness.artifacts.upload_weights`), so the commands read them through the real
`harness.artifacts.trial_weights`.
"""

from __future__ import annotations

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
    weights: Path  # a copy of the saved weights, outside the artifact store
    artifact: Path  # the file in the artifact store that trial_weights reads
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
    weights = folder / "trial.safetensors"
    artifacts = folder / "artifacts"

    def keep(model: torch.nn.Module, outcome: Any, dataset: Any) -> None:
        import optuna

        from harness.artifacts import upload_weights

        file = save_weights(model.state_dict(), weights, {"trial_id": outcome.trial_id})
        optuna_study = optuna.create_study(study_name=study, storage=db, load_if_exists=True)
        upload_weights(
            store, str(artifacts), file, trial_id=outcome.trial_id, optuna_trial=optuna_study
        )

    with pytest.MonkeyPatch.context() as patch, Store(db) as store:
        patch.setattr(harness.trial, "Trainer", Keeping)
        outcome = run_trial(config, store, study=study, measure_latency=False, keep_weights=keep)
        link = store.weights_of(outcome.trial_id)
    assert outcome.status == "complete", outcome.reason
    (trainer,) = trainers
    return TinyTrial(
        db, outcome.trial_id, study, weights, artifacts / link["artifact_id"],
        trainer.model.eval(), trainer.mean, trainer.std, trainer.splits["test"].images.cpu(),
        list(trainer.classes),
    )  # fmt: skip
