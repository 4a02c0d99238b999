"""Accuracy parity: the harness set up like a plain PyTorch loop must train as well as that loop.

Issue 17: on FER2013 the harness configured like a 40-line loop (Adam 1e-3,
batch 64, crop + flip, no schedule, no smoothing) trailed it by about 3
points. The one setting the flags could not match was the crop's padding
(zeros in the harness, reflect in the loop); with `crop_padding_mode="reflect"`
the two agree within seed noise (docs/protocol.md, "Accuracy parity").
This benchmark trains both on the same FER2013-sized synthetic data from the
same initial weights, over several seeds, and fails when the harness's mean
test accuracy falls more than MARGIN below the plain loop's.

Scale: timm's resnet18 at full width costs ~0.5 s a batch of 64 on one CPU
thread (about 4 minutes an epoch of 28,709 images), too slow for a table of
seeds x epochs; the comparison uses the same network at a quarter of its
channels (16-32-64-128, ~0.05 s a batch), which keeps the stock stem, the
residual stages and the BatchNorms the pipeline interacts with. Both loops
record val and test accuracy after every epoch; with a constant learning
rate the first 3 epochs of a 6-epoch run are a 3-epoch run, so one run per
seed gives both budgets. The full run is 3 seeds x 6 epochs x 2 loops on
one thread: 36 minutes here (2 CPUs, other work on the second one).

The second benchmark holds the `fast` protocol's own defaults to the plain
loop at the same budgets (issue 17, step 2: `fast` with batch 128 and
one-cycle once trailed it by 4-10 points). A schedule may span the run (one-cycle
does), so `fast` trains once per budget: about 40 minutes in full.

Under --benchmark-disable (the CI command) each trains on tiny images whose class
is their brightness (`brightness_levels`: 448 training images of 16x16, one seed,
6 epochs of 7 steps, a few seconds) and must still fail a broken pipeline: every
loop must reach QUICK_FLOOR, 3.5x chance (seeds 0-2 measured 0.78-0.97 for the
plain loop and the harness, 0.62-0.81 for `fast`; with shuffled labels or a zero
learning rate the harness and `fast` scored 0.15-0.29), and the harness set up like the plain loop must
stay within QUICK_MARGIN of it (gaps -0.04 to +0.04 over seeds 0-2). `fast` is
held to the floor only: it pads crops with zeros, and on these images black bars
are a cue (about 10 points, and noisy) that the full-size faces do not give.
CPU threads: $HARNESS_BENCH_THREADS, else one in the quick suite.
"""

from __future__ import annotations

import copy
import statistics
from typing import Any

import pytest
import torch
from _paper_nets import bench_threads, quick
from _plain_loop import Curve, train_plain

from harness.config import TrainConfig
from harness.data import FER2013_CLASSES, Dataset, Split, load_dataset
from harness.train import Trainer, seed_everything

FULL_DATA = "synthetic?n=41013&size=48&difficulty=0.8"  # 28,709 training images, as FER2013
QUICK_DATA = "brightness-levels"  # not a data spec: built here, see brightness_levels
SEEDS = (0, 1, 2)
EPOCHS = (3, 6)
QUICK_EPOCHS = 6
QUICK_CHANNELS = (8, 16, 32, 64)
QUICK_FLOOR = 0.5  # quick mode: every loop's test accuracy; chance is 1/7
QUICK_MARGIN = 0.10  # quick mode: allowed shortfall of the harness against the plain loop
CHANNELS = (16, 32, 64, 128)
# Allowed shortfall of the harness's 3-seed mean (accuracy, not points). Measured at 3
# epochs: each loop's sd over seeds 1.2-1.3 points, so the difference of two 3-seed means
# has an sd of about 1 point (0.4 paired: same initial weights); the harness trailed by
# 0.4. 1.5 points is 1.5 sd unpaired, 4 sd paired, and half the gap issue 17 reported
# (docs/protocol.md, "Accuracy parity with a plain loop").
MARGIN = 0.015


def resnet18(seed: int, channels: tuple[int, ...], num_classes: int = 7) -> torch.nn.Module:
    """timm's resnet18 (stock stem) with `channels` per stage, initialised from `seed`."""
    import timm

    seed_everything(seed)
    return timm.create_model(
        "resnet18", in_chans=1, num_classes=num_classes, channels=channels, stem_width=channels[0]
    )


def as_plain_config(data: str, epochs: int, seed: int, **changes: Any) -> TrainConfig:
    """`harness train timm:resnet18 --baseline-stem timm --optimizer adam --lr 1e-3
    --schedule none --weight-decay 0 --label-smoothing 0 --rotate-deg 0 --batch-size 64
    --crop-padding-mode reflect`: the plain loop's settings, its padding included."""
    values: dict[str, Any] = dict(
        arch="timm:resnet18",
        data=data,
        device="cpu",
        baseline_stem="timm",
        optimizer="adam",
        lr=1e-3,
        schedule="none",
        weight_decay=0.0,
        label_smoothing=0.0,
        rotate_deg=0.0,
        batch_size=64,
        crop_padding_mode="reflect",
        epochs=epochs,
        seed=seed,
    )
    values.update(changes)
    return TrainConfig.from_protocol("fast", **values)


def harness_curve(model: torch.nn.Module, dataset: Dataset, config: TrainConfig) -> Curve:
    """Train with `Trainer.fit`; test accuracy after every epoch as well as val."""
    trainer = Trainer(model, dataset, config, torch.device("cpu"))
    curve = Curve()

    def record(metrics: Any) -> None:
        curve.val.append(metrics.val_acc)
        curve.test.append(trainer.evaluate("test").acc)

    result = trainer.fit(on_epoch=record)
    # fit's own selection and the curve's agree: the same epoch, the same test score.
    assert result.test.acc == pytest.approx(curve.selected(config.epochs), abs=1e-9)
    return curve


def compare(
    dataset: Dataset, data: str, seeds: tuple[int, ...], epochs: int, channels: tuple[int, ...]
) -> dict[str, list[Curve]]:
    curves: dict[str, list[Curve]] = {"plain": [], "harness": []}
    for seed in seeds:
        model = resnet18(seed, channels, len(dataset.classes))
        curves["plain"].append(train_plain(copy.deepcopy(model), dataset, epochs, seed))
        config = as_plain_config(data, epochs, seed)
        curves["harness"].append(harness_curve(copy.deepcopy(model), dataset, config))
    return curves


def brightness_levels(train: int = 448, size: int = 16, seed: int = 0) -> Dataset:
    """Images whose class is their mean brightness (7 levels 30 apart, each image offset
    by N(0, 5), pixel noise N(0, 30)): learnt within a few dozen steps by a pipeline that
    works, at chance by one that does not. The quick check's data."""
    generator = torch.Generator().manual_seed(seed)
    splits = {}
    for name, count in (("train", train), ("val", train // 4), ("test", train // 4)):
        labels = torch.arange(count) % len(FER2013_CLASSES)
        level = 40 + 30 * labels.float() + 5 * torch.randn(count, generator=generator)
        pixels = level[:, None, None, None] + 30 * torch.randn(
            count, 1, size, size, generator=generator
        )
        splits[name] = Split(pixels.clamp(0, 255).round().to(torch.uint8), labels)
    return Dataset(
        spec=QUICK_DATA, classes=FER2013_CLASSES, image_shape=(1, size, size), splits=splits,
        fingerprint=f"{QUICK_DATA}-{train}-{size}-{seed}", label_mode="hard",
    )  # fmt: skip


def scale(benchmark) -> tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Data, seeds, epoch budgets and channels: the measurement, or the quick check."""
    if quick(benchmark):
        return QUICK_DATA, (0,), (QUICK_EPOCHS,), QUICK_CHANNELS
    return FULL_DATA, SEEDS, EPOCHS, CHANNELS


def load(data: str) -> Dataset:
    return brightness_levels() if data == QUICK_DATA else load_dataset(data)


def assert_quick_floor(scores: dict[str, float]) -> None:
    low = {loop: round(acc, 4) for loop, acc in scores.items() if acc < QUICK_FLOOR}
    assert not low, f"test accuracy below {QUICK_FLOOR} on {QUICK_DATA} (chance 1/7): {low}"


def summary(curves: list[Curve], epochs: int) -> tuple[float, float]:
    scores = [c.selected(epochs) for c in curves]
    return statistics.mean(scores), statistics.stdev(scores) if len(scores) > 1 else 0.0


def test_bench_accuracy_harness_vs_plain_loop(benchmark) -> None:
    benchmark.group = "accuracy"
    with bench_threads(benchmark):
        data, seeds, epochs, channels = scale(benchmark)
        dataset = load(data)
        curves = benchmark.pedantic(
            compare,
            args=(dataset, data, seeds, max(epochs), channels),
            rounds=1,
            iterations=1,
        )
    table = {}
    for budget in epochs:
        for loop in ("plain", "harness"):
            mean, sd = summary(curves[loop], budget)
            table[f"{loop}_{budget}ep"] = (round(mean, 4), round(sd, 4))
        paired = [
            h.selected(budget) - p.selected(budget)
            for h, p in zip(curves["harness"], curves["plain"], strict=True)
        ]
        table[f"gap_{budget}ep"] = round(statistics.mean(paired), 4)
    benchmark.extra_info.update(
        data=data, seeds=list(seeds), channels=list(channels), margin=MARGIN, **table
    )
    print("\n" + "\n".join(f"  {key}: {value}" for key, value in table.items()))
    for loop in ("plain", "harness"):
        assert all(len(c.test) == max(epochs) for c in curves[loop])
        assert all(0.0 <= a <= 1.0 for c in curves[loop] for a in c.val + c.test)
    if quick(benchmark):
        (budget,) = epochs
        plain, _ = summary(curves["plain"], budget)
        harness, _ = summary(curves["harness"], budget)
        assert_quick_floor({"plain": plain, "harness": harness})
        assert harness >= plain - QUICK_MARGIN, (
            f"{QUICK_DATA}, {budget} epochs: harness {harness:.4f} trails the plain loop "
            f"{plain:.4f} by more than {QUICK_MARGIN}"
        )
        return
    for budget in epochs:
        plain, _ = summary(curves["plain"], budget)
        harness, _ = summary(curves["harness"], budget)
        assert harness >= plain - MARGIN, (
            f"{budget} epochs: harness {harness:.4f} trails the plain loop {plain:.4f} "
            f"by more than {MARGIN} (mean over seeds {list(seeds)})"
        )


def fast_config(data: str, epochs: int, seed: int) -> TrainConfig:
    """`harness train timm:resnet18 --baseline-stem timm --epochs N`: the `fast` defaults."""
    return TrainConfig.from_protocol(
        "fast", arch="timm:resnet18", data=data, device="cpu", baseline_stem="timm",
        epochs=epochs, seed=seed,
    )  # fmt: skip


def compare_fast(
    dataset: Dataset, data: str, seeds: tuple[int, ...], budgets: tuple[int, ...],
    channels: tuple[int, ...],
) -> dict[str, dict[int, list[float]]]:  # fmt: skip
    """Test accuracy per budget: the plain loop (one constant-rate run covers every budget)
    and the `fast` defaults (one run per budget: a schedule may span the run)."""
    scores: dict[str, dict[int, list[float]]] = {"plain": {}, "fast": {}}
    for seed in seeds:
        model = resnet18(seed, channels, len(dataset.classes))
        curve = train_plain(copy.deepcopy(model), dataset, max(budgets), seed)
        for budget in budgets:
            scores["plain"].setdefault(budget, []).append(curve.selected(budget))
            config = fast_config(data, budget, seed)
            trainer = Trainer(copy.deepcopy(model), dataset, config, torch.device("cpu"))
            scores["fast"].setdefault(budget, []).append(trainer.fit().test.acc)
    return scores


def test_bench_accuracy_fast_protocol_vs_plain_loop(benchmark) -> None:
    """The default protocol must train no worse than the plain loop at the search's short
    budgets (issue 17, step 2): `fast` once trailed it by 10 points at 3 epochs."""
    benchmark.group = "accuracy"
    with bench_threads(benchmark):
        data, seeds, budgets, channels = scale(benchmark)
        dataset = load(data)
        scores = benchmark.pedantic(
            compare_fast, args=(dataset, data, seeds, budgets, channels), rounds=1, iterations=1
        )
    table = {}
    for budget in budgets:
        for loop in ("plain", "fast"):
            values = scores[loop][budget]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            table[f"{loop}_{budget}ep"] = (round(statistics.mean(values), 4), round(sd, 4))
    benchmark.extra_info.update(
        data=data, seeds=list(seeds), channels=list(channels), margin=MARGIN, **table
    )
    print("\n" + "\n".join(f"  {key}: {value}" for key, value in table.items()))
    for loop in ("plain", "fast"):
        assert all(len(scores[loop][b]) == len(seeds) for b in budgets)
        assert all(0.0 <= a <= 1.0 for b in budgets for a in scores[loop][b])
    if quick(benchmark):
        (budget,) = budgets
        assert_quick_floor({loop: scores[loop][budget][0] for loop in ("plain", "fast")})
        return
    for budget in budgets:
        plain = statistics.mean(scores["plain"][budget])
        fast = statistics.mean(scores["fast"][budget])
        assert fast >= plain - MARGIN, (
            f"{budget} epochs: the fast protocol {fast:.4f} trails the plain loop {plain:.4f} "
            f"by more than {MARGIN} (mean over seeds {list(seeds)})"
        )
