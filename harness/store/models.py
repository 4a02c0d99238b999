"""The results tables, as SQLAlchemy 2 declarative models.

Every table name starts with `harness_`: Optuna's RDB storage lives in the
same database and owns the unprefixed names (`studies`, `trials`, ...).
Times are naive UTC. Accuracies are fractions in [0, 1]; FLOPs are fvcore
forward multiply-adds (MACs) per image at the trained input shape.

A change to these models is a schema change: bump `SCHEMA_VERSION` in
`harness.store.migrations` and add the step that upgrades the previous version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from harness.store.kinds import CANDIDATE_KINDS, FAMILIES, TRIAL_STATUSES

__all__ = [
    "CANDIDATE_KINDS",
    "FAMILIES",
    "TRIAL_STATUSES",
    "Base",
    "Candidate",
    "Epoch",
    "Estimate",
    "Latency",
    "Meta",
    "Study",
    "Trial",
    "WeightsLink",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, str: String(255)}


class Meta(Base):
    """Key/value facts about the database itself; `schema_version` above all."""

    __tablename__ = "harness_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Study(Base):
    __tablename__ = "harness_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    space: Mapped[str | None]
    objectives: Mapped[list[Any] | None]
    sampler: Mapped[str | None]
    data_spec: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Candidate(Base):
    """One architecture (canonical string) or baseline (name) on one skeleton."""

    __tablename__ = "harness_candidates"
    __table_args__ = (
        UniqueConstraint("arch", "skeleton_hash", name="uq_harness_candidates_arch_skeleton"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arch: Mapped[str] = mapped_column(Text)
    # sha256 of the canonical JSON of `skeleton`; "" when there is none.
    skeleton_hash: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16))
    family: Mapped[str] = mapped_column(String(16))
    params: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    input_shape: Mapped[list[Any] | None]
    num_classes: Mapped[int | None]
    skeleton: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Trial(Base):
    """One training run of one candidate under one configuration and seed."""

    __tablename__ = "harness_trials"
    __table_args__ = (
        # The reuse lookup (`find_complete_trial`): every equality it tests, so that
        # failed or running rows of the same experiment are skipped in the index (schema 3).
        Index("ix_harness_trials_reuse", "config_hash", "data_fingerprint", "seed", "status"),
        Index("ix_harness_trials_study_status", "study_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("harness_studies.id"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("harness_candidates.id"), index=True)
    optuna_trial_number: Mapped[int | None]
    protocol: Mapped[str | None]
    hyperparameters: Mapped[dict[str, Any] | None]
    config: Mapped[dict[str, Any] | None]
    config_hash: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int | None]
    data_spec: Mapped[str | None] = mapped_column(Text)
    data_fingerprint: Mapped[str | None]
    label_mode: Mapped[str | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    reason: Mapped[str | None] = mapped_column(Text)
    best_epoch: Mapped[int | None]
    val_acc: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    test_acc: Mapped[float | None] = mapped_column(Float)
    test_loss: Mapped[float | None] = mapped_column(Float)
    per_class_acc: Mapped[list[Any] | None]
    confusion: Mapped[list[Any] | None]
    class_names: Mapped[list[Any] | None]
    train_seconds: Mapped[float | None] = mapped_column(Float)
    eval_seconds: Mapped[float | None] = mapped_column(Float)
    images_per_s: Mapped[float | None] = mapped_column(Float)
    device: Mapped[str | None]
    environment: Mapped[dict[str, Any] | None]
    worker: Mapped[str | None]
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The best-validation model's class per test image and the true class, in split
    # order (schema 2): two models on the same test images are compared image by
    # image (McNemar's test), which accuracies alone cannot do.
    test_predictions: Mapped[list[Any] | None]
    test_targets: Mapped[list[Any] | None]


class Epoch(Base):
    __tablename__ = "harness_epochs"
    __table_args__ = (UniqueConstraint("trial_id", "epoch", name="uq_harness_epochs_trial_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("harness_trials.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    train_loss: Mapped[float | None] = mapped_column(Float)
    train_acc: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_acc: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    images_per_s: Mapped[float | None] = mapped_column(Float)
    # When the row was written (UTC).
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Latency(Base):
    __tablename__ = "harness_latencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("harness_candidates.id"), index=True)
    trial_id: Mapped[int | None] = mapped_column(
        ForeignKey("harness_trials.id", ondelete="SET NULL")
    )
    device: Mapped[str]
    batch: Mapped[int]
    threads: Mapped[int | None]
    median_ms: Mapped[float | None] = mapped_column(Float)
    p90_ms: Mapped[float | None] = mapped_column(Float)
    min_ms: Mapped[float | None] = mapped_column(Float)
    max_ms: Mapped[float | None] = mapped_column(Float)
    repeats: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Estimate(Base):
    """One cheap estimate of a candidate (a zero-cost proxy, a supernet's score), schema 4.

    A score is reused when the candidate, the estimator, the data (fingerprint), the
    seed (NULL for an estimator that has none) and the estimator's settings (their
    canonical JSON's sha256 in `settings_hash`) are the same."""

    __tablename__ = "harness_estimates"
    __table_args__ = (
        Index(
            "ix_harness_estimates_reuse",
            "candidate_id",
            "estimator",
            "data_fingerprint",
            "settings_hash",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("harness_candidates.id"))
    estimator: Mapped[str] = mapped_column(String(64))
    # Higher predicts more accurate; NULL where the estimator gave no finite number.
    score: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    data_fingerprint: Mapped[str | None]
    seed: Mapped[int | None]
    settings: Mapped[dict[str, Any] | None]
    settings_hash: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WeightsLink(Base):
    """Where a trial's best-validation weights were kept (schema 5): an artifact of
    Optuna's artifact store at `location` (a folder, s3://bucket, gs://bucket), the file
    `filename` with this SHA-256 and size. A trial reused in another study shares the
    artifact of the trial it copies. `removed_at` is set when `harness clean` removed the
    artifact (its Optuna study was deleted): the row stays, so that export can say so."""

    __tablename__ = "harness_weights"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(
        ForeignKey("harness_trials.id", ondelete="CASCADE"), unique=True
    )
    artifact_id: Mapped[str] = mapped_column(String(64), index=True)
    location: Mapped[str] = mapped_column(Text)
    filename: Mapped[str]
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
