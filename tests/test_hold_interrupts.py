"""A Ctrl-C or SIGTERM while a trained trial is being recorded waits for the record:
`harness.signals.hold_interrupts`, and run_trial's use of it around keeping the weights
and finishing the row (a trial trained for an hour is not trained again for a Ctrl-C
during its upload)."""

from __future__ import annotations

import signal
import threading

import pytest

from harness.config import TrainConfig
from harness.signals import Terminated, hold_interrupts, stop_on_sigterm
from harness.store import Store
from harness.trial import load_trial_dataset, run_trial

TINY = dict(
    arch="R I", data="synthetic?n=300", epochs=1, batch_size=32, max_batches=2,
    skeleton={"width_mult": 0.25}, device="cpu",
)  # fmt: skip


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'results.db'}") as opened:
        yield opened


@pytest.fixture(scope="module")
def tiny_data():
    return load_trial_dataset(TINY["data"])


def tiny_config() -> TrainConfig:
    return TrainConfig.from_protocol("fast", **TINY)


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


def test_ctrl_c_while_the_weights_are_kept_leaves_the_trial_complete_with_them(store, tiny_data):
    kept = []

    def keep(model, outcome, dataset):
        signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C during the upload
        kept.append(outcome.trial_id)

    with pytest.raises(KeyboardInterrupt):
        run_trial(tiny_config(), store, dataset=tiny_data, keep_weights=keep)
    row = store.trials_frame().iloc[0]
    assert kept == [row["trial_id"]]
    assert row["status"] == "complete" and row["test_acc"] is not None
    # The next run with reuse measures nothing: it is the same complete row.
    again = run_trial(tiny_config(), store, dataset=tiny_data, reuse=True)
    assert again.reused and again.trial_id == row["trial_id"]


def test_two_ctrl_c_while_the_weights_are_kept_record_the_trial_interrupted(store, tiny_data):
    def keep(model, outcome, dataset):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run_trial(tiny_config(), store, dataset=tiny_data, keep_weights=keep)
    row = store.trials_frame().iloc[0]
    assert row["status"] == "interrupted" and "Ctrl-C" in row["reason"]
