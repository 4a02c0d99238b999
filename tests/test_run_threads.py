"""`harness run` threads: torch's default (all cores) unless --threads, whatever the load."""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.commands.run import used_threads
from harness.search import SearchSettings
from harness.train import Trainer

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


@dataclass
class Threads:
    set_to: list[int] = field(default_factory=list)  # every torch.set_num_threads value
    training: list[int] = field(default_factory=list)  # torch's count as each epoch began


@pytest.fixture
def busy_machine(monkeypatch: pytest.MonkeyPatch) -> Threads:
    """Eight cores at load 1000, torch at 2 threads; records the counts set and trained at."""
    monkeypatch.setattr(os, "getloadavg", lambda: (1000.0, 1000.0, 1000.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the default of a 2-core machine, and > the old heuristic's 1
    threads = Threads()
    original = torch.set_num_threads
    train_epoch = Trainer.train_epoch

    def spy(n: int) -> None:
        threads.set_to.append(n)
        original(n)

    def epoch_spy(self: Trainer, *args, **kwargs):
        threads.training.append(torch.get_num_threads())
        return train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(torch, "set_num_threads", spy)
    monkeypatch.setattr(Trainer, "train_epoch", epoch_spy)
    yield threads
    original(before)


def test_no_flag_uses_torchs_default_whatever_the_load(tiny_run, busy_machine, capsys):
    assert main(tiny_run) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0].endswith("device cpu, 2 CPU threads")
    assert busy_machine.training == [2]  # the one epoch trained at torch's default
    assert all(n == 2 for n in busy_machine.set_to)  # and nothing lowered it meanwhile
    assert torch.get_num_threads() == 2
    summary = json.loads(out)
    assert summary["threads"] == [2] and summary["workers"] == 1
    assert summary["trials"] == 1 and summary["wall_s"] > 0
    assert "trials:" not in err  # --quiet: no bar


def test_threads_flag_is_used_and_announced(tiny_run, busy_machine, capsys):
    assert main([*tiny_run, "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0].endswith("device cpu, 1 CPU thread")
    assert busy_machine.training == [1]


def test_cpu_workers_share_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (1000.0, 1000.0, 1000.0))
    settings = SearchSettings(space="x", url="sqlite://", workers=4, overrides={"device": "cpu"})
    assert used_threads(settings) == [2, 2, 2, 2]
    settings.overrides["threads"] = 3
    assert used_threads(settings) == [3, 3, 3, 3]
