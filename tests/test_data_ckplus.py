"""CK+: class folders (CK+48) and the original release, with subject-independent folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _ckplus_release import margined_frame, write_release
from PIL import Image

from harness.cli import main
from harness.data import load_dataset
from harness.data.ckplus import assign_folds
from harness.data.images import read_all
from harness.errors import DataError

CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def tagged_image(subject: int, serial: int, size: int = 48) -> np.ndarray:
    """An image whose first two pixels say who and which it is (survives loading untouched)."""
    image = np.full((size, size), 128, dtype=np.uint8)
    image[0, 0], image[0, 1] = subject, serial % 256
    image[0, 2] = serial // 256
    return image


def tags(split) -> list[tuple[int, int]]:
    pixels = split.images[:, 0, 0, :3].numpy().astype(int)
    return [(s, lo + 256 * hi) for s, lo, hi in pixels]


@pytest.fixture
def ck48(tmp_path) -> tuple[Path, dict[tuple[int, int], str]]:
    """CK+48 layout: 12 subjects with 1-3 sequences, 3 frames each, in class folders."""
    root = tmp_path / "CK+48"
    truth: dict[tuple[int, int], str] = {}
    rng = np.random.default_rng(0)
    serial = 0
    for subject in range(10, 22):
        for sequence in range(1, 2 + subject % 3):
            emotion = CLASSES[int(rng.integers(len(CLASSES)))]
            folder = root / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for frame in range(8, 11):
                name = f"S{subject:03d}_{sequence:03d}_{frame:08d}.png"
                Image.fromarray(tagged_image(subject, serial)).save(folder / name)
                truth[(subject, serial)] = emotion
                serial += 1
    return root, truth


def test_class_folders_folds_are_subject_independent_and_cover_everything(ck48):
    root, truth = ck48
    folds = 4
    test_sets = []
    for fold in range(folds):
        ds = load_dataset(f"ckplus:{root}?folds={folds}&fold={fold}")
        assert ds.classes == tuple(sorted({*truth.values()}))
        subjects = {name: {s for s, _ in tags(split)} for name, split in ds.splits.items()}
        assert not subjects["train"] & subjects["val"]
        assert not subjects["train"] & subjects["test"]
        assert not subjects["val"] & subjects["test"]
        everything = [t for split in ds.splits.values() for t in tags(split)]
        assert sorted(everything) == sorted(truth)  # nothing lost, nothing twice
        for split in ds.splits.values():
            for tag, label in zip(tags(split), split.labels.tolist(), strict=True):
                assert ds.classes[label] == truth[tag]
        test_sets.append({s for s, _ in tags(ds.splits["test"])})
        assert "subject-independent folds: test fold" in ds.notes[-1]
    # The test folds partition the subjects.
    assert set().union(*test_sets) == set(range(10, 22))
    assert sum(len(s) for s in test_sets) == 12


def test_next_fold_is_validation(ck48):
    root, _ = ck48
    first = load_dataset(f"ckplus:{root}?folds=3&fold=0")
    second = load_dataset(f"ckplus:{root}?folds=3&fold=1")
    assert tags(first.splits["val"]) == tags(second.splits["test"])


def test_assign_folds_balances_subjects():
    subjects = np.array(
        ["S001"] * 9 + ["S002"] * 3 + ["S003"] * 3 + ["S004"] * 3 + ["S005"] * 2 + ["S006"] * 1
    )
    folds = assign_folds(subjects, 3)
    for name in np.unique(subjects):
        assert len(set(folds[subjects == name])) == 1
    assert sorted(np.bincount(folds).tolist()) == [6, 6, 9]
    with pytest.raises(DataError, match="6 subjects here, fewer than folds=10"):
        assign_folds(subjects, 10)


def test_file_without_subject_is_an_error(ck48, capsys):
    root, _ = ck48
    Image.fromarray(tagged_image(1, 1)).save(root / "happy" / "smile.png")
    assert main(["data", "show", f"ckplus:{root}?folds=3"]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the subject of" in err and "smile.png" in err and err.count("\n") == 1


def test_original_release_takes_last_frames_of_labelled_sequences(tmp_path):
    root = tmp_path / "CK+"
    sequences = {
        (5, 1): (6, 3),
        (5, 2): (5, None),
        (10, 1): (7, 5),
        (11, 2): (4, 7),
        (12, 1): (5, 1),
    }
    write_release(root, sequences)
    ds = load_dataset(f"ckplus:{root}?folds=4&fold=0&frames=3")
    assert ds.classes == CLASSES and ds.image_shape == (1, 48, 48)
    labels = sorted(label for split in ds.splits.values() for label in split.labels.tolist())
    # 4 labelled sequences x 3 frames; codes 3, 5, 7, 1 -> disgust, happy, surprise, anger.
    assert labels == sorted([2] * 3 + [4] * 3 + [6] * 3 + [0] * 3)
    # Last frames only: frame values 40 + 10 * frame, frames 4..6 of the 6-frame sequence.
    values = sorted(
        {int(v) for split in ds.splits.values() for v in split.images[:, 0, 24, 24].tolist()}
    )
    assert min(values) >= 40 + 10 * 2
    assert "last 3 frame(s) of each labelled sequence" in ds.notes[0]

    with_neutral = load_dataset(f"ckplus:{root}?folds=4&fold=0&frames=2&neutral=1")
    assert with_neutral.classes == ("neutral", *CLASSES)
    counts = np.sum([split.class_counts(8) for split in with_neutral.splits.values()], axis=0)
    assert counts[0] == 4 and counts.sum() == 4 * 3


def test_the_release_is_cut_to_its_centred_square_and_class_folders_are_not(ck48, tmp_path):
    root48, _ = ck48
    folders = load_dataset(f"ckplus:{root48}?folds=3")
    assert folders.crop == "none" and folders.summary()["crop"] == "none"
    root = tmp_path / "CK+"
    # 40x30 frames: black left margin, white right margin, random centred square.
    frames = write_release(
        root, {(s, 1): (3, 1 + s % 7) for s in range(5, 9)}, margined_frame((40, 30))
    )
    for _ in range(2):  # parsed, then read back from the cache
        ds = load_dataset(f"ckplus:{root}?folds=3&size=16")
        assert ds.crop == "centre-square" and ds.summary()["crop"] == "centre-square"
        assert ("centre-cropped" in ds.notes[0]) and ds.image_shape == (1, 16, 16)
        pixels = np.concatenate([split.images.numpy() for split in ds.splits.values()])
        assert len(pixels) == len(frames) == 12
        # Every image is a cropped frame, none a squashed one (which keeps the margins).
        cropped = {row.tobytes() for row in read_all(frames, 16, center_crop=True)}
        squashed = {row.tobytes() for row in read_all(frames, 16)}
        assert {row.tobytes() for row in pixels} == cropped and not cropped & squashed
        assert pixels[..., 0].min() > 0 and pixels[..., -1].max() < 255  # no margin left


def test_original_release_bad_label_names_the_file(tmp_path):
    root = tmp_path / "CK+"
    write_release(root, {(5, 1): (4, 9), (6, 1): (4, 2), (7, 1): (4, 2), (8, 1): (4, 2)})
    with pytest.raises(
        DataError, match=r"S005_001_00000004_emotion.txt: unknown label '9.0000000e\+00'"
    ):
        load_dataset(f"ckplus:{root}?folds=3")
    (root / "Emotion").rename(root / "labels")
    with pytest.raises(DataError, match="no Emotion/ folder"):
        load_dataset(f"ckplus:{root}?folds=3")


def test_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(f"ckplus:{tmp_path / 'missing'}")
