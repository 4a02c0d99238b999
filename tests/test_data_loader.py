"""Split/Dataset behaviour, batch iteration, soft labels, duplicate and empty-class checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.data import Split, iterate_batches, load_dataset, parse_spec, sample_hard_labels
from harness.data.dataset import finish
from harness.data.types import RawData, raw_from_arrays, raw_to_arrays


def make_split(n: int = 10, soft: bool = False) -> Split:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    labels = torch.softmax(torch.randn(n, 3), 1) if soft else torch.arange(n) % 3
    return Split(images, labels, "probability" if soft else "hard")


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].tolist()


def test_batches_in_order_without_shuffle():
    split = make_split(10)
    batches = list(iterate_batches(split, batch_size=4))
    assert [ids(images) for images, _ in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [labels.tolist() for _, labels in batches][-1] == [2, 0]
    assert len(list(iterate_batches(split, batch_size=4, drop_last=True))) == 2


def test_shuffle_is_a_seeded_permutation():
    split = make_split(10)

    def epoch(seed):
        generator = torch.Generator().manual_seed(seed)
        return [
            i
            for images, _ in iterate_batches(split, 3, shuffle=True, generator=generator)
            for i in ids(images)
        ]

    assert sorted(epoch(0)) == list(range(10))
    assert epoch(0) == epoch(0) != epoch(1)
    generator = torch.Generator().manual_seed(0)
    first = [ids(i) for i, _ in iterate_batches(split, 10, shuffle=True, generator=generator)]
    second = [ids(i) for i, _ in iterate_batches(split, 10, shuffle=True, generator=generator)]
    assert first != second  # a fresh order every epoch
    with pytest.raises(ValueError):
        list(iterate_batches(split, 0))


def test_labels_follow_their_images_when_shuffled():
    split = make_split(12)
    for images, labels in iterate_batches(
        split, 5, shuffle=True, generator=torch.Generator().manual_seed(3)
    ):
        assert [i % 3 for i in ids(images)] == labels.tolist()


def test_sample_hard_labels_draws_from_the_distribution():
    one_hot = torch.eye(4)[[2, 0, 3]]
    assert sample_hard_labels(one_hot).tolist() == [2, 0, 3]
    dist = torch.tensor([[0.7, 0.3, 0.0]]).expand(20_000, 3)
    draws = sample_hard_labels(dist, torch.Generator().manual_seed(0))
    assert draws.dtype == torch.int64
    assert abs(draws.float().mean().item() - 0.3) < 0.02 and (draws != 2).all()
    again = sample_hard_labels(dist, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_split_properties_and_move():
    hard, soft = make_split(6), make_split(6, soft=True)
    assert not hard.soft and soft.soft and len(soft) == 6
    assert torch.equal(soft.hard_labels(), soft.labels.argmax(1))
    moved = soft.to("cpu")
    assert moved.label_mode == "probability" and torch.equal(moved.labels, soft.labels)
    assert hard.class_counts(4) == [2, 2, 2, 0]


def raw(train, val, test, labels=None, mode="hard", classes=("a", "b")) -> RawData:
    def part(rows, labs):
        images = (
            np.array(rows, dtype=np.uint8).reshape(len(rows), 1, 1, -1)
            if rows
            else np.zeros((0, 1, 1, 2), np.uint8)
        )
        return images, np.array(labs, dtype=np.int64)

    labels = labels or ([0] * len(train), [0] * len(val), [0] * len(test))
    return RawData(
        classes,
        mode,
        {
            "train": part(train, labels[0]),
            "val": part(val, labels[1]),
            "test": part(test, labels[2]),
        },
    )


def test_duplicates_are_counted_per_split_and_dropped_with_dedup():
    data = raw(
        [[1, 1], [2, 2]],
        [[1, 1], [3, 3]],
        [[3, 3], [2, 2], [4, 4]],
        labels=([0, 1], [0, 1], [1, 1, 0]),
    )
    ds = finish(data, parse_spec("synthetic"))
    assert ds.duplicates == {"val": 1, "test": 2}
    assert "1 val and 2 test images also appear in an earlier split" in ds.warnings[0]
    clean = finish(data, parse_spec("synthetic?dedup=1"))
    assert ids(clean.splits["val"].images) == [3] and ids(clean.splits["test"].images) == [4]
    assert clean.splits["test"].labels.tolist() == [0]
    assert "dedup: dropped 1 val and 2 test images" in clean.notes[-1]
    assert clean.dedup and not any("earlier split" in w for w in clean.warnings)


def test_empty_classes_and_empty_splits_are_warned_by_name():
    data = raw([[1, 1], [2, 2]], [[3, 3]], [], labels=([0, 1], [1], []), classes=("calm", "cross"))
    ds = finish(data, parse_spec("synthetic"))
    assert ds.warnings == ["split val has no image of class calm", "split test is empty"]


def test_fingerprint_covers_pixels_labels_and_mode():
    base = raw([[1, 1]], [[2, 2]], [[3, 3]])
    spec = parse_spec("synthetic")
    reference = finish(base, spec).fingerprint
    assert finish(raw([[1, 1]], [[2, 2]], [[3, 3]]), spec).fingerprint == reference
    assert finish(raw([[1, 0]], [[2, 2]], [[3, 3]]), spec).fingerprint != reference
    assert (
        finish(raw([[1, 1]], [[2, 2]], [[3, 3]], labels=([1], [0], [0])), spec).fingerprint
        != reference
    )
    assert finish(raw([[1, 1]], [[2, 2]], [[3, 3]], mode="majority"), spec).fingerprint != reference


def test_dataset_summary_and_to():
    ds = load_dataset("synthetic?n=70")
    summary = ds.summary()
    assert summary["spec"] == ds.spec and summary["sizes"] == {"train": 50, "val": 10, "test": 10}
    assert sum(summary["counts"]["train"]) == 50
    assert ds.to("cpu").splits["train"].images.device.type == "cpu"
    assert ds.num_classes == 7


def test_the_crop_goes_through_the_cache_and_into_the_dataset():
    cropped = raw([[1, 1], [2, 2]], [[3, 3]], [[4, 4]])
    cropped.crop = "centre-square"
    again = raw_from_arrays(raw_to_arrays(cropped))
    assert again.crop == "centre-square"
    assert finish(again, parse_spec("synthetic")).crop == "centre-square"
    # A cache entry written before the crop was kept (only the synthetic source caches a
    # RawData, and it never cropped) reads as uncropped.
    old = raw_to_arrays(raw([[1, 1], [2, 2]], [[3, 3]], [[4, 4]]))
    del old["crop"]
    assert raw_from_arrays(old).crop == "none"
    assert load_dataset("synthetic?n=21&size=16").crop == "none"
    with pytest.raises(AssertionError, match="unknown crop 'square'"):
        RawData(("a",), "hard", {}, crop="square")
