"""Hostile data: empty splits, a one-image training split, numbers that are not numbers in
CK+ and FER+ label files, a preview too large to hold. Each is one line naming the data,
before any training and before any database is written."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from _refusal import refused
from PIL import Image

from harness.data import load_dataset, require_trainable
from harness.errors import DataError

TRAIN = ["train", "RI", "--epochs", "1", "--threads", "1"]


def write_folder(root: Path, counts: dict[str, int]) -> Path:
    """DIR/split/class/*.png with `counts[split]` images of each of two classes."""
    for split in ("train", "val", "test"):
        for label in ("calm", "cross"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(counts[split]):
                pixels = np.full((16, 16), 10 * index + (label == "cross") * 100, np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"train": 3, "val": 0, "test": 0}, "the val split holds 0 images"),
        ({"train": 3, "val": 2, "test": 0}, "the test split holds 0 images"),
        ({"train": 0, "val": 2, "test": 2}, "the train split holds 0 images"),
    ],
)
def test_an_empty_split_is_refused_before_training(tmp_path, capsys, counts, message):
    root = write_folder(tmp_path / "faces", counts)
    db = tmp_path / "h.db"
    line = refused([*TRAIN, "--data", f"folder:{root}", "--db", f"sqlite:///{db}"], capsys)
    assert message in line and f"folder:{root}" in line
    assert not db.exists()


def test_a_one_image_training_split_is_refused_with_the_reason(tmp_path, capsys):
    root = write_folder(tmp_path / "faces", {"train": 1, "val": 1, "test": 1})
    for extra in (root / "train" / "cross").iterdir():
        extra.unlink()  # one training image in all
    db = tmp_path / "h.db"
    argv = [*TRAIN, "--data", f"folder:{root}", "--head", "paper", "--db", f"sqlite:///{db}"]
    line = refused(argv, capsys)
    assert "the train split holds 1 image" in line and "batch normalisation" in line
    assert not db.exists()


def test_dedup_that_empties_a_split_is_named(tmp_path):
    root = write_folder(tmp_path / "faces", {"train": 2, "val": 1, "test": 1})
    shown = load_dataset(f"folder:{root}?dedup=1", cache=False)  # `data show` shows it
    assert len(shown.splits["val"]) == 0
    with pytest.raises(DataError, match="the val split holds 0 images after dedup"):
        require_trainable(shown)


@pytest.mark.parametrize("option", ["difficulty=nan", "difficulty=inf"])
def test_a_non_finite_spec_option_is_refused(capsys, option):
    line = refused(["data", "show", f"synthetic?{option}"], capsys)
    assert "option 'difficulty' of synthetic must be a finite number" in line


@pytest.mark.parametrize("code", ["nan", "inf", "-inf", "1234567890123456789012345"])
def test_a_ckplus_label_that_is_not_a_code_names_its_file(tmp_path, capsys, code):
    from _ckplus_release import write_release

    root = tmp_path / "CK+"
    write_release(root, {(5, 1): (3, 3), (10, 1): (3, 5), (11, 1): (3, 7)})
    label = next((root / "Emotion").rglob("*_emotion.txt"))
    label.write_text(f"   {code}\n")
    line = refused(["data", "show", f"ckplus:{root}?folds=3", "--no-cache"], capsys)
    assert str(label) in line and "CK+ emotion codes are 1..7" in line


@pytest.mark.parametrize("vote", ["1234567890123456789012345", "²", "nan", "inf", "1e3"])
def test_a_ferplus_vote_that_is_not_a_count_names_its_row(tmp_path, vote):
    from harness.data.ferplus import VOTE_COLUMNS, read_votes_csv

    path = tmp_path / "fer2013new.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        writer.writerow(["Training", "fer0000000.png", 10, *[0] * 9])
        writer.writerow(["Training", "fer0000001.png", vote, *[0] * 9])
    with pytest.raises(DataError) as error:
        read_votes_csv(path)
    message = str(error.value)
    assert (
        str(path) in message
        and "3" in message
        and "must be a non-negative integer, got" in message
        and "(at most 4 digits)" in message
    )


def test_a_preview_too_large_to_hold_is_refused_before_drawing(tmp_path, capsys):
    output = tmp_path / "p.png"
    argv = ["data", "preview", "synthetic?n=300", "--per-class", "1000", "--scale", "32"]
    line = refused([*argv, "-o", str(output)], capsys)
    assert "more than PIL opens" in line and "pixels" in line
    assert not output.exists()


def test_a_preview_is_only_as_wide_as_the_largest_class(tmp_path, capsys):
    from harness.cli import main

    output = tmp_path / "p.png"
    argv = ["data", "preview", "synthetic?n=60&size=16", "--per-class", "1000", "--scale", "1"]
    assert main([*argv, "-o", str(output)]) == 0
    capsys.readouterr()
    ds = load_dataset("synthetic?n=60&size=16")
    largest = int(np.bincount(ds.splits["train"].hard_labels().numpy()).max())
    width = Image.open(output).width
    assert width < 1000 * 18  # not 1000 columns
    assert largest * 18 <= width <= largest * 18 + 400  # the columns, plus the captions
