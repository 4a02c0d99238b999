"""Data-path speed: batched augmentation against a per-image torchvision pipeline, the
cached load of a FER2013-sized CSV, and synthetic generation.

Targets, asserted only with benchmarks on (under --benchmark-disable each path
runs once and the test skips its timing, see `_timing`):

- batched augmentation >= 4x the images/s of the per-image DataLoader: a ratio
  measured in one run, the two pipelines taking turns, best round of each;
- a cached load of the FER2013-sized file under 1 s (best round);
- synthetic generation >= 5,000 images/s (best round).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _timing import disabled, interleaved, skip_timing_when_disabled, spread

from harness.data import BatchAugment, iterate_batches, load_dataset
from harness.data.dataset import Split
from harness.data.synthetic import generate

IMAGES = 4096
QUICK_IMAGES = 512  # the per-image pipeline's path under --benchmark-disable, in seconds not tens
BATCH = 256
FER2013_ROWS = {"Training": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589}  # 35,887


AUGMENT_ROUNDS = 2
MIN_AUGMENT_RATIO = 4.0
MAX_CACHED_LOAD_S = 1.0
SYNTHETIC_IMAGES = 6000
MIN_SYNTHETIC_RATE = 5000.0


def environment() -> dict[str, object]:
    return {"device": "cpu", "threads": torch.get_num_threads(), "cpus": os.cpu_count()}


# --- augmentation ----------------------------------------------------------------------


def per_image_loader(images: torch.Tensor, labels: torch.Tensor) -> torch.utils.data.DataLoader:
    """The usual pipeline: a Dataset transforming one image at a time, batched by a DataLoader."""
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.RandomCrop(48, padding=4),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(10),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )

    class PerImage(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, index: int):
            return transform(images[index]), labels[index]

    return torch.utils.data.DataLoader(PerImage(), batch_size=BATCH, shuffle=True, num_workers=0)


def test_bench_batched_augmentation_vs_per_image_pipeline(benchmark):
    benchmark.group = "augment"
    quick = disabled(benchmark)
    count = QUICK_IMAGES if quick else IMAGES
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 1, 48, 48), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 7, (count,), generator=generator)
    split = Split(images, labels)
    augment = BatchAugment(crop_padding=4, flip=True, max_rotate_deg=10.0, seed=0)
    loader = per_image_loader(images, labels)

    def batched_epoch() -> None:
        for batch, _ in iterate_batches(split, BATCH, shuffle=True, generator=generator):
            augment(batch)

    def per_image_epoch() -> None:
        for _batch, _ in loader:
            pass

    # Under --benchmark-disable each pipeline runs once (the code path), without a warm-up.
    seconds = interleaved(
        1 if quick else AUGMENT_ROUNDS,
        {"batched": batched_epoch, "per_image": per_image_epoch},
        warmup=not quick,
    )
    benchmark(batched_epoch)
    skip_timing_when_disabled(benchmark)

    batched, per_image = count / min(seconds["batched"]), count / min(seconds["per_image"])
    ratio = batched / per_image
    benchmark.extra_info.update(
        environment(),
        batched_images_per_s=round(batched),
        per_image_images_per_s=round(per_image),
        ratio=round(ratio, 1),
        batched_s=spread(seconds["batched"]),
        per_image_s=spread(seconds["per_image"]),
    )
    print(
        f"\naugmentation: batched {batched:,.0f} images/s, per-image DataLoader "
        f"{per_image:,.0f} images/s, {ratio:.1f}x"
    )
    assert ratio >= MIN_AUGMENT_RATIO, (
        f"batched augmentation only {ratio:.1f}x the per-image pipeline"
    )


# --- cached FER2013-sized load ---------------------------------------------------------


def write_fake_fer2013(path: Path) -> None:
    """35,887 rows in Kaggle's format, written as fixed-width byte blocks (a few seconds).

    Pixels are single digits: the same 2304 values per row as the real file,
    in about half its bytes.
    """
    rng = np.random.default_rng(0)
    with open(path, "wb") as stream:
        stream.write(b"emotion,pixels,Usage\n")
        for usage, rows in FER2013_ROWS.items():
            pixels = rng.integers(0, 10, (rows, 48 * 48), dtype=np.uint8)
            suffix = f",{usage}\n".encode()
            width = 2 + 2 * 48 * 48 - 1 + len(suffix)
            block = np.empty((rows, width), dtype=np.uint8)
            block[:, 0] = ord("0") + rng.integers(0, 7, rows, dtype=np.uint8)
            block[:, 1] = ord(",")
            block[:, 2 : 2 + 2 * 48 * 48 : 2] = ord("0") + pixels
            block[:, 3 : 2 + 2 * 48 * 48 - 1 : 2] = ord(" ")
            block[:, 2 + 2 * 48 * 48 - 1 :] = np.frombuffer(suffix, dtype=np.uint8)
            stream.write(block.tobytes())


@pytest.fixture(scope="session")
def fer2013_sized_csv(tmp_path_factory) -> Iterator[tuple[Path, Path, float]]:
    """(csv, cache folder, seconds of the first, parsing load); the big files go at session end."""
    folder = tmp_path_factory.mktemp("fer2013-sized")
    path, cache = folder / "fer2013.csv", folder / "cache"
    write_fake_fer2013(path)
    started = time.perf_counter()
    load_dataset(f"fer2013:{path}", cache_dir=cache)
    first_load = time.perf_counter() - started
    yield path, cache, first_load
    path.unlink(missing_ok=True)
    for entry in cache.glob("*.npz"):
        entry.unlink()


def test_bench_cached_fer2013_sized_load(benchmark, fer2013_sized_csv):
    benchmark.group = "data"
    path, cache, first_load = fer2013_sized_csv

    def load():
        return load_dataset(f"fer2013:{path}", cache_dir=cache)

    ds = benchmark(load)
    assert sum(len(split) for split in ds.splits.values()) == 35_887
    assert ds.splits["train"].images.shape == (28_709, 1, 48, 48)
    skip_timing_when_disabled(benchmark)

    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(
        environment(),
        images=35_887,
        first_load_s=round(first_load, 2),
        cached_load_s=round(seconds, 3),
    )
    print(
        f"\nFER2013-sized csv: first load (parse) {first_load:.2f} s, cached load {seconds:.3f} s"
    )
    assert seconds < MAX_CACHED_LOAD_S, f"cached load took {seconds:.2f} s"


# --- synthetic generation --------------------------------------------------------------


def test_bench_synthetic_generation(benchmark):
    benchmark.group = "data"

    def run():
        return generate(n=SYNTHETIC_IMAGES, seed=1)

    data = benchmark(run)
    assert sum(len(labels) for _, labels in data.splits.values()) == SYNTHETIC_IMAGES
    skip_timing_when_disabled(benchmark)

    rate = SYNTHETIC_IMAGES / benchmark.stats.stats.min
    benchmark.extra_info.update(environment(), images=SYNTHETIC_IMAGES, images_per_s=round(rate))
    print(f"\nsynthetic generation: {rate:,.0f} images/s")
    assert rate >= MIN_SYNTHETIC_RATE, f"synthetic generation at {rate:.0f} images/s"
