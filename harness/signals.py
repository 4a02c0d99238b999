"""SIGTERM stops a command the way Ctrl-C does.

`timeout`, `docker stop`, Slurm at the end of a job's time and a plain `kill`
send SIGTERM, whose default action ends the process at once: a trial being
trained stayed `running` for good, and the command exited 143 without a word.
With `stop_on_sigterm()` the signal raises `Terminated`, a KeyboardInterrupt,
in the main thread, so every Ctrl-C path runs unchanged: the trial (or the
supernet's trial) is recorded `interrupted`, a search tells its workers to stop
and record theirs, the checkpoint written after the last epoch still resumes,
and the command prints `harness: interrupted` and exits 130, as for Ctrl-C. 130
rather than 143: it is one stop, however it was asked for, and a wrapper that
wants 143 sees a non-zero status either way.

A second SIGTERM while the first is being recorded is ignored, so that a
supervisor repeating its request cannot cut the bookkeeping short (SIGKILL
still ends the process).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["Terminated", "stop_on_sigterm"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C."""


_state = {"raised": False}


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    if _state["raised"]:
        return
    _state["raised"] = True
    raise Terminated("terminated by SIGTERM")


def stop_on_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in this process (the main thread only can set a
    handler; elsewhere, as in a library caller's worker thread, this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state["raised"] = False
    signal.signal(signal.SIGTERM, _raise_terminated)
