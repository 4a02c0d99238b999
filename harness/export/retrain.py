"""A trial whose weights were not kept, trained again to the same network.

`harness run --keep-weights top` keeps few trials' weights, and a search never trains
a recorded trial twice (it reuses the row). `harness export TRIAL --retrain` trains
the recorded configuration once more on the CPU, through the same two seeded steps
as `harness.trial.run_trial` (`seeded_candidate`, `seeded_trainer`). On the CPU
training with the same seed, data and thread count is deterministic, so the network
is the trial's own; the export's accuracy check (`evaluate.reevaluate`) then proves
it or refuses: a trial recorded on a GPU, under mixed precision or with another
number of threads may land elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["retrain_weights"]


def retrain_weights(
    trial: dict[str, Any], *, progress: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train trial row `trial` (`Store.trial`) again and return its best-validation
    weights and metadata saying they were retrained."""
    import torch

    from harness.export.evaluate import require_complete, training_config, trial_data
    from harness.trial import seeded_candidate, seeded_trainer

    config = training_config(require_complete(trial), for_training=True)
    dataset = trial_data(trial, config)
    if config.threads:
        torch.set_num_threads(config.threads)
    # Built and trained by the same two steps as run_trial's, so the seed lands the same.
    candidate = seeded_candidate(config, dataset)
    trainer = seeded_trainer(candidate, dataset, config, torch.device("cpu"))
    result = trainer.fit(progress=progress)
    state = {name: value.detach().clone() for name, value in candidate.model.state_dict().items()}
    metadata = {
        "retrained": True,
        "trial_id": trial["id"],
        "seed": config.seed,
        "best_epoch": result.best_epoch,
        "val_acc": result.val.acc,
        "test_acc": result.test.acc,
    }
    return state, metadata
