"""SIGTERM (what `timeout`, `docker stop` and Slurm send) stops a command as Ctrl-C does:
the trial being trained is recorded `interrupted`, not left `running`, and the command
says so and exits 130 (harness/signals.py says why 130)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.signals import Terminated, stop_on_sigterm


def test_sigterm_raises_a_keyboard_interrupt_once():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode; this is never reached
        assert isinstance(raised.value, Terminated)
        # A second SIGTERM while the first is being recorded does not cut it short.
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _statuses(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return [row[0] for row in connection.execute("SELECT status FROM harness_trials")]
    except sqlite3.OperationalError:  # the tables are still being created
        return []


def _wait_for(condition, seconds: float = 180.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_sigterm_during_train_records_the_trial_interrupted(tmp_path):
    db = tmp_path / "h.db"
    env = {**os.environ, "HARNESS_DB": f"sqlite:///{db}", "OMP_NUM_THREADS": "1"}
    argv = [
        sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())",
        "train", "RI", "--data", "synthetic?n=600&size=16", "--epochs", "500",
        "--threads", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert _wait_for(lambda: _statuses(db) == ["running"]), proc.stderr
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.rstrip().splitlines()[-1].endswith("harness: interrupted")
    assert _statuses(db) == ["interrupted"]
