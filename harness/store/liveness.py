"""Which process runs a trial, and whether it is still alive.

Each `running` trial row has one owner that decides its worker died:

- A trial of an Optuna search (its row has an `optuna_trial_number`): Optuna's
  heartbeat. Workers beat every `heartbeat_s`; a trial silent for `grace_s` is
  failed by the next worker that starts a trial (or by `harness run` as it
  prepares, `optuna.storages.fail_stale_trials`), the stale callback marks our
  row `interrupted` and Optuna's `RetryHeartbeatStaleTrialCallback` queues it
  again (`harness.search.study`). A search's seed repeats are such trials too.
  Nothing else touches those rows.
- Every other trial (`harness train`, `harness baselines`): no heartbeat, so its row records `host:pid` (`this_worker`), and the
  next trial started on the same host marks rows of that host whose process
  is gone as `interrupted` (`Store.start_trial`). A row left by another host
  waits for a run on its own host: from elsewhere, a dead process cannot be
  told from a slow one. A recycled pid keeps a dead row `running` until that
  process ends too.
"""

from __future__ import annotations

import os
import socket

__all__ = ["pid_alive", "this_worker", "worker_gone"]


def this_worker() -> str:
    """`host:pid` of this process, as trial rows record it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def worker_gone(worker: str | None) -> bool:
    """True when `worker` (`host:pid`) ran on this host and that process no longer
    exists; False when it is alive, ran elsewhere, or is not of that form."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not pid_alive(int(pid))
