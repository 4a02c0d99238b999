"""`harness predict MODEL_DIR IMAGES...`: images in, class probabilities out, from an export alone.

The export is of a real tiny trial (`_export_trial`); the images are its own test
images written as PNG files, so predict's answer can be compared with the trained
network's own output on the same pixels.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from _ckplus_release import margined_frame, write_release
from _export_trial import train_tiny_trial
from _refusal import refused
from PIL import Image

from harness.cli import main
from harness.data.images import read_all, read_gray
from harness.export.checks import ExportError
from harness.export.pipeline import export_trial
from harness.export.predict import predict_files
from harness.export.preprocess import input_spec, read_images
from harness.store import Store
from harness.weights import load_weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_trial(tmp_path_factory.mktemp("trial"))


@pytest.fixture(scope="module")
def export_dir(tiny, tmp_path_factory):
    with Store(tiny.db, create=False) as store:
        row = store.trial(tiny.trial_id)
    state, metadata = load_weights(tiny.weights)
    out = tmp_path_factory.mktemp("exports") / "model"
    export_trial(row, state, metadata, out=out, formats=["onnx"])
    return out


@pytest.fixture(scope="module")
def faces(tiny, tmp_path_factory):
    """Four test images as PNG files (lossless: the same pixels the network was tested on)."""
    folder = tmp_path_factory.mktemp("faces")
    for i in range(4):
        Image.fromarray(tiny.test_images[i, 0].numpy()).save(folder / f"face{i}.png")
    return folder


def _expected(tiny, count: int) -> np.ndarray:
    return tiny.logits(tiny.test_images[:count]).softmax(-1).numpy()


def test_predict_gives_the_trained_networks_own_probabilities(tiny, export_dir, faces):
    files = sorted(faces.iterdir())
    expected = _expected(tiny, 4)
    for onnx in (False, True):
        predictions = predict_files(export_dir, [faces], onnx=onnx)
        assert predictions.files == files
        assert predictions.probabilities.shape == (4, 7)
        assert np.allclose(predictions.probabilities.sum(1), 1.0, atol=1e-5)
        assert np.abs(predictions.probabilities - expected).max() < 1e-5
        assert predictions.runtime == ("onnxruntime" if onnx else "pytorch")


def test_a_picture_of_another_size_and_colour_is_read_as_training_read_images(
    export_dir, faces, tmp_path
):
    big = tmp_path / "big.jpg"
    Image.open(faces / "face0.png").convert("RGB").resize((96, 80)).save(big)
    (row,) = predict_files(export_dir, [big]).records()
    assert (
        row["class"] in row["probabilities"] and abs(sum(row["probabilities"].values()) - 1) < 1e-5
    )


def test_the_table_has_one_row_per_image_with_the_top_class_then_every_class(
    tiny, export_dir, faces, capsys
):
    assert (
        main(["predict", str(export_dir), str(faces / "face0.png"), str(faces / "face1.png")]) == 0
    )
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    # The tiny network learnt synthetic data: its probabilities are no finding, and it says so.
    assert "trained on synthetic data: pipeline check, not a finding" in captured.err
    assert lines[0].split() == ["file", "class", "p", "%", *tiny.classes]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == [str(faces / "face0.png"), str(faces / "face1.png")]
    expected = _expected(tiny, 2)
    for row, probs in zip(rows, expected, strict=True):
        assert row[1] == tiny.classes[int(probs.argmax())]
        assert float(row[2]) == pytest.approx(100 * probs.max(), abs=0.051)
        assert [float(v) for v in row[3:]] == pytest.approx(100 * probs, abs=0.051)


def test_json_gives_every_probability_and_onnx_agrees(tiny, export_dir, faces, capsys):
    assert main(["predict", str(export_dir), str(faces), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert main(["predict", str(export_dir), str(faces), "--json", "--onnx"]) == 0
    from_onnx = json.loads(capsys.readouterr().out)
    assert len(records) == 4
    for record, other in zip(records, from_onnx, strict=True):
        probs = record["probabilities"]
        assert list(probs) == tiny.classes and sum(probs.values()) == pytest.approx(1, abs=1e-5)
        assert record["class"] == max(probs, key=probs.get) == other["class"]
        assert record["probability"] == pytest.approx(other["probability"], abs=1e-5)


def test_bad_input_is_one_line(tiny, export_dir, faces, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    tampered = tmp_path / "tampered"
    shutil.copytree(export_dir, tampered)
    with open(tampered / "model.safetensors", "ab") as handle:
        handle.write(b"\0")
    no_onnx = tmp_path / "no_onnx"
    shutil.copytree(export_dir, no_onnx)
    config = json.loads((no_onnx / "config.json").read_text())
    del config["files"]["model.onnx"]
    (no_onnx / "config.json").write_text(json.dumps(config))
    face = str(faces / "face0.png")
    cases = {
        "is not an export folder (no config.json)": ["predict", str(tmp_path), face],
        "no images in folder": ["predict", str(export_dir), str(empty)],
        "cannot read image": ["predict", str(export_dir), str(not_image)],
        "does not exist": ["predict", str(export_dir), str(tmp_path / "missing.png")],
        "its SHA-256 differs": ["predict", str(tampered), face],
        "has no model.onnx: export the trial with --format onnx": [
            "predict", str(no_onnx), face, "--onnx",
        ],
        "the following arguments are required": ["predict", str(export_dir)],
    }  # fmt: skip
    for expected, argv in cases.items():
        assert expected in refused(argv, capsys), argv


def test_onnx_without_the_export_extra_is_one_line(export_dir, faces, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    line = refused(["predict", str(export_dir), str(faces), "--onnx"], capsys)
    assert "--onnx needs the export extra: pip install 'harness[export]'" in line
    # The PyTorch network needs nothing more.
    assert main(["predict", str(export_dir), str(faces)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 + 4  # header, rule, four images


# --- Pictures cut as training cut them (config.json's input.crop) --------------------


def _spec(**changes):
    spec = input_spec((1, 16, 16), None, 0.5, 0.25, crop="none")
    return {**spec, **changes}


def test_a_centre_square_spec_reads_a_wide_picture_cut_and_none_squashes_it(tmp_path):
    (path,) = write_release(tmp_path, {(5, 1): (1, None)}, margined_frame((40, 30)))
    cut, squashed = read_gray(path, 16, center_crop=True), read_gray(path, 16)
    assert not np.array_equal(cut, squashed)
    assert _spec()["crop"] == "none"
    assert input_spec((1, 16, 16), None, 0.5, 0.25, crop="centre-square")["crop"] == "centre-square"
    assert np.array_equal(read_images([path], _spec(crop="centre-square"))[0, 0], cut)
    assert np.array_equal(read_images([path], _spec(crop="none"))[0, 0], squashed)
    old = _spec()
    del old["crop"]  # an export written before the crop was recorded
    assert np.array_equal(read_images([path], old)[0, 0], squashed)
    with pytest.raises(ExportError, match="input crop 'face-box' is unknown to this harness"):
        read_images([path], _spec(crop="face-box"))


@pytest.fixture(scope="module")
def ck_release(tmp_path_factory):
    """A trial trained on a tiny CK+ original release of wide 40x30 frames, exported."""
    folder = tmp_path_factory.mktemp("ckplus")
    root = folder / "CK+"
    sequences = {(subject, 1): (4, 1 + subject % 7) for subject in range(10, 22)}
    frames = write_release(root, sequences, margined_frame((40, 30)))
    tiny = train_tiny_trial(folder, data=f"ckplus:{root}?folds=3&size=16", batch_size=8)
    with Store(tiny.db, create=False) as store:
        row = store.trial(tiny.trial_id)
    state, metadata = load_weights(tiny.weights)
    out = folder / "export"
    export_trial(row, state, metadata, out=out)
    return tiny, frames, out


def test_predict_on_release_frames_gives_the_networks_output_on_its_test_split(ck_release):
    tiny, frames, out = ck_release
    config = json.loads((out / "config.json").read_text())
    assert config["input"]["crop"] == "centre-square"
    # The frame file behind each test image: training read it cut (read_gray's centre_crop).
    cut = read_all(frames, 16, center_crop=True)
    index = {cut[i].tobytes(): path for i, path in enumerate(frames)}
    test_files = [index[image.numpy().tobytes()] for image in tiny.test_images]
    assert len(test_files) == len(tiny.test_images) >= 2
    predictions = predict_files(out, test_files)
    expected = tiny.logits(tiny.test_images).softmax(-1).numpy()
    assert np.abs(predictions.probabilities - expected).max() < 1e-5
    # Read whole (squashed), as predict read them before, the frames are other pictures.
    squashed = read_all(test_files, 16)
    assert not any(
        np.array_equal(a, b) for a, b in zip(squashed, tiny.test_images.numpy(), strict=True)
    )
