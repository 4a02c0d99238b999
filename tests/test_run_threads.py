"""`harness run` threads: torch's default (all cores) unless --threads, whatever the load."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.commands.run import used_threads
from harness.search import SearchSettings

SPACE = """
description = "two positions"
[skeleton]
depths = [1, 1]
widths = [8, 16]
[architecture]
positions = ["R", "I"]
"""


@pytest.fixture
def tiny_run(tmp_path: Path) -> list[str]:
    space = tmp_path / "tiny.toml"
    space.write_text(textwrap.dedent(SPACE))
    return [
        "run",
        "--space",
        str(space),
        "--data",
        "synthetic?n=120&size=16",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--max-batches",
        "1",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--db",
        f"sqlite:///{tmp_path}/h.db",
        "--no-report",
        "--quiet",
        "--json",
    ]


@pytest.fixture
def busy_machine(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Eight cores at load 1000, torch at 2 threads; returns every set_num_threads value."""
    monkeypatch.setattr(os, "getloadavg", lambda: (1000.0, 1000.0, 1000.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the default of a 2-core machine, and > the old heuristic's 1
    calls: list[int] = []
    original = torch.set_num_threads

    def spy(n: int) -> None:
        calls.append(n)
        original(n)

    monkeypatch.setattr(torch, "set_num_threads", spy)
    yield calls
    original(before)


def test_no_flag_uses_torchs_default_whatever_the_load(tiny_run, busy_machine, capsys):
    assert main(tiny_run) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0].endswith("device cpu, 2 CPU threads")
    assert all(n == 2 for n in busy_machine)  # nothing lowered the count
    assert torch.get_num_threads() == 2
    summary = json.loads(out)
    assert summary["threads"] == [2] and summary["workers"] == 1
    assert summary["trials"] == 1 and summary["wall_s"] > 0
    assert "trials:" not in err  # --quiet: no bar


def test_threads_flag_is_used_and_announced(tiny_run, busy_machine, capsys):
    assert main([*tiny_run, "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0].endswith("device cpu, 1 CPU thread")
    assert 1 in busy_machine


def test_cpu_workers_share_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (1000.0, 1000.0, 1000.0))
    settings = SearchSettings(space="x", url="sqlite://", workers=4, overrides={"device": "cpu"})
    assert used_threads(settings) == [2, 2, 2, 2]
    settings.overrides["threads"] = 3
    assert used_threads(settings) == [3, 3, 3, 3]
