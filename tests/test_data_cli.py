"""`harness data show` and `harness data preview` through `harness.cli.main`."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from harness.cli import main

SMALL = "synthetic?n=140&seed=2"


def test_show_prints_a_table(capsys):
    assert main(["data", "show", SMALL]) == 0
    out = capsys.readouterr().out
    assert "dataset      synthetic?n=140&seed=2&difficulty=0.5&size=48&prior=uniform&dedup=0" in out
    assert "images       1x48x48 uint8; 98 train / 21 val / 21 test" in out
    assert "labels       hard, 7 classes" in out
    assert "fingerprint  " in out and "duplicates   0 val and 0 test" in out
    assert "crop         none: each picture resized whole to the image size" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class"))
    assert lines[header].split() == ["class", "train", "val", "test"]
    assert [line.split()[0] for line in lines[header + 1 : header + 9]] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "total",
    ]  # fmt: skip
    assert lines[header + 8].split() == ["total", "98", "21", "21"]


def test_show_json(capsys):
    assert main(["data", "show", SMALL, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sizes"] == {"train": 98, "val": 21, "test": 21}
    assert info["image_shape"] == [1, 48, 48] and len(info["classes"]) == 7
    assert sum(info["counts"]["val"]) == 21 and info["warnings"] == []
    assert info["crop"] == "none"


def test_default_spec_is_synthetic(capsys):
    assert main(["data", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"].startswith("synthetic?n=3000&")


def test_preview_writes_a_grid(tmp_path, capsys):
    output = tmp_path / "grid.png"
    assert (
        main(["data", "preview", SMALL, "-o", str(output), "--per-class", "3", "--split", "val"])
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    with Image.open(output) as grid:
        assert grid.mode == "L"
        assert grid.height == 7 * (96 + 2) + 2
        assert grid.width > 3 * (96 + 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "show", "imagenet"], "unknown dataset kind 'imagenet'"),
        (["data", "show", "synthetic?n=ten"], "option 'n' of synthetic must be an integer"),
        (["data", "show", "fer2013:/no/such/fer2013.csv"], "/no/such/fer2013.csv: file not found"),
        (["data", "show", "folder:/no/such/dir"], "/no/such/dir: not a folder"),
        (
            ["data", "preview", SMALL, "-o", "/no/such/dir/grid.png"],
            "folder /no/such/dir does not exist",
        ),
        (
            ["data", "preview", SMALL, "-o", "x.png", "--per-class", "0"],
            "--per-class must be a whole number from 1 to 1000",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1
    assert message in err
