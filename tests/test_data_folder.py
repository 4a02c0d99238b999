"""`folder:DIR`: train/val/test with class folders, conversion, warnings and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.data import load_dataset
from harness.errors import DataError


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def faces(tmp_path) -> Path:
    root = tmp_path / "faces"
    rng = np.random.default_rng(0)
    layout = {
        "train": {"happy": 3, "sad": 2, "calm": 2},
        "valid": {"happy": 1, "sad": 1, "calm": 1},
        "test": {"happy": 2, "sad": 1},
    }
    for split, classes in layout.items():
        for name, count in classes.items():
            for i in range(count):
                save(
                    root / split / name / f"{i}.png", rng.integers(0, 256, (48, 48), dtype=np.uint8)
                )
    (root / "train" / "happy" / "notes.txt").write_text("not an image")
    (root / "train" / "happy" / ".hidden.png").write_bytes(b"ignored")
    return root


def test_folder_layout_classes_counts_and_aliases(faces):
    ds = load_dataset(f"folder:{faces}")
    assert ds.classes == ("calm", "happy", "sad")
    assert ds.counts() == {"train": [2, 3, 2], "val": [1, 1, 1], "test": [0, 2, 1]}
    assert ds.warnings == ["split test has no image of class calm"]
    pixels = np.asarray(Image.open(faces / "test" / "sad" / "0.png"))
    np.testing.assert_array_equal(ds.splits["test"].images[2, 0].numpy(), pixels)


def test_colour_images_of_any_size_become_grayscale_at_the_requested_size(tmp_path):
    root = tmp_path / "rgb"
    for split in ("train", "val", "test"):
        image = np.zeros((80, 100, 3), dtype=np.uint8)
        image[..., 1] = 200  # pure green
        save(root / split / "x" / "a.jpg", image)
    ds = load_dataset(f"folder:{root}?size=32")
    assert ds.image_shape == (1, 32, 32)
    value = int(ds.splits["train"].images[0, 0, 16, 16])
    assert abs(value - round(200 * 0.587)) <= 2  # PIL's L = 0.299 R + 0.587 G + 0.114 B


def test_same_image_in_two_splits_is_a_duplicate(faces):
    pixels = np.asarray(Image.open(faces / "train" / "happy" / "0.png"))
    save(faces / "test" / "happy" / "copy.png", pixels)
    ds = load_dataset(f"folder:{faces}")
    assert ds.duplicates == {"val": 0, "test": 1}
    clean = load_dataset(f"folder:{faces}?dedup=1")
    assert len(clean.splits["test"]) == len(ds.splits["test"]) - 1


def test_unreadable_image_is_named(faces, capsys):
    broken = faces / "valid" / "sad" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    assert main(["data", "show", f"folder:{faces}", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("harness: error: cannot read image")
        and str(broken) in err
        and err.count("\n") == 1
    )


def test_missing_split_folder(faces):
    (faces / "valid").rename(faces / "dev")
    with pytest.raises(DataError, match="no val/ folder"):
        load_dataset(f"folder:{faces}")
