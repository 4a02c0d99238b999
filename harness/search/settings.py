"""`SearchSettings`: everything one `harness run` asked for, as plain JSON-able data.

What the flags (or a library caller) ask for, before anything is loaded or
checked; `harness.search.plan.RunPlan.resolve` turns it into the run's plan.
Workers on this machine receive it as JSON and resolve the same plan.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SearchSettings"]


@dataclass
class SearchSettings:
    space: str  # name or path of the space file
    url: str  # the database (our tables and Optuna's)
    study: str = ""  # "" -> default_study_name
    budget: str = "smoke"
    data: str | None = None  # None -> the budget's
    trials: int | None = None  # None -> the budget's; the study's total, not this run's
    objectives: tuple[str, ...] = ("accuracy",)
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig flags (+ skeleton)
    constraints: dict[str, float] = field(default_factory=dict)  # max_flops, max_params, ...
    repeats: int = 1
    top: int = 3
    workers: int = 1
    worker_index: int = 0
    heartbeat_s: int = 60
    grace_s: int = 180
    progress: bool = True
    measure_latency: bool = True
    folds: int = 1  # > 1: every candidate trains on each CK+ fold (harness.folds)
    # "train", "proxy:NAME" or "supernet" (harness.strategy): with an estimator,
    # `candidates` (None -> `trials`) are scored and only the best `top` are trained.
    strategy: str = "train"
    candidates: int | None = None
    # Whose best-validation weights are kept as Optuna artifacts (harness.search.keep):
    # all, top (the leaderboard's best `top` rows and the named architectures), named, none.
    keep_weights: str = "top"
    # The artifact store: a folder, s3://bucket or gs://bucket; None: $HARNESS_ARTIFACTS,
    # else artifacts/ beside the SQLite database (harness.artifacts.resolve_location).
    artifacts: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SearchSettings:
        values = json.loads(text)
        values["objectives"] = tuple(values["objectives"])
        return cls(**values)
