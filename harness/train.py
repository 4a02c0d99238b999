"""One training run: tensors on the device, batched augmentation, a short loop.

The loop knows nothing of databases or Optuna: it reports each epoch to a
callback (which may record it, or raise to prune) and returns plain results.
"""

from __future__ import annotations

import copy
import math
import random
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.config import TrainConfig

if TYPE_CHECKING:
    from harness.data import Dataset

__all__ = [
    "EpochMetrics",
    "Evaluation",
    "NonFiniteLoss",
    "TrainResult",
    "Trainer",
    "resolve_precision",
    "seed_everything",
]


# Batches timed (after the first) before the progress output estimates the run time.
ESTIMATE_AFTER_BATCHES = 5


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
        self.batch_size = min(config.batch_size_on(device.type), len(self.train_split))
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
        self.optimizer = self._optimizer()
        self.steps_per_epoch = self._steps_per_epoch()
        self.scheduler = self._scheduler()
        use_scaler = self.precision == "fp16" and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    # -- setup -------------------------------------------------------------

    def _steps_per_epoch(self) -> int:
        steps = len(self.train_split) // self.batch_size
        if self.config.max_batches:
            steps = min(steps, self.config.max_batches)
        return max(steps, 1)

    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        params = self.model.parameters()
        if c.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, nesterov=True
            )
        cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay)

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        total = self.steps_per_epoch * self.config.epochs
        if self.config.schedule == "onecycle":
            if total < 4:  # too few steps for a warm-up and a decay: keep the rate constant
                return None
            # The warm-up must span at least one step or OneCycleLR divides by zero.
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=self.config.lr,
                total_steps=total,
                pct_start=max(0.25, 1.5 / total),
            )
        if self.config.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total)
        return None

    def autocast(self):
        if self.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return nullcontext()

    # -- the hot path ------------------------------------------------------

    def prepare(self, images_u8: torch.Tensor, augment: bool) -> torch.Tensor:
        """uint8 batch -> standardised float batch in the model's memory format."""
        from harness.data import to_float

        x = self.augment(images_u8) if augment else to_float(images_u8)
        if self.config.resize:
            x = F.interpolate(
                x,
                size=(self.config.resize, self.config.resize),
                mode="bilinear",
                align_corners=False,
            )
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

    def train_step(
        self, images_u8: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step; returns the loss and the number of correct predictions (device tensors)."""
        x = self.prepare(images_u8, augment=True)
        with self.autocast():
            logits = self.forward(x)
            loss = self.loss(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        hard = labels.argmax(-1) if labels.dim() == 2 else labels
        correct = (logits.detach().argmax(-1) == hard).sum()
        return loss.detach(), correct

    def _train_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """FER+ `probability` mode draws a hard label from the votes each time an image is seen."""
        if labels.dim() == 2 and getattr(self.train_split, "label_mode", "") == "probability":
            return torch.multinomial(labels, 1, generator=self.generator).squeeze(1)
        return labels

    def train_epoch(self, epoch: int, progress: bool = False) -> tuple[float, float, float, float]:
        """Returns (mean loss, accuracy, seconds, images/s)."""
        from harness.data import iterate_batches

        self.model.train()
        # On CUDA a NaN check is a sync: look every few steps, not every step.
        check_every = 1 if self.device.type == "cpu" else 25
        total_loss = torch.zeros((), device=self.device)
        total_correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        bar = _progress(self.steps_per_epoch, f"epoch {epoch}/{self.config.epochs}", progress)
        started = time.perf_counter()
        timed_from = started
        batches = iterate_batches(
            self.train_split,
            batch_size=self.batch_size,
            shuffle=True,
            generator=self.generator,
            drop_last=True,
        )
        for step, (images, labels) in enumerate(batches):
            if step >= self.steps_per_epoch:
                break
            loss, correct = self.train_step(images, self._train_labels(labels))
            total_loss += loss * len(images)
            total_correct += correct
            seen += len(images)
            if step % check_every == 0 and not math.isfinite(loss.item()):
                raise NonFiniteLoss(
                    f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step + 1}"
                )
            if bar is not None:
                bar.update(1)
                if step % 5 == 0:
                    elapsed = time.perf_counter() - started
                    bar.set_postfix(
                        loss=f"{loss.item():.3f}", img_s=f"{seen / max(elapsed, 1e-9):.0f}"
                    )
            if bar is not None and epoch == 1:
                timed_from = self._estimate(bar, step, timed_from)
        mean_loss = (total_loss / max(seen, 1)).item()
        if not math.isfinite(mean_loss):
            raise NonFiniteLoss(f"non-finite loss at epoch {epoch}")
        seconds = time.perf_counter() - started
        if bar is not None:
            bar.close()
        return mean_loss, total_correct.item() / max(seen, 1), seconds, seen / max(seconds, 1e-9)

    def _estimate(self, bar: Any, step: int, timed_from: float) -> float:
        """After the first timed batches of a run, write the expected epoch and run time
        above the bar. The first batch (allocation, warm-up) is left out of the timing.
        Returns when timing started."""
        if step == 0:
            return time.perf_counter()
        if step == min(ESTIMATE_AFTER_BATCHES, self.steps_per_epoch - 1):
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            epoch_s = (time.perf_counter() - timed_from) / step * self.steps_per_epoch
            run_s = epoch_s * self.config.epochs
            bar.write(
                f"  estimate: ~{_duration(epoch_s)} an epoch, ~{_duration(run_s)} for "
                f"{self.config.epochs} epoch(s) of training (timed over {step} batches)",
                file=sys.stderr,
            )
        return timed_from

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

    def fit(
        self,
        on_epoch: Callable[[EpochMetrics], None] | None = None,
        progress: bool = False,
    ) -> TrainResult:
        """Train for the configured epochs; keep the epoch with the best validation accuracy."""
        history: list[EpochMetrics] = []
        best_acc, best_epoch, best_state = -1.0, 0, None
        train_seconds = eval_seconds = 0.0
        stopped_early = False
        for epoch in range(1, self.config.epochs + 1):
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss, train_acc, seconds, images_per_s = self.train_epoch(epoch, progress)
            train_seconds += seconds
            started = time.perf_counter()
            val = self.evaluate("val")
            eval_seconds += time.perf_counter() - started
            metrics = EpochMetrics(
                epoch, train_loss, train_acc, val.loss, val.acc, lr, seconds, images_per_s
            )
            history.append(metrics)
            if val.acc > best_acc:
                best_acc, best_epoch = val.acc, epoch
                best_state = copy.deepcopy(
                    {k: v.detach().to("cpu") for k, v in self.model.state_dict().items()}
                )
            if progress:
                print(
                    f"  epoch {epoch:>3}: train loss {train_loss:.4f} acc {train_acc:.3f} | "
                    f"val loss {val.loss:.4f} acc {val.acc:.3f} | {images_per_s:.0f} img/s",
                    file=sys.stderr,
                )
            if on_epoch is not None:
                on_epoch(metrics)
            if self.config.patience and epoch - best_epoch >= self.config.patience:
                stopped_early = True
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        started = time.perf_counter()
        val = self.evaluate("val")
        test = self.evaluate("test")
        eval_seconds += time.perf_counter() - started
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


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes:
        return f"{minutes}m{rest:02d}s"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, leave=False, unit="batch", file=sys.stderr, dynamic_ncols=True
    )
