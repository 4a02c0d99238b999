"""Data-path speed: batched augmentation against a per-image torchvision pipeline, the
cached load of a FER2013-sized CSV, and synthetic generation.

The ratio and the limits are measured with our own timers (best of several
repeats) so that the assertions also hold under --benchmark-disable; the
benchmark fixture records the same functions for --benchmark-only runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import BatchAugment, iterate_batches, load_dataset
from harness.data.dataset import Split
from harness.data.synthetic import generate

IMAGES = 4096
BATCH = 256
FER2013_ROWS = {"Training": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589}  # 35,887


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    fn()  # warm-up: allocator, thread pool, lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


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
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (IMAGES, 1, 48, 48), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 7, (IMAGES,), generator=generator)
    split = Split(images, labels)
    augment = BatchAugment(crop_padding=4, flip=True, max_rotate_deg=10.0, seed=0)
    loader = per_image_loader(images, labels)

    def batched_epoch() -> None:
        for batch, _ in iterate_batches(split, BATCH, shuffle=True, generator=generator):
            augment(batch)

    def per_image_epoch() -> None:
        for _batch, _ in loader:
            pass

    batched_s = best_of(5, batched_epoch)
    per_image_s = best_of(2, per_image_epoch)
    batched, per_image = IMAGES / batched_s, IMAGES / per_image_s
    ratio = batched / per_image
    benchmark.extra_info.update(
        environment(),
        batched_images_per_s=round(batched),
        per_image_images_per_s=round(per_image),
        ratio=round(ratio, 1),
    )
    print(
        f"\naugmentation: batched {batched:,.0f} images/s, per-image DataLoader {per_image:,.0f} images/s, {ratio:.1f}x"
    )
    benchmark(batched_epoch)
    assert ratio >= 4, f"batched augmentation only {ratio:.1f}x the per-image pipeline"


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

    ds = load()
    assert sum(len(split) for split in ds.splits.values()) == 35_887
    assert ds.splits["train"].images.shape == (28_709, 1, 48, 48)
    seconds = best_of(3, load)
    benchmark.extra_info.update(
        environment(),
        images=35_887,
        first_load_s=round(first_load, 2),
        cached_load_s=round(seconds, 3),
    )
    print(
        f"\nFER2013-sized csv: first load (parse) {first_load:.2f} s, cached load {seconds:.3f} s"
    )
    benchmark(load)
    assert seconds < 1.0, f"cached load took {seconds:.2f} s"


# --- synthetic generation --------------------------------------------------------------


def test_bench_synthetic_generation(benchmark):
    benchmark.group = "data"
    n = 6000

    def run():
        return generate(n=n, seed=1)

    seconds = best_of(2, run)
    rate = n / seconds
    benchmark.extra_info.update(environment(), images=n, images_per_s=round(rate))
    print(f"\nsynthetic generation: {rate:,.0f} images/s")
    benchmark(run)
    assert rate >= 5000, f"synthetic generation at {rate:.0f} images/s"
