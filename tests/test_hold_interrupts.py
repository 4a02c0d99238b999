"""A Ctrl-C or SIGTERM while a trained trial is being recorded waits for the record:
`harness.signals.hold_interrupts` (run_trial's use of it around keeping the weights and
finishing the row is tested in test_trial.py)."""

from __future__ import annotations

import signal
import threading

import pytest

from harness.signals import Terminated, hold_interrupts, stop_on_sigterm


@pytest.fixture(autouse=True)
def _handlers_put_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    after = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in before.items():
        signal.signal(signum, handler)
    assert after == before, "hold_interrupts left its handler installed"


def test_a_ctrl_c_is_held_until_the_body_ends_then_raised(capfd):
    done = []
    with pytest.raises(KeyboardInterrupt), hold_interrupts("recording trial 7"):
        signal.raise_signal(signal.SIGINT)
        done.append("the body ran to its end")
    assert done == ["the body ran to its end"]
    err = capfd.readouterr().err
    assert "harness: stopping after recording trial 7 (Ctrl-C again to stop at once)" in err


def test_a_second_ctrl_c_stops_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt), hold_interrupts("an upload that hangs"):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        done.append("never reached")
    assert done == []


def test_sigterm_is_held_a_repeat_stays_held_and_terminated_is_raised_after():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stop_on_sigterm()
        done = []
        with pytest.raises(Terminated), hold_interrupts("recording"):
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)  # a supervisor asking again
            done.append("finished")
        assert done == ["finished"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_nothing_arrives_nothing_is_raised(capfd):
    with hold_interrupts("recording"):
        value = 1
    assert value == 1 and capfd.readouterr().err == ""


def test_an_ignored_ctrl_c_stays_ignored(capfd):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with hold_interrupts("recording"):
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capfd.readouterr().err == ""


def test_outside_the_main_thread_it_holds_nothing_and_touches_no_handler():
    seen = []

    def body():
        with hold_interrupts("recording"):
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]
