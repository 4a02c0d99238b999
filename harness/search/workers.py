"""`--workers N`: N worker processes on this machine against the same storage.

Each worker is `python -m harness.search.worker_main SETTINGS_JSON`: a fresh
interpreter (no forked torch state) that opens the study and the dataset once
and runs `run_worker` until the study has its trials (the seed repeats that
follow are the parent's). The entry point lives in its own module so that the
runner imports this one and nothing imports back. On CUDA each worker sees one GPU (CUDA_VISIBLE_DEVICES, round
robin); on the CPU each gets an equal share of the cores. The parent polls the
storage for progress. Workers on other machines run the same `harness run`
command with `--storage postgresql://...`: that is the multi-machine setup.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.search.plan import RunPlan
from harness.search.settings import SearchSettings

if TYPE_CHECKING:
    import optuna

    from harness.search.progress import Progress

__all__ = ["run_workers", "worker_environments"]

POLL_S = 1.0
WORKER_MODULE = "harness.search.worker_main"


def worker_environments(n: int, device: str) -> list[tuple[dict[str, str], int | None]]:
    """(environment, CPU threads or None) for each of `n` workers."""
    base = dict(os.environ)
    gpus: list[str] = []
    if device in ("auto", "cuda") or device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
            gpus = [g.strip() for g in visible.split(",") if g.strip()] or [
                str(i) for i in range(torch.cuda.device_count())
            ]
    out: list[tuple[dict[str, str], int | None]] = []
    for index in range(n):
        env = dict(base)
        threads = None
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        else:
            threads = max(1, (os.cpu_count() or 1) // n)
        out.append((env, threads))
    return out


def _worker_settings(
    settings: SearchSettings, study: str, index: int, threads: int | None
) -> SearchSettings:
    overrides = dict(settings.overrides)
    if threads is not None and overrides.get("threads") is None:
        overrides["threads"] = threads
    if "device" in overrides and str(overrides["device"]).startswith("cuda:"):
        overrides["device"] = "cuda"  # the worker sees its one GPU as cuda:0
    return dataclasses.replace(
        settings,
        url="",  # passed in $HARNESS_DB: a password must not show in `ps`
        study=study,
        worker_index=index,
        workers=1,
        progress=False,
        repeats=1,
        overrides=overrides,
    )


def run_workers(search: RunPlan, study: optuna.Study, progress: Progress) -> None:
    """Start the workers, show progress until they exit; HarnessError if one failed."""
    from harness.search.objective import best_text
    from harness.search.progress import format_trial_line
    from harness.search.study import REPEAT_ATTR, SEED_PARAM, STATUS_ATTR, counted_trials
    from harness.store import ENV_VAR

    settings = search.settings
    device = str(settings.overrides.get("device") or "auto")
    logs = Path(tempfile.mkdtemp(prefix="harness-workers-"))
    procs: list[tuple[subprocess.Popen, Path]] = []
    for index, (env, threads) in enumerate(worker_environments(settings.workers, device)):
        env[ENV_VAR] = settings.url
        worker = _worker_settings(settings, search.study, index, threads)
        log = logs / f"worker-{index}.log"
        with open(log, "w") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, worker.to_json()],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=handle,
            )
        procs.append((proc, log))
    reported: set[int] = set()
    try:
        while True:
            running = [p for p, _ in procs if p.poll() is None]
            for trial in study.get_trials(deepcopy=False):
                status = trial.user_attrs.get(STATUS_ATTR)
                if status and trial.number not in reported and trial.state.is_finished():
                    reported.add(trial.number)
                    attrs = trial.user_attrs
                    seed = trial.params.get(SEED_PARAM) if attrs.get(REPEAT_ATTR) else None
                    arch = attrs.get("arch", "?")
                    line = format_trial_line(trial.number, arch, status, attrs, seed=seed)
                    progress.finished(line, count=False)
            progress.set_done(counted_trials(study))
            progress.set_best(best_text(study))
            if not running:
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        # Let each worker record its trial as interrupted before it exits.
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    failed = [(i, p.returncode, log) for i, (p, log) in enumerate(procs) if p.returncode != 0]
    if failed:
        index, code, log = failed[0]
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise HarnessError(
            f"{len(failed)} of {len(procs)} workers failed; worker {index} exited with status "
            f"{code}: {tail[0] if tail else 'no output'} (logs in {logs})"
        )
    for _, log in procs:
        log.unlink(missing_ok=True)
    logs.rmdir()
