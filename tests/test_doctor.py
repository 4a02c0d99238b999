"""`harness doctor`: versions, threads, CUDA, the database's state (changing nothing), the cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from harness import __version__
from harness.cli import main
from harness.store import SCHEMA_VERSION, Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request, tmp_path):
    """A fresh database URL on every backend we support, with the tables created."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/results.db"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    Store(url).prepare().close()
    return url


def doctor_json(capsys, *args: str) -> dict:
    assert main(["doctor", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_versions_threads_and_device(capsys, tmp_path):
    info = doctor_json(capsys, "--db", f"sqlite:///{tmp_path}/none.db", "--cache-dir", "x")
    assert info["harness"] == __version__
    assert info["packages"]["torch"] == torch.__version__
    assert set(info["packages"]) >= {"timm", "optuna", "fvcore", "sqlalchemy", "pandas", "plotly"}
    assert info["cpu"]["torch_threads"] == torch.get_num_threads()
    assert info["cuda"]["available"] == torch.cuda.is_available()
    assert len(info["cuda"]["devices"]) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    assert info["device"] == ("cuda" if torch.cuda.is_available() else "cpu")

    assert main(["doctor", "--db", f"sqlite:///{tmp_path}/none.db"]) == 0
    text = capsys.readouterr().out
    assert f"torch       {torch.__version__}" in text
    assert f"torch uses {torch.get_num_threads()} threads" in text


def test_existing_database_is_writable_and_left_unchanged(backend_url, capsys, tmp_path):
    db = Path(backend_url.removeprefix("sqlite:///")) if backend_url.startswith("sqlite") else None
    before = hashlib.sha256(db.read_bytes()).hexdigest() if db else None
    info = doctor_json(capsys, "--db", backend_url)["database"]
    assert info["exists"] is True and info["writable"] is True and info["problem"] is None
    assert info["schema_version"] == SCHEMA_VERSION
    if db is not None:
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    with Store(backend_url) as store:  # still a good database
        assert store.trials_frame().empty


def test_read_only_database_is_reported(tmp_path, capsys):
    path = tmp_path / "ro.db"
    Store(f"sqlite:///{path}").prepare().close()
    info = doctor_json(capsys, "--db", f"sqlite:///file:{path}?mode=ro&uri=true")["database"]
    assert info["exists"] is True and info["writable"] is False
    assert "readonly" in info["problem"]


def test_missing_database_is_not_created(tmp_path, capsys):
    path = tmp_path / "sub" / "h.db"
    info = doctor_json(capsys, "--db", f"sqlite:///{path}")["database"]
    assert info == {
        "url": f"sqlite:///{path}",
        "path": str(path),
        "exists": False,
        "schema_version": None,
        "writable": True,
        "problem": None,
    }
    assert not path.exists() and not path.parent.exists()


def test_password_is_masked_and_an_unreachable_server_is_a_line_not_an_error(capsys):
    url = "postgresql+psycopg://ann:s3cret@127.0.0.1:1/harness"
    assert main(["doctor", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert "postgresql+psycopg://ann:***@127.0.0.1:1/harness" in out
    assert "cannot be opened: cannot open database" in out


def test_cache_folder_and_size(tmp_path, capsys, monkeypatch):
    from harness.data import load_dataset

    cache = tmp_path / "cache"
    load_dataset("synthetic?n=60&size=16", cache_dir=cache)
    (cache / "notes.txt").write_text("not ours")
    entries = [p for p in cache.iterdir() if p.suffix == ".npz"]
    monkeypatch.setenv("HARNESS_CACHE", str(cache))
    info = doctor_json(capsys)["cache"]
    assert info == {
        "folder": str(cache),
        "exists": True,
        "entries": len(entries),
        "bytes": sum(p.stat().st_size for p in entries),
        "other_files": 1,
    }
    assert len(entries) == 1


def test_cuda_devices_are_listed(tmp_path):
    # The CUDA lines without a GPU: the report of a machine that has one, as collect() gives it.
    from harness.commands.doctor import collect, format_report

    info = collect(f"sqlite:///{tmp_path}/none.db", str(tmp_path / "cache"))
    info["cuda"] = {
        "available": True,
        "built_with": "13.0",
        "devices": [{"index": 0, "name": "NVIDIA H200", "memory_gib": 139.8, "capability": "9.0"}],
        "cudnn_available": True,
        "cudnn_version": 91002,
        "cudnn_enabled": True,
    }
    lines = format_report(info).splitlines()
    assert "cuda        available, torch built with CUDA 13.0" in lines
    assert "  cuda:0    NVIDIA H200, 139.8 GiB, compute capability 9.0" in lines
    assert "cudnn       version 91002" in lines
