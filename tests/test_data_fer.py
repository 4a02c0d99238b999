"""FER2013 (Kaggle csv) and FER+ (fer2013new.csv or PNG folders), on small files in the real formats."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.cli import main
from harness.data import FER2013_CLASSES, load_dataset
from harness.data import fer2013 as fer2013_module
from harness.data.ferplus import EMOTIONS, VOTE_COLUMNS, labels_from_votes
from harness.errors import DataError

USAGE_OF = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def pixel_text(image: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in image.ravel())


def write_fer2013(path: Path, rows, columns=("emotion", "pixels", "Usage"), header=None) -> Path:
    """rows: (emotion, image or pixel text, usage) in the Kaggle layout, written in `columns` order."""
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header or columns)
        for emotion, pixels, usage in rows:
            text = pixels if isinstance(pixels, str) else pixel_text(pixels)
            record = {"emotion": emotion, "pixels": text, "Usage": usage}
            writer.writerow([record[column] for column in columns])
    return path


# 7 train rows (one per class), 3 val, 2 test; image i is face(i).
LAYOUT = [(0, "Training"), (1, "Training"), (2, "Training"), (3, "Training"), (4, "Training"),
          (5, "Training"), (6, "Training"), (3, "PublicTest"), (6, "PublicTest"), (0, "PublicTest"),
          (5, "PrivateTest"), (2, "PrivateTest")]  # fmt: skip


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    return write_fer2013(
        tmp_path / "fer2013.csv", [(e, face(i), u) for i, (e, u) in enumerate(LAYOUT)]
    )


# --- FER2013 -----------------------------------------------------------------------------


def test_fer2013_counts_splits_labels_and_pixels(fer_csv):
    ds = load_dataset(f"fer2013:{fer_csv}")
    assert (
        ds.classes
        == FER2013_CLASSES
        == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    )
    assert ds.image_shape == (1, 48, 48)
    assert {name: len(split) for name, split in ds.splits.items()} == {
        "train": 7,
        "val": 3,
        "test": 2,
    }
    assert ds.splits["train"].labels.tolist() == list(range(7))
    assert ds.splits["val"].labels.tolist() == [3, 6, 0]
    assert ds.splits["test"].labels.tolist() == [5, 2]
    np.testing.assert_array_equal(ds.splits["val"].images[1, 0].numpy(), face(8))
    np.testing.assert_array_equal(ds.splits["test"].images[0, 0].numpy(), face(10))
    # Each split misses some classes: warned by name.
    assert any("split test has no image of class angry, disgust, happy" in w for w in ds.warnings)


def test_fer2013_column_order_may_differ(tmp_path):
    # icml_face_data.csv, Kaggle's other copy, puts Usage second.
    path = write_fer2013(
        tmp_path / "icml.csv",
        [(4, face(0), "Training"), (1, face(1), "PrivateTest")],
        columns=("emotion", "Usage", "pixels"),
    )
    ds = load_dataset(f"fer2013:{path}")
    assert ds.splits["train"].labels.tolist() == [4] and ds.splits["test"].labels.tolist() == [1]


def test_fer2013_duplicates_across_splits_warned_and_dropped_by_dedup(tmp_path):
    rows = [(0, face(0), "Training"), (1, face(1), "Training"), (0, face(0), "PublicTest"),
            (2, face(2), "PublicTest"), (1, face(1), "PrivateTest"), (2, face(2), "PrivateTest")]  # fmt: skip
    path = write_fer2013(tmp_path / "fer2013.csv", rows)
    ds = load_dataset(f"fer2013:{path}")
    assert ds.duplicates == {"val": 1, "test": 2}
    assert any("1 val and 2 test images also appear in an earlier split" in w for w in ds.warnings)
    clean = load_dataset(f"fer2013:{path}?dedup=1")
    assert [len(clean.splits[s]) for s in ("train", "val", "test")] == [2, 1, 0]
    assert clean.duplicates == {"val": 1, "test": 2} and not any(
        "earlier split" in w for w in clean.warnings
    )
    assert clean.fingerprint != ds.fingerprint
    assert clean.spec.endswith("?dedup=1")


def test_fer2013_second_load_uses_the_cache_until_the_file_changes(fer_csv, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_dataset(f"fer2013:{fer_csv}", cache_dir=cache)
    calls = []
    real = fer2013_module.read_csv
    monkeypatch.setattr(fer2013_module, "read_csv", lambda path: calls.append(path) or real(path))
    assert load_dataset(f"fer2013:{fer_csv}", cache_dir=cache).fingerprint == first.fingerprint
    assert calls == []
    write_fer2013(fer_csv, [(1, face(99), "Training")])
    stat = fer_csv.stat()
    os.utime(fer_csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = load_dataset(f"fer2013:{fer_csv}", cache_dir=cache)
    assert calls == [fer_csv] and len(changed.splits["train"]) == 1


def test_corrupt_cache_entry_is_parsed_again(fer_csv, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset(f"fer2013:{fer_csv}", cache_dir=cache)
    (entry,) = cache.glob("fer2013-*.npz")
    entry.write_bytes(b"not a zip")
    assert load_dataset(f"fer2013:{fer_csv}", cache_dir=cache).fingerprint == first.fingerprint


BAD_ROWS = [
    ("wrong header", None, "line 1: wrong header 'emotion,pixel,Usage'"),
    ("too few pixels", (0, " ".join(["7"] * 2303), "Training"), "line 3: expected 2304 pixel values, got 2303"),
    ("non-numeric", (0, " ".join(["7"] * 100 + ["x7"] + ["7"] * 2203), "Training"), "line 3: non-numeric pixel value 'x7' (value 101 of 2304)"),
    ("out of range", (0, " ".join(["256"] * 2304), "Training"), "line 3: pixel value 256 outside 0..255"),
    ("unknown label", (7, face(1), "Training"), "line 3: unknown label 7"),
    ("bad label", ("happy", face(1), "Training"), "line 3: emotion must be an integer 0..6, got 'happy'"),
    ("unknown usage", (1, face(1), "Validation"), "line 3: unknown Usage 'Validation'"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "row", "message"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_fer2013_bad_input_is_one_clear_line_and_exit_status_2(
    tmp_path, capsys, what, row, message
):
    path = tmp_path / "fer2013.csv"
    if row is None:
        write_fer2013(path, [(0, face(0), "Training")], header=("emotion", "pixel", "Usage"))
    else:
        write_fer2013(path, [(0, face(0), "Training"), row, (1, face(2), "Training")])
    assert main(["data", "show", f"fer2013:{path}", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("harness: error: ")
    assert str(path) in err and message in err


def test_fer2013_missing_file_and_wrong_field_count(tmp_path, capsys):
    assert main(["data", "show", f"fer2013:{tmp_path / 'nope.csv'}"]) == 2
    assert f"{tmp_path / 'nope.csv'}: file not found" in capsys.readouterr().err
    path = tmp_path / "short.csv"
    path.write_text("emotion,pixels,Usage\n0,1 2 3\n")
    with pytest.raises(DataError, match="line 2: expected 3 fields, got 2"):
        load_dataset(f"fer2013:{path}", cache=False)


# --- FER+ vote rules ---------------------------------------------------------------------


def votes(**counts) -> list[int]:
    return [counts.get(column, 0) for column in VOTE_COLUMNS]


def majority(row):
    keep, labels = labels_from_votes(np.array([row]), "majority")
    return int(labels[0]) if keep[0] else None


def soft(row, mode="probability"):
    keep, labels = labels_from_votes(np.array([row]), mode)
    return labels[0].tolist() if keep[0] else None


def test_majority_keeps_a_clear_winner():
    assert majority(votes(happiness=10)) == EMOTIONS.index("happiness")
    assert majority(votes(neutral=6, sadness=2, anger=2)) == 0


def test_majority_tie_or_no_majority_is_dropped():
    assert majority(votes(neutral=4, sadness=4, anger=2)) is None
    assert majority(votes(neutral=5, happiness=5)) is None


def test_single_votes_are_removed_before_the_majority_is_taken():
    # 4 of 10 votes is no majority, but the three single votes are outliers:
    # 4 of the remaining 7 is.
    assert majority(votes(neutral=4, happiness=3, surprise=1, sadness=1, anger=1)) == 0
    # Nothing but single votes: no label at all.
    assert majority(votes(neutral=1, happiness=1, sadness=1, fear=1)) is None


def test_unknown_and_not_a_face_are_dropped_in_majority_but_kept_in_all10():
    nf, unknown = votes(NF=10), votes(unknown=8, neutral=2)
    assert majority(nf) is None and majority(unknown) is None
    keep, labels = labels_from_votes(np.array([nf, unknown, votes(fear=7, surprise=3)]), "all10")
    assert keep.tolist() == [True, True, True]
    assert labels.tolist() == [
        VOTE_COLUMNS.index("NF"),
        VOTE_COLUMNS.index("unknown"),
        VOTE_COLUMNS.index("fear"),
    ]


def test_probability_takes_emotions_until_75_percent():
    assert soft(votes(neutral=6, happiness=3, surprise=1)) == pytest.approx(
        [6 / 9, 3 / 9, 0, 0, 0, 0, 0, 0]
    )
    # Ties are taken together: 4 + 3 + 3 = all votes, three emotions.
    assert soft(votes(neutral=4, happiness=3, surprise=3)) == pytest.approx(
        [0.4, 0.3, 0.3, 0, 0, 0, 0, 0]
    )
    assert soft(votes(contempt=10), "crossentropy") == pytest.approx([0, 0, 0, 0, 0, 0, 0, 1])


def test_probability_drops_spread_votes_and_leading_unknown():
    # Five emotions tied at 2: more than three would be needed.
    assert soft(votes(neutral=2, happiness=2, surprise=2, sadness=2, anger=2)) is None
    # Unknown ties the top emotion: it is put back, and 4 of 10 is not more than half.
    assert soft(votes(neutral=4, unknown=4, NF=2)) is None
    # Unknown leads: dropped.
    assert soft(votes(neutral=2, unknown=6, NF=2)) is None
    assert soft(votes(NF=10)) is None


def reference_process(raw: list[int], mode: str) -> list[float] | None:
    """A direct transcription of Microsoft's FERPlus `_process_data` plus the filter in
    `load_folders` (src/ferplus.py), returning the kept label distribution or None."""
    emotion_raw = [float(v) for v in raw]
    size = len(emotion_raw)
    unknown = [0.0] * size
    unknown[-2] = 1.0
    for i in range(size):
        if emotion_raw[i] < 1.0 + 1e-12:
            emotion_raw[i] = 0.0
    total = sum(emotion_raw)
    emotion = [0.0] * size
    if mode == "majority":
        peak = max(emotion_raw)
        if peak > 0.5 * total:
            emotion[int(np.argmax(emotion_raw))] = peak
        else:
            emotion = unknown
    else:
        taken_sum, count, valid = 0.0, 0, True
        while taken_sum < 0.75 * total and count < 3 and valid:
            peak = max(emotion_raw)
            for i in range(size):
                if emotion_raw[i] == peak:
                    emotion[i] = peak
                    emotion_raw[i] = 0
                    taken_sum += emotion[i]
                    count += 1
                    if i >= 8:
                        valid = False
                        if sum(emotion) > peak:
                            emotion[i] = 0
                            count -= 1
                        break
        if sum(emotion) <= 0.5 * total or count > 3:
            emotion = unknown
    if int(np.argmax(emotion)) >= 8:
        return None
    kept = emotion[:8]
    return [v / sum(kept) for v in kept]


vote_rows = st.lists(st.integers(0, 10), min_size=10, max_size=10)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(vote_rows, min_size=1, max_size=12),
    mode=st.sampled_from(["majority", "probability"]),
)
def test_vote_rules_match_the_reference_code(rows, mode):
    keep, labels = labels_from_votes(np.array(rows), mode)
    for row, kept, label in zip(rows, keep, labels, strict=True):
        expected = reference_process(row, mode)
        if expected is None:
            assert not kept, row
        else:
            assert kept, row
            if mode == "majority":
                assert int(label) == int(np.argmax(expected))
            else:
                np.testing.assert_allclose(label, expected, rtol=1e-6, atol=1e-7)


# --- FER+ files --------------------------------------------------------------------------

# (usage, image name, votes) for the rows of LAYOUT, in order; row 3 has no image name.
NEW_ROWS = [
    ("Training", "fer0000000.png", votes(neutral=10)),
    ("Training", "fer0000001.png", votes(happiness=7, neutral=3)),
    ("Training", "fer0000002.png", votes(surprise=4, fear=4, neutral=2)),  # no majority
    ("Training", "", votes(NF=10)),
    ("Training", "fer0000004.png", votes(sadness=9, neutral=1)),
    ("Training", "fer0000005.png", votes(NF=7, neutral=3)),  # not a face
    ("Training", "fer0000006.png", votes(contempt=6, disgust=4)),
    ("PublicTest", "fer0000007.png", votes(anger=8, disgust=2)),
    ("PublicTest", "fer0000008.png", votes(neutral=6, happiness=2, unknown=2)),
    ("PublicTest", "fer0000009.png", votes(fear=10)),
    ("PrivateTest", "fer0000010.png", votes(surprise=6, fear=4)),
    ("PrivateTest", "fer0000011.png", votes(unknown=9, neutral=1)),
]


def write_fer2013new(path: Path, rows=NEW_ROWS) -> Path:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for usage, name, counts in rows:
            writer.writerow([usage, name, *counts])
    return path


@pytest.fixture
def ferplus_dir(tmp_path, fer_csv) -> Path:
    write_fer2013new(tmp_path / "fer2013new.csv")
    return tmp_path


def test_ferplus_majority_joins_row_by_row(ferplus_dir):
    ds = load_dataset(f"ferplus:{ferplus_dir}")
    assert ds.classes == EMOTIONS and ds.label_mode == "majority"
    neutral, happiness, surprise, sadness, anger, fear, contempt = (
        EMOTIONS.index(e)
        for e in ("neutral", "happiness", "surprise", "sadness", "anger", "fear", "contempt")
    )
    assert ds.splits["train"].labels.tolist() == [neutral, happiness, sadness, contempt]
    assert ds.splits["val"].labels.tolist() == [anger, neutral, fear]
    assert ds.splits["test"].labels.tolist() == [surprise]
    # The images come from fer2013.csv's rows 0, 1, 4, 6.
    for position, row in enumerate([0, 1, 4, 6]):
        np.testing.assert_array_equal(ds.splits["train"].images[position, 0].numpy(), face(row))
    assert "8 of 12 rows kept in mode majority (1 without an image name, 3 dropped" in ds.notes[0]


def test_ferplus_all10_keeps_unknown_and_not_a_face(ferplus_dir):
    ds = load_dataset(f"ferplus:{ferplus_dir}?mode=all10")
    assert ds.classes == VOTE_COLUMNS and len(ds.classes) == 10
    assert ds.splits["train"].labels.tolist()[-2] == VOTE_COLUMNS.index("NF")
    assert ds.splits["test"].labels.tolist() == [
        VOTE_COLUMNS.index("surprise"),
        VOTE_COLUMNS.index("unknown"),
    ]


@pytest.mark.parametrize("mode", ["probability", "crossentropy"])
def test_ferplus_soft_modes_give_distributions_for_train_only(ferplus_dir, mode):
    ds = load_dataset(f"ferplus:{ferplus_dir}?mode={mode}")
    train = ds.splits["train"]
    assert ds.label_mode == train.label_mode == mode and train.soft
    assert train.labels.dtype.is_floating_point and train.labels.shape[1] == 8
    np.testing.assert_allclose(train.labels.sum(1).numpy(), 1.0, rtol=1e-6)
    # Row 1: happiness 7, neutral 3 -> 0.7 / 0.3.
    np.testing.assert_allclose(train.labels[1, :2].numpy(), [0.3, 0.7], rtol=1e-6)
    # Val and test carry majority's hard labels (row 8's soft label would be 6/8, 2/8).
    majority = load_dataset(f"ferplus:{ferplus_dir}")
    for name in ("val", "test"):
        split = ds.splits[name]
        assert not split.soft and split.labels.dtype == torch.int64
        assert torch.equal(split.labels, majority.splits[name].labels)
    other = load_dataset(
        f"ferplus:{ferplus_dir}?mode={'crossentropy' if mode == 'probability' else 'probability'}"
    )
    assert other.fingerprint != ds.fingerprint  # the mode is part of the data's identity


def test_ferplus_row_count_mismatch_is_an_error(ferplus_dir, capsys):
    write_fer2013new(ferplus_dir / "fer2013new.csv", NEW_ROWS[:-1])
    assert main(["data", "show", f"ferplus:{ferplus_dir}"]) == 2
    err = capsys.readouterr().err
    assert "11 data rows but" in err and "has 12" in err and err.count("\n") == 1


def test_ferplus_rows_out_of_order_are_an_error(ferplus_dir):
    rows = list(NEW_ROWS)
    rows[7], rows[10] = rows[10], rows[7]
    write_fer2013new(ferplus_dir / "fer2013new.csv", rows)
    with pytest.raises(DataError, match="data row 8: Usage PrivateTest but .* says PublicTest"):
        load_dataset(f"ferplus:{ferplus_dir}")


def test_ferplus_bad_votes_and_missing_files(ferplus_dir, tmp_path):
    rows = list(NEW_ROWS)
    rows[2] = ("Training", "fer0000002.png", votes(surprise=4)[:-1] + [-1])
    write_fer2013new(ferplus_dir / "fer2013new.csv", rows)
    with pytest.raises(
        DataError,
        match=r"fer2013new.csv line 4: vote count for NF must be a non-negative integer, got '-1'",
    ):
        load_dataset(f"ferplus:{ferplus_dir}")
    (ferplus_dir / "fer2013.csv").unlink()
    with pytest.raises(DataError, match="found fer2013new.csv but not fer2013.csv"):
        load_dataset(f"ferplus:{ferplus_dir}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no FER\\+ data"):
        load_dataset(f"ferplus:{empty}")


PNG_FOLDERS = {
    "Training": "FER2013Train",
    "PublicTest": "FER2013Valid",
    "PrivateTest": "FER2013Test",
}


def write_png_folders(root: Path, rows) -> Path:
    """The folders Microsoft's generate_training_data.py writes: named rows only, label.csv
    with a face box column; image of row i is face(i)."""
    label_rows: dict[str, list] = {name: [] for name in PNG_FOLDERS.values()}
    for row, (usage, name, counts) in enumerate(rows):
        if not name:
            continue
        folder = root / PNG_FOLDERS[usage]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face(row)).save(folder / name, compress_level=0)
        label_rows[PNG_FOLDERS[usage]].append([name, "(0, 0, 48, 48)", *counts])
    for name, label_rows_of in label_rows.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        with open(root / name / "label.csv", "w", newline="") as stream:
            csv.writer(stream).writerows(label_rows_of)
    return root


def test_ferplus_png_folders_match_the_csv_layout(ferplus_dir, tmp_path):
    root = write_png_folders(tmp_path / "pngs", NEW_ROWS)
    from_pngs = load_dataset(f"ferplus:{root}")
    from_csv = load_dataset(f"ferplus:{ferplus_dir}")
    assert from_pngs.fingerprint == from_csv.fingerprint
    (root / "FER2013Valid" / "fer0000009.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*fer0000009.png"):
        load_dataset(f"ferplus:{root}", cache=False)


# --- FER+ label modes: what each split holds -----------------------------------------------

# Rows where the rules disagree; "!" marks what majority drops but the soft rule keeps
# (and so what an argmax tie would have labelled), "~" the reverse.
MODE_ROWS = [
    ("Training", "fer0000000.png", votes(neutral=10)),
    ("Training", "fer0000001.png", votes(happiness=7, neutral=3)),
    ("Training", "fer0000002.png", votes(neutral=4, happiness=4, surprise=2)),  # !
    ("Training", "", votes(NF=10)),  # not FER+: kept by plurality only
    ("Training", "fer0000004.png", votes(sadness=5, anger=5)),  # !
    ("PublicTest", "fer0000005.png", votes(anger=8, disgust=2)),
    ("PublicTest", "fer0000006.png", votes(neutral=4, happiness=3, surprise=3)),  # !
    ("PublicTest", "fer0000007.png", votes()),  # no votes at all
    ("PrivateTest", "fer0000008.png", votes(surprise=6, fear=4)),
    ("PrivateTest", "fer0000009.png", votes(neutral=4, sadness=4, anger=2)),  # !
    ("PrivateTest", "fer0000010.png", votes(neutral=7, happiness=2, surprise=2, sadness=2)),  # ~
    ("PrivateTest", "fer0000011.png", votes(unknown=9, neutral=1)),
    ("PrivateTest", "fer0000012.png", votes(contempt=6, disgust=4)),
    ("PrivateTest", "fer0000013.png", votes(fear=3, surprise=3, unknown=3, NF=1)),  # !
    ("PrivateTest", "", votes(neutral=10)),
]
MODE_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
EIGHT_CLASS_MODES = ["majority", "probability", "crossentropy"]


@pytest.fixture(params=["csv", "png"])
def modes_dir(request, tmp_path) -> Path:
    """MODE_ROWS in both of Microsoft's formats; image of row i is face(i)."""
    if request.param == "png":
        return write_png_folders(tmp_path / "pngs", MODE_ROWS)
    write_fer2013(
        tmp_path / "fer2013.csv", [(0, face(i), u) for i, (u, _, _) in enumerate(MODE_ROWS)]
    )
    write_fer2013new(tmp_path / "fer2013new.csv", MODE_ROWS)
    return tmp_path


def rows_of(split) -> list[int]:
    """MODE_ROWS indices of a split's images (each face(i) is distinct)."""
    index = {face(i).tobytes(): i for i in range(len(MODE_ROWS))}
    return [index[image[0].numpy().tobytes()] for image in split.images]


def test_every_8_class_mode_scores_the_same_test_rows_with_majority_labels(modes_dir):
    loaded = {mode: load_dataset(f"ferplus:{modes_dir}?mode={mode}") for mode in EIGHT_CLASS_MODES}
    surprise, neutral, contempt, anger = (
        EMOTIONS.index(e) for e in ("surprise", "neutral", "contempt", "anger")
    )
    for mode, ds in loaded.items():
        assert rows_of(ds.splits["test"]) == [8, 10, 12], mode
        assert ds.splits["test"].labels.tolist() == [surprise, neutral, contempt], mode
        assert rows_of(ds.splits["val"]) == [5] and ds.splits["val"].labels.tolist() == [anger]
        for name in ("val", "test"):
            assert ds.splits[name].labels.dtype == torch.int64 and not ds.splits[name].soft
    # Training is where the modes differ: the soft rule keeps the ties majority drops.
    assert rows_of(loaded["majority"].splits["train"]) == [0, 1]
    soft = loaded["crossentropy"].splits["train"]
    assert rows_of(soft) == [0, 1, 2, 4] and soft.soft
    np.testing.assert_allclose(soft.labels[2, :2].numpy(), [0.5, 0.5])
    assert any("as in Microsoft's train.py" in note for note in loaded["probability"].notes)


# plurality's label of each MODE_ROWS row: most raw votes, ties to the first column.
PLURALITY = ["neutral", "happiness", "neutral", "NF", "sadness", "anger", "neutral", "unknown",
             "surprise", "neutral", "neutral", "unknown", "contempt", "surprise", "neutral"]  # fmt: skip


def test_plurality_keeps_every_fer2013_row_with_ten_classes(modes_dir):
    ds = load_dataset(f"ferplus:{modes_dir}?mode=plurality")
    assert ds.classes == VOTE_COLUMNS and ds.label_mode == "plurality"
    # Every row of fer2013.csv; the PNG folders hold only the rows with an image name.
    has_all_rows = modes_dir.name != "pngs"
    for name, usage in MODE_USAGE.items():
        rows = [
            i for i, (u, image, _) in enumerate(MODE_ROWS) if u == usage and (image or has_all_rows)
        ]
        assert rows_of(ds.splits[name]) == rows
        assert ds.splits[name].labels.tolist() == [VOTE_COLUMNS.index(PLURALITY[i]) for i in rows]
    assert sum(len(split) for split in ds.splits.values()) == (15 if has_all_rows else 13)
    assert any("4 rows with a tied top count" in note for note in ds.notes), ds.notes


def plurality(row) -> int:
    keep, labels = labels_from_votes(np.array([row]), "plurality")
    assert keep.tolist() == [True]
    return int(labels[0])


def test_plurality_tie_rule_first_column_and_no_votes_is_unknown():
    assert plurality(votes(neutral=4, happiness=4, surprise=2)) == VOTE_COLUMNS.index("neutral")
    assert plurality(votes(sadness=3, anger=3, unknown=3, NF=1)) == VOTE_COLUMNS.index("sadness")
    assert plurality(votes(unknown=5, NF=5)) == VOTE_COLUMNS.index("unknown")
    assert plurality(votes(contempt=5, NF=5)) == VOTE_COLUMNS.index("contempt")
    assert plurality(votes()) == VOTE_COLUMNS.index("unknown")
    # Raw votes: a single vote still counts (majority would drop this row).
    assert (
        plurality(votes(fear=1)) == VOTE_COLUMNS.index("fear") and majority(votes(fear=1)) is None
    )


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(vote_rows, min_size=1, max_size=12))
def test_plurality_label_is_the_first_column_with_the_most_votes(rows):
    keep, labels = labels_from_votes(np.array(rows), "plurality")
    assert keep.all()
    for row, label in zip(rows, labels, strict=True):
        if max(row) == 0:
            assert label == VOTE_COLUMNS.index("unknown")
        else:
            assert row[label] == max(row) and max(row[:label], default=-1) < max(row)


def test_modes_have_distinct_records_and_fingerprints(ferplus_dir):
    from harness.data.ferplus import MODES
    from harness.data.spec import KINDS

    (mode_option,) = [o for o in KINDS["ferplus"][1] if o.name == "mode"]
    assert mode_option.choices == MODES
    loaded = [load_dataset(f"ferplus:{ferplus_dir}?mode={mode}") for mode in MODES]
    assert [ds.summary()["label_mode"] for ds in loaded] == list(MODES)
    assert len({ds.fingerprint for ds in loaded}) == len(MODES)
    assert len({ds.spec for ds in loaded}) == len(MODES)


def test_unknown_mode_is_one_line_and_exit_status_2(ferplus_dir, capsys):
    assert main(["data", "show", f"ferplus:{ferplus_dir}?mode=plural"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("harness: error: ")
    assert "'plural'" in err and "all10, plurality" in err
    with pytest.raises(DataError, match="unknown FER\\+ mode 'vote'"):
        labels_from_votes(np.array([votes(neutral=10)]), "vote")
