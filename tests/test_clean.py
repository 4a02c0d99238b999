"""`harness clean`: shows the data cache, deletes only its entries, never results or the database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.data import load_dataset
from harness.store import Store


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$HARNESS_CACHE with two real entries (written by the loader) and a file of someone else's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(folder))
    load_dataset("synthetic?n=60&size=16")
    load_dataset("synthetic?n=60&size=16&seed=1")
    (folder / "README").write_text("kept")
    return folder


def entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".npz")


def test_without_yes_only_shows(cache, capsys):
    size = sum(p.stat().st_size for p in entries(cache))
    assert main(["clean", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["folder"] == str(cache) and info["entries"] == 2 and info["bytes"] == size
    assert info["deleted"] == 0 and len(entries(cache)) == 2
    assert main(["clean"]) == 0
    out = capsys.readouterr().out
    assert f"data cache: {cache} (2 entries" in out and "harness clean --yes" in out


@pytest.mark.parametrize("flag", ["--yes", "--cache"])
def test_yes_deletes_entries_and_nothing_else(cache, capsys, tmp_path, monkeypatch, flag):
    monkeypatch.chdir(tmp_path)
    Store().close()  # the default database, results/harness.db under the current folder
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "s.html").write_text("<html>")
    size = sum(p.stat().st_size for p in entries(cache))
    assert main(["clean", flag, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["deleted"] == 2 and info["freed_bytes"] == size
    assert entries(cache) == [] and (cache / "README").read_text() == "kept"
    assert (tmp_path / "results" / "harness.db").is_file()
    assert (tmp_path / "reports" / "s.html").is_file()
    # The next load parses again and the cache fills up again.
    load_dataset("synthetic?n=60&size=16")
    assert len(entries(cache)) == 1


def test_an_emptied_folder_is_removed(tmp_path, capsys):
    folder = tmp_path / "c"
    load_dataset("synthetic?n=60&size=16", cache_dir=folder)
    assert main(["clean", "--cache-dir", str(folder), "--yes"]) == 0
    assert "deleted 1 entries" in capsys.readouterr().out
    assert not folder.exists()
    assert main(["clean", "--cache-dir", str(folder)]) == 0
    assert "not created yet" in capsys.readouterr().out
