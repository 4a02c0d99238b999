"""One training run: tensors on the device, batched augmentation, a short loop.

The loop knows nothing of databases or Optuna: `Trainer.epochs` yields each
epoch's metrics to its caller (which may record them, stop, or raise to prune),
and `Trainer.fit` adds what a trial wants on top: the best epoch's weights, early
stopping, and the final validation and test evaluation. What the user sees while
it trains hangs off a hook (`harness.train_progress`), outside the step.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.config import TrainConfig
from harness.train_progress import OnBatch, TrainProgress

if TYPE_CHECKING:
    from harness.data import Dataset

__all__ = [
    "EpochMetrics",
    "EpochTraining",
    "Evaluation",
    "NonFiniteLoss",
    "TrainResult",
    "Trainer",
    "resolve_precision",
    "seed_everything",
]


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the run cannot go on."""


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EpochTraining(NamedTuple):
    """One pass over the training split, as `Trainer.train_epoch` returns it."""

    loss: float
    acc: float
    seconds: float
    images_per_s: float


@dataclass
class Evaluation:
    loss: float
    acc: float
    per_class_acc: list[float | None]
    confusion: list[list[int]]
    # Per image, in split order: what McNemar's test between two models needs.
    predictions: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)


@dataclass
class TrainResult:
    epochs: list[EpochMetrics]
    best_epoch: int
    val: Evaluation
    test: Evaluation
    train_seconds: float
    eval_seconds: float
    images_per_s: float
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_precision(requested: str, device: torch.device) -> str:
    """`auto`: bf16 on CUDA cards that support it, fp16 on older ones, fp32 on the CPU."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


class Trainer:
    """Holds the model, optimiser and device-resident data of one run."""

    def __init__(
        self, model: nn.Module, dataset: Dataset, config: TrainConfig, device: torch.device
    ) -> None:
        from harness.data import BatchAugment

        self.config = config
        self.device = device
        self.classes = tuple(dataset.classes)
        self.num_classes = len(self.classes)
        self.precision = resolve_precision(config.precision, device)
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        self.splits = {name: split.to(device) for name, split in dataset.splits.items()}
        self.train_split = self.splits["train"]
        if len(self.train_split) == 0:
            from harness.errors import DataError

            raise DataError(f"the training split of {dataset.spec} is empty")
        # FER+ `probability` mode draws a hard label from the votes each time an image is seen.
        self.draws_labels = self.train_split.soft and self.train_split.label_mode == "probability"
        self.batch_size = min(config.batch_size_on(device.type), len(self.train_split))
        steps = len(self.train_split) // self.batch_size
        self.steps_per_epoch = max(
            min(steps, config.max_batches) if config.max_batches else steps, 1
        )
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.augment = BatchAugment(
            crop_padding=config.crop_padding,
            padding_mode=config.crop_padding_mode,
            flip=config.flip,
            max_rotate_deg=config.rotate_deg,
            seed=config.seed,
        )
        # Standardise with the training split's statistics, computed once.
        sample = self.train_split.images[:4096].float() / 255.0
        self.mean = sample.mean().item()
        self.std = max(sample.std().item(), 1e-3)
        self.output = getattr(model, "output_activation", "softmax")
        self.model = model.to(device, memory_format=self.memory_format)
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.optimizer = _optimizer(self.model, config)
        self.scheduler = _scheduler(self.optimizer, config, self.steps_per_epoch * config.epochs)
        use_scaler = self.precision == "fp16" and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        # On CUDA a NaN check is a sync: look every few steps, not every step.
        self.nan_check_every = 1 if device.type == "cpu" else 25

    def autocast(self):
        if self.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return nullcontext()

    def prepare(self, images_u8: torch.Tensor, augment: bool) -> torch.Tensor:
        """uint8 batch -> standardised float batch in the model's memory format."""
        from harness.data import to_float

        x = self.augment(images_u8) if augment else to_float(images_u8)
        if self.config.resize:
            size = (self.config.resize, self.config.resize)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=self.memory_format)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        smoothing = self.config.label_smoothing
        if self.output == "sigmoid":
            target = labels if labels.dim() == 2 else F.one_hot(labels, self.num_classes).float()
            target = target * (1 - smoothing) + smoothing / self.num_classes
            if self.config.output_loss == "bce":
                return F.binary_cross_entropy_with_logits(logits, target)
            # Keras' categorical cross-entropy (the paper's loss) divides the
            # sigmoids by their sum first; in log space, for stability.
            log_p = F.logsigmoid(logits)
            log_p = log_p - log_p.logsumexp(-1, keepdim=True)
            return -(target * log_p).sum(-1).mean()
        if labels.dim() == 2:  # soft targets (FER+ crossentropy mode)
            target = labels * (1 - smoothing) + smoothing / self.num_classes
            return -(target * logits.log_softmax(-1)).sum(-1).mean()
        return F.cross_entropy(logits, labels, label_smoothing=smoothing)

    # -- the loop ----------------------------------------------------------

    def train_epoch(self, epoch: int, on_batch: OnBatch | None = None) -> EpochTraining:
        """One pass over the shuffled training split, at most `steps_per_epoch` steps.

        The loss and the correct count stay on the device; `.item()` is the NaN check.
        Out of memory and Ctrl-C (or SIGTERM, `harness.signals`) go to the caller,
        which records them (`harness.trial.run_trial`)."""
        from harness.data import iterate_batches, sample_hard_labels

        self.model.train()
        total_loss = torch.zeros((), device=self.device)
        total_correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        started = time.perf_counter()
        batches = iterate_batches(
            self.train_split, self.batch_size, shuffle=True, generator=self.generator,
            drop_last=True,
        )  # fmt: skip
        for step, (images, labels) in enumerate(itertools.islice(batches, self.steps_per_epoch)):
            if self.draws_labels:
                labels = sample_hard_labels(labels, self.generator)
            x = self.prepare(images, augment=True)
            with self.autocast():
                logits = self.forward(x)
                loss = self.loss(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None:
                self.scheduler.step()

            loss = loss.detach()
            hard = labels.argmax(-1) if labels.dim() == 2 else labels
            total_loss += loss * len(images)
            total_correct += (logits.detach().argmax(-1) == hard).sum()
            seen += len(images)
            if step % self.nan_check_every == 0 and not math.isfinite(loss.item()):
                raise NonFiniteLoss(
                    f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step + 1}"
                )
            if on_batch is not None:
                on_batch(step, loss, seen)
        mean_loss = (total_loss / max(seen, 1)).item()
        if not math.isfinite(mean_loss):
            raise NonFiniteLoss(f"non-finite loss at epoch {epoch}")
        seconds = time.perf_counter() - started
        accuracy = total_correct.item() / max(seen, 1)
        return EpochTraining(mean_loss, accuracy, seconds, seen / max(seconds, 1e-9))

    def epochs(
        self,
        *,
        first: int = 1,
        validate: Callable[[], Evaluation] | None = None,
        progress: TrainProgress | None = None,
    ) -> Iterator[tuple[EpochMetrics, float]]:
        """Train epochs `first` to the configured last; yield each one's metrics, validated
        by `validate` (default: the val split), and the seconds validation took. The
        caller stops early by leaving the loop."""
        for epoch in range(first, self.config.epochs + 1):
            lr = self.optimizer.param_groups[0]["lr"]
            with progress.bar(epoch) if progress else nullcontext() as on_batch:
                train = self.train_epoch(epoch, on_batch)
            started = time.perf_counter()
            val = validate() if validate else self.evaluate("val")
            metrics = EpochMetrics(
                epoch, train.loss, train.acc, val.loss, val.acc, lr, train.seconds,
                train.images_per_s,
            )  # fmt: skip
            yield metrics, time.perf_counter() - started

    def fit(
        self,
        on_epoch: Callable[[EpochMetrics], None] | None = None,
        progress: bool = False,
    ) -> TrainResult:
        """Train for the configured epochs (fewer if validation accuracy stalls for
        `patience` epochs); keep the epoch with the best validation accuracy."""
        shown = TrainProgress(self.config.epochs, self.steps_per_epoch, self.device)
        history: list[EpochMetrics] = []
        best_acc, best_epoch, best_state = -1.0, 0, None
        eval_seconds = 0.0
        stopped_early = False
        for metrics, seconds in self.epochs(progress=shown if progress else None):
            history.append(metrics)
            eval_seconds += seconds
            if metrics.val_acc > best_acc:
                best_acc, best_epoch = metrics.val_acc, metrics.epoch
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
                }
            if progress:
                shown.epoch_done(metrics)
            if on_epoch is not None:
                on_epoch(metrics)
            if self.config.patience and metrics.epoch - best_epoch >= self.config.patience:
                stopped_early = True
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        started = time.perf_counter()
        val = self.evaluate("val")
        test = self.evaluate("test")
        eval_seconds += time.perf_counter() - started
        train_seconds = sum(m.seconds for m in history)
        total_images = sum(m.images_per_s * m.seconds for m in history)
        return TrainResult(
            epochs=history,
            best_epoch=best_epoch,
            val=val,
            test=test,
            train_seconds=train_seconds,
            eval_seconds=eval_seconds,
            images_per_s=total_images / max(train_seconds, 1e-9),
            stopped_early=stopped_early,
        )

    @torch.inference_mode()
    def evaluate(self, split_name: str) -> Evaluation:
        from harness.data import iterate_batches

        split = self.splits[split_name]
        self.model.eval()
        confusion = torch.zeros(
            self.num_classes * self.num_classes, dtype=torch.long, device=self.device
        )
        total_loss = torch.zeros((), device=self.device)
        count = 0
        predicted, targets = [], []
        for images, labels in iterate_batches(
            split, batch_size=self.config.eval_batch_on(self.device.type), shuffle=False
        ):
            x = self.prepare(images, augment=False)
            with self.autocast():
                logits = self.forward(x)
            total_loss += self.loss(logits, labels) * len(images)
            hard = labels.argmax(-1) if labels.dim() == 2 else labels
            guess = logits.argmax(-1)
            confusion += torch.bincount(
                hard * self.num_classes + guess, minlength=self.num_classes**2
            )
            predicted.append(guess)
            targets.append(hard)
            count += len(images)
        matrix = confusion.view(self.num_classes, self.num_classes).cpu()
        support = matrix.sum(1)
        per_class = [
            (matrix[i, i].item() / support[i].item()) if support[i] > 0 else None
            for i in range(self.num_classes)
        ]
        return Evaluation(
            loss=(total_loss / max(count, 1)).item(),
            acc=(matrix.diag().sum().item() / max(count, 1)),
            per_class_acc=per_class,
            confusion=matrix.tolist(),
            predictions=torch.cat(predicted).tolist() if predicted else [],
            targets=torch.cat(targets).tolist() if targets else [],
        )


def _optimizer(model: nn.Module, c: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if c.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, nesterov=True
        )
    cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay)


def _scheduler(
    optimizer: torch.optim.Optimizer, c: TrainConfig, total: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if c.schedule == "onecycle":
        if total < 4:  # too few steps for a warm-up and a decay: keep the rate constant
            return None
        # The warm-up must span at least one step or OneCycleLR divides by zero.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=c.lr, total_steps=total, pct_start=max(0.25, 1.5 / total)
        )
    if c.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return None
