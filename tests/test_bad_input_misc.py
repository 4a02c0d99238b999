"""Bad input beyond flags: output paths, refused checkpoints, long grammar errors, CSV
lines over csv's field limit. Each is one line of ours, exit 2, and nothing left behind."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from _refusal import refused

from harness.errors import ConfigError, GrammarError, ModelError
from harness.output import atomic_path, check_writable, write_text_atomic
from harness.store import Store

SMALL = "synthetic?n=60&size=16"


@pytest.fixture
def db(tmp_path: Path, record_trial) -> str:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Store(url) as store:
        record_trial(store, study="kept", epochs=2)
    return url


# -- output paths ------------------------------------------------------------------------


def test_report_onto_a_folder_is_refused_before_work(db, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    line = refused(["report", "--db", db, "-o", str(folder)], capsys)
    assert f"-o {folder} is a folder" in line
    assert list(folder.iterdir()) == []


def test_report_whose_target_turns_into_a_folder_leaves_no_partial(
    db, tmp_path, capsys, monkeypatch
):
    # The check passed, then the path became a folder: the rename fails, and the
    # half-written page must not stay behind as a .partial file.
    target = tmp_path / "page.html"
    monkeypatch.setattr("harness.commands.report.check_output", lambda *a, **k: None)
    target.mkdir()
    line = refused(["report", "--db", db, "-o", str(target)], capsys)
    assert f"cannot write {target}" in line
    assert list(target.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no .partial


def test_default_report_folder_that_is_a_file_isrefused(db, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").write_text("not a folder")
    line = refused(["report", "--db", db], capsys)
    assert "reports is a file, not a folder" in line


def test_preview_onto_a_folder_isrefused(tmp_path, capsys):
    line = refused(["data", "preview", SMALL, "-o", str(tmp_path)], capsys)
    assert "is a folder" in line and "preview.png" in line


def test_failed_write_leaves_neither_partial_nor_target(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as partial:
        partial.write_text("half")
        raise RuntimeError("interrupted mid-write")
    assert list(tmp_path.iterdir()) == []
    write_text_atomic(target, "whole")
    assert target.read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600


def test_unwritable_places_are_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "page.html")
    with pytest.raises(ConfigError, match="names a folder"):
        check_writable(f"{tmp_path}/new/")
    assert check_writable(tmp_path / "a" / "b.html") == tmp_path / "a" / "b.html"


# -- checkpoints -----------------------------------------------------------------------


class _Hostile:
    def __reduce__(self):
        return (os.system, ("echo hostile pickle ran",))


@pytest.mark.parametrize("kind", ["pickle", "torch-pickle", "text", "empty", "list"])
def test_refused_checkpoint_is_one_line_of_ours(kind, tmp_path, capsys):
    path = tmp_path / "weights.pt"
    if kind == "pickle":
        path.write_bytes(pickle.dumps(_Hostile()))
    elif kind == "torch-pickle":
        torch.save({"w": _Hostile()}, path)
    elif kind == "text":
        path.write_text("these are not weights\n")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        torch.save([1, 2, 3], path)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    argv = ["train", "RI", "--data", SMALL, "--epochs", "1", "--device", "cpu", "--db", db]
    line = refused([*argv, "--pretrained", str(path)], capsys)
    assert str(path) in line and "weights_only=False" not in line
    assert "\x1b" not in line  # no colour codes
    if kind != "empty":
        assert "only weights-only checkpoints" in line
    expected = {
        "pickle": "is not weights-only",
        "torch-pickle": "is not weights-only",
        "text": "is not a PyTorch checkpoint",
        "empty": "is an empty file",
        "list": "holds a list but no state dict",
    }
    assert expected[kind] in line
    assert "hostile pickle ran" not in capsys.readouterr().out


def test_a_real_state_dict_still_loads(tmp_path):
    from harness.candidate import read_checkpoint

    path = tmp_path / "ok.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    assert list(read_checkpoint(path)) == ["w"]
    with pytest.raises(ModelError, match="only weights-only"):
        torch.save({"w": 1}, path)
        read_checkpoint(path)


# -- long grammar input, long CSV lines ----------------------------------------------------


def test_long_grammar_error_shows_a_window_around_the_column():
    from harness.grammar import resolve

    text = "R" * 5000 + "Q" + "I" * 5000
    with pytest.raises(GrammarError) as caught:
        resolve(text, (3, 4, 6, 3))
    message = str(caught.value)
    assert len(message) < 200, message
    assert "at column" in message and "(10,001 characters)" in message
    with pytest.raises(GrammarError) as caught:
        resolve("R I Q", (3, 4, 6, 3))
    assert str(caught.value).startswith("unknown block 'Q' at column 5 in \"R I Q\"")


def test_long_grammar_error_points_at_the_bad_character():
    from harness.grammar import parse

    text = "R" * 3000 + "(" + "I" * 3000
    with pytest.raises(GrammarError) as caught:
        parse(text)
    message = str(caught.value)
    assert "…" in message and len(message) < 250, message


def test_csv_line_over_the_field_limit_names_its_line(tmp_path, capsys):
    pixels = " ".join(["7"] * 48 * 48)
    path = tmp_path / "fer2013.csv"
    path.write_text(
        f"emotion,pixels,Usage\n0,{pixels},Training\n1,{pixels},Training\n"
        f'2,"{"7" * 200_000}",Training\n'
    )
    line = refused(["data", "show", f"fer2013:{path}", "--no-cache"], capsys)
    assert f"{path} line 4: malformed CSV (field larger than field limit" in line


def test_ferplus_votes_csv_over_the_field_limit_names_its_line(tmp_path):
    from harness.data.ferplus import NEW_HEADER, read_votes_csv
    from harness.errors import DataError

    path = tmp_path / "fer2013new.csv"
    path.write_text(
        ",".join(NEW_HEADER) + "\nTraining,x.png" + ",1" * 10 + f'\nTraining,"{"x" * 200_000}"\n'
    )
    with pytest.raises(DataError, match=r"fer2013new.csv line 3: malformed CSV"):
        read_votes_csv(path)
