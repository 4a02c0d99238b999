"""Hostile flag values refused while parsing, before any database is opened or trial
recorded: devices harness cannot train on, study names that are not one line of text,
block parameters the block does not take."""

from __future__ import annotations

from pathlib import Path

import pytest
from _refusal import refused

TRAIN = ["train", "RI", "--epochs", "1", "--max-batches", "1", "--threads", "1"]


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "h.db"
    return f"sqlite:///{path}", path


@pytest.mark.parametrize("device", ["mps", "meta", "xpu", "cuda:x", "gpu", "cpu:0"])
def test_a_device_harness_cannot_train_on_is_refused_before_any_record(db, capsys, device):
    url, path = db
    line = refused([*TRAIN, "--db", url, "--device", device], capsys)
    assert "--device must be auto, cpu, cuda or cuda:N" in line and repr(device) in line
    assert not path.exists()


def test_a_cuda_device_torch_does_not_see_is_refused(db, capsys, monkeypatch):
    import torch

    url, path = db
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    line = refused([*TRAIN, "--db", url, "--device", "cuda:3"], capsys)
    assert "torch sees 1 CUDA device(s), cuda:0 to cuda:0" in line
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    line = refused(["run", "rir_split", "--db", url, "--device", "cuda"], capsys)
    assert "torch sees no CUDA device" in line
    assert not path.exists()


@pytest.mark.parametrize(
    ("study", "message"),
    [
        ("x" * 10_000, "--study must be 1 to 200 characters, got 'xxxx"),
        ("a\udcff", "--study must be UTF-8 text"),  # the byte 0xff in argv
        ("two\nlines", "--study must be printable"),
        ("   ", "--study must be 1 to 200 characters"),
    ],
    ids=["long", "not-utf8", "newline", "blank"],
)
@pytest.mark.parametrize("command", ["train", "trials", "report", "run"])
def test_a_study_name_is_checked_where_the_flag_is_parsed(db, capsys, study, message, command):
    url, path = db
    argv = {
        "train": [*TRAIN, "--db", url],
        "trials": ["trials", "--db", url],
        "report": ["report", "--db", url],
        "run": ["run", "rir_split", "--db", url],
    }[command]
    line = refused([*argv, "--study", study], capsys)
    assert message in line and len(line) < 300
    assert not path.exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"R": {"reduction": 0}}', "--block-params R.reduction must be a whole number from 1"),
        ('{"R": {"reduction": "4"}}', "R.reduction must be a whole number"),
        ('{"R": {"bogus": 1}}', "R.bogus: unknown block parameter (allowed: drop_path_rate, red"),
        ('{"I": {"exp_ratio": -2}}', "I.exp_ratio must be a finite number above 0 and at most 64"),
        ('{"X": {"a": 1}}', "--block-params X: unknown block letter (known: I, R)"),
        ('{"I": 6}', "--block-params I: expected a table of parameters"),
        ("[1, 2]", "--block-params must map letters to objects"),
        ("{not json", "--block-params is not valid JSON"),
    ],
)
def test_block_params_are_checked_while_parsing(db, capsys, params, message):
    url, path = db
    line = refused([*TRAIN, "--db", url, "--block-params", params], capsys)
    assert message in line, line
    assert not path.exists()


def test_a_reduction_that_does_not_divide_a_width_records_nothing(db, capsys):
    url, path = db
    line = refused([*TRAIN, "--db", url, "--block-params", '{"R": {"reduction": 3}}'], capsys)
    assert "reduction 3 does not divide" in line
    assert not path.exists()


def test_a_batch_of_one_with_the_paper_head_is_one_line(capsys, tmp_path):
    from _refusal import refused

    line = refused(["train", "R I", "--head", "paper", "--batch-size", "1", "--epochs", "1",
                    "--db", f"sqlite:///{tmp_path / 'b.db'}"], capsys)  # fmt: skip
    assert "paper head trains with batches of at least 2 images" in line
    assert not (tmp_path / "b.db").exists()
