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

`hold_interrupts(what)` holds Ctrl-C and SIGTERM back while a short piece of
bookkeeping that must not be cut in half runs (saving a trained network's
weights and marking its row complete): the stop is said on stderr and raised
as soon as the bookkeeping is done, so a trial trained for an hour is recorded
complete rather than `interrupted` and trained again. A second Ctrl-C stops at
once, for a user who will not wait (a hung upload to a bucket); a repeated
SIGTERM is a supervisor asking again and stays held.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "hold_interrupts", "stop_on_sigterm"]


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


@contextmanager
def hold_interrupts(what: str) -> Iterator[None]:
    """Run the body with Ctrl-C and SIGTERM held; a held one is raised when it ends.

    The held signal is delivered again after the previous handlers are back, so it
    does what it would have done (KeyboardInterrupt, `Terminated`, or the default
    action where no handler was set). Outside the main thread, where Python delivers
    no signal, this holds nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if held and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user will not wait
        if not held:
            held.append(signum)
            print(
                f"harness: stopping after {what} (Ctrl-C again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

    # An ignored signal stays ignored; one handled outside Python (getsignal gives None)
    # could not be put back: neither is held.
    held_signals = [
        s
        for s in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(s) not in (None, signal.SIG_IGN)
    ]
    previous = {signum: signal.signal(signum, hold) for signum in held_signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held:
        signal.raise_signal(held[0])
