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
    Store().prepare().close()  # the default database, results/harness.db under the current folder
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


def test_emptying_keeps_the_folder_itself(tmp_path, capsys):
    # It may be a $HARNESS_CACHE the user made; "empties the cache" (README) is its contents.
    folder = tmp_path / "c"
    load_dataset("synthetic?n=60&size=16", cache_dir=folder)
    assert main(["clean", "--cache-dir", str(folder), "--yes"]) == 0
    assert "deleted 1 entries" in capsys.readouterr().out
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert main(["clean", "--cache-dir", str(folder)]) == 0
    assert f"data cache: {folder} (0 entries, 0 B)" in capsys.readouterr().out


def test_supernet_checkpoints_are_cache_entries_too(tmp_path, capsys, monkeypatch):
    """The supernet keeps its checkpoints in the cache (README); --yes deletes them, and
    their half-written temporary files, but nothing else in supernets/."""
    from types import SimpleNamespace

    from harness.estimate.supernet import default_checkpoint
    from harness.output import write_text_atomic

    folder = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(folder))
    load_dataset("synthetic?n=60&size=16")
    checkpoint = default_checkpoint(SimpleNamespace(name="rir_orderings"), "0123456789abcdef" * 2)
    assert checkpoint.parent == folder / "supernets"
    write_text_atomic(checkpoint, "weights")
    partial = checkpoint.with_name(f".{checkpoint.name}.k2j4_x9.partial")  # atomic_path's name
    partial.write_text("half")
    (folder / "supernets" / "mine.pt").write_text("kept")
    assert main(["clean", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 3 and info["other_files"] == 1
    assert main(["clean", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 3
    assert not checkpoint.exists() and not partial.exists() and entries(folder) == []
    assert [p.name for p in (folder / "supernets").iterdir()] == ["mine.pt"]
    (folder / "supernets" / "mine.pt").unlink()
    write_text_atomic(checkpoint, "weights")
    assert main(["clean", "--yes"]) == 0
    assert list(folder.iterdir()) == []  # supernets/, made by the supernet, goes when emptied
