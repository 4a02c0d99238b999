"""One candidate trained end to end and recorded: run_trial, `harness train`, `harness baselines`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import timm
import torch

from harness.candidate import build_candidate
from harness.cli import main
from harness.config import TrainConfig
from harness.errors import ModelError
from harness.store import Store
from harness.train import Trainer
from harness.trial import Constraints, load_trial_dataset, run_trial

TINY_DATA = "synthetic?n=300"


def tiny_config(**changes) -> TrainConfig:
    values = dict(
        arch="R I",
        data=TINY_DATA,
        epochs=2,
        batch_size=32,
        max_batches=3,
        skeleton={"width_mult": 0.25},
        device="cpu",
    )
    values.update(changes)
    return TrainConfig.from_protocol("fast", **values)


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'results.db'}") as opened:
        yield opened


@pytest.fixture(scope="module")
def tiny_data():
    return load_trial_dataset(TINY_DATA)


def _no_running(store: Store) -> None:
    assert "running" not in set(store.trials_frame()["status"])


def test_a_small_candidate_beats_chance_and_what_is_stored_is_what_was_printed(tmp_path, capsys):
    # Measured on 2 CPU cores, seed 0: val 0.36-0.38, test ~0.39 after 6 epochs
    # (chance 1/7 = 0.14); about 10 s.
    db = f"sqlite:///{tmp_path / 'r.db'}"
    status = main(
        ["train", "R*2 I*2", "--data", "synthetic?n=1500", "--epochs", "6", "--batch-size", "32",
         "--lr", "3e-3", "--width-mult", "0.5", "--device", "cpu", "--db", db, "--json"]
    )  # fmt: skip
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "complete"
    assert printed["test_acc"] > 0.25 and printed["val_acc"] > 0.25
    with Store(db) as store:
        stored = store.trial(printed["trial_id"])
        epochs = store.epochs(printed["trial_id"])
    for key in ("arch", "family", "params", "flops", "best_epoch", "val_acc", "val_loss",
                "test_acc", "test_loss", "per_class_acc", "class_names"):  # fmt: skip
        assert stored[key] == printed[key], key
    assert stored["kind"] == "candidate" and stored["study"] == "train"
    assert stored["config"]["lr"] == 3e-3 and stored["config"]["arch_requested"] == "R*2 I*2"
    assert stored["environment"]["torch"] == torch.__version__
    assert stored["data_fingerprint"] and stored["data_spec"].startswith("synthetic?n=1500")
    assert [e["val_acc"] for e in epochs] == [e["val_acc"] for e in printed["epochs"]]
    assert len(stored["confusion"]) == 7 and sum(map(sum, stored["confusion"])) > 0


def test_readable_summary_names_the_numbers(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["train", "R I", "--data", TINY_DATA, "--epochs", "1", "--max-batches", "2",
            "--width-mult", "0.25", "--device", "cpu", "--db", db, "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    with Store(db) as store:
        row = store.trials_frame().iloc[0]
    assert f"{100 * row['test_acc']:.2f}%" in out
    assert f"{row['params']:,}" in out
    assert "R|I" in out and db in out


def test_same_seed_reproduces_per_epoch_losses_on_cpu(store, tiny_data):
    first = run_trial(tiny_config(seed=3), store, dataset=tiny_data, measure_latency=False)
    again = run_trial(tiny_config(seed=3), store, dataset=tiny_data, measure_latency=False)
    other = run_trial(tiny_config(seed=4), store, dataset=tiny_data, measure_latency=False)
    losses = [(m.train_loss, m.val_loss) for m in first.epochs]
    assert losses == [(m.train_loss, m.val_loss) for m in again.epochs]
    assert losses != [(m.train_loss, m.val_loss) for m in other.epochs]


def test_nan_loss_is_recorded_as_failed(store, tiny_data, monkeypatch):
    real_loss = Trainer.loss
    calls = {"n": 0}

    def poisoned(self, logits, labels):
        calls["n"] += 1
        loss = real_loss(self, logits, labels)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(Trainer, "loss", poisoned)
    outcome = run_trial(tiny_config(epochs=3), store, dataset=tiny_data, measure_latency=False)
    assert outcome.status == "failed"
    assert "non-finite loss" in outcome.reason
    stored = store.trial(outcome.trial_id)
    assert stored["status"] == "failed" and stored["reason"] == outcome.reason
    assert stored["finished_at"] is not None
    # Epoch 1 (three steps plus validation) was fine and is kept.
    assert [e["epoch"] for e in store.epochs(outcome.trial_id)] == [1]
    _no_running(store)


def test_out_of_memory_is_recorded_and_the_process_goes_on(store, tiny_data, monkeypatch):
    real_loss = Trainer.loss
    calls = {"n": 0}

    def exhausted(self, logits, labels):  # in the second training step
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_loss(self, logits, labels)

    monkeypatch.setattr(Trainer, "loss", exhausted)
    failed = run_trial(tiny_config(), store, dataset=tiny_data, measure_latency=False)
    assert failed.status == "failed" and "out of memory" in failed.reason
    following = run_trial(tiny_config(seed=1), store, dataset=tiny_data, measure_latency=False)
    assert following.status == "complete"
    frame = store.trials_frame()
    assert dict(zip(frame["trial_id"], frame["status"], strict=True)) == {
        failed.trial_id: "failed",
        following.trial_id: "complete",
    }


def test_keyboard_interrupt_is_recorded_and_re_raised(store, tiny_data):
    def interrupt(metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(tiny_config(), store, dataset=tiny_data, on_epoch=interrupt)
    row = store.trials_frame().iloc[0]
    assert row["status"] == "interrupted" and "Ctrl-C" in row["reason"]
    assert row["epochs"] == 1


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


def test_sigint_to_harness_train_leaves_an_interrupted_trial(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "train", "R I", "--data", TINY_DATA,
         "--epochs", "200", "--max-batches", "2", "--width-mult", "0.25", "--device", "cpu",
         "--db", db, "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        # A shell without job control starts background jobs with SIGINT ignored, and a
        # Python started so never raises KeyboardInterrupt: give the child the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        epochs = 0
        while time.monotonic() < deadline and epochs < 2:
            time.sleep(0.5)
            assert process.poll() is None, process.communicate()
            if (tmp_path / "r.db").exists():
                with Store(db) as store:
                    frame = store.trials_frame()
                    epochs = int(frame["epochs"].iloc[0]) if len(frame) else 0
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)  # a busy 2-core machine can be slow here
    finally:
        process.kill()
    assert process.returncode == 130, err.decode()
    with Store(db) as store:
        row = store.trials_frame().iloc[0]
        assert row["status"] == "interrupted"
        assert row["epochs"] >= 2
        assert len(store.epochs(int(row["trial_id"]))) == row["epochs"]


def test_prune_signal_keeps_the_curves(store, tiny_data):
    def prune_after_two(metrics):
        if metrics.epoch == 2:
            raise optuna.TrialPruned()

    outcome = run_trial(tiny_config(epochs=5), store, dataset=tiny_data, on_epoch=prune_after_two)
    assert outcome.status == "pruned" and "epoch 2" in outcome.reason
    assert [e["epoch"] for e in store.epochs(outcome.trial_id)] == [1, 2]
    assert store.trial(outcome.trial_id)["val_acc"] == max(m.val_acc for m in outcome.epochs)


def test_constraints_reject_before_training(store, tiny_data):
    outcome = run_trial(
        tiny_config(),
        store,
        dataset=tiny_data,
        constraints=Constraints(max_flops=1000),
        measure_latency=False,
    )
    assert outcome.status == "pruned"
    assert outcome.reason.startswith("constraint: FLOPs") and "> max 1000" in outcome.reason
    assert store.epochs(outcome.trial_id) == []
    assert store.trial(outcome.trial_id)["flops"] == outcome.flops > 1000


def test_reuse_returns_the_stored_trial_without_training(store, tiny_data, monkeypatch):
    first = run_trial(tiny_config(), store, dataset=tiny_data, measure_latency=False)
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("trained again"))
    # Same experiment written differently: the canonical form is what counts.
    again = run_trial(tiny_config(arch="RI:2"), store, dataset=tiny_data, reuse=True)
    assert again.reused and again.trial_id == first.trial_id
    assert again.test_acc == first.test_acc
    assert [m.val_loss for m in again.epochs] == [m.val_loss for m in first.epochs]
    monkeypatch.undo()
    changed = run_trial(tiny_config(lr=tiny_config().lr * 2), store, dataset=tiny_data, reuse=True)
    assert not changed.reused and changed.trial_id != first.trial_id


def test_a_result_reused_by_another_study_is_recorded_there_too(store, tiny_data, monkeypatch):
    first = run_trial(tiny_config(), store, study="one", dataset=tiny_data, measure_latency=False)
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("trained again"))
    again = run_trial(tiny_config(), store, study="two", dataset=tiny_data, reuse=True,
                      optuna_trial_number=7)  # fmt: skip
    assert again.reused and again.trial_id != first.trial_id
    copied, source = store.trial(again.trial_id), store.trial(first.trial_id)
    assert copied["study"] == "two" and copied["optuna_trial_number"] == 7
    assert copied["reason"] == f"reused from trial {first.trial_id}"
    for key in ("status", "val_acc", "test_acc", "confusion", "test_predictions", "config_hash"):
        assert copied[key] == source[key]
    assert [e["val_acc"] for e in store.epochs(again.trial_id)] == [
        e["val_acc"] for e in store.epochs(first.trial_id)
    ]
    # Reused again in the same study: the copy itself, no second copy.
    third = run_trial(tiny_config(), store, study="two", dataset=tiny_data, reuse=True)
    assert third.trial_id == again.trial_id
    assert len(store.trials_frame(study="two")) == 1


@pytest.mark.parametrize("name", ["timm:resnet50", "timm:mobilenetv1_100", "timm:mobilenetv2_100"])
def test_small_stem_keeps_four_times_more_resolution_for_48px(name):
    # The default is timm's own stem, as the paper ran its baselines.
    plain = build_candidate(name, image_shape=(1, 48, 48), num_classes=7)
    small = build_candidate(name, image_shape=(1, 48, 48), num_classes=7, baseline_stem="small")
    assert (small.baseline_stem, plain.baseline_stem) == ("small", "timm")
    x = torch.randn(2, 1, 48, 48)
    assert small.model.forward_features(x).shape[-1] == 6
    assert plain.model.forward_features(x).shape[-1] == 2
    auto = {"baseline_stem": "auto", "num_classes": 7}
    assert build_candidate(name, image_shape=(1, 48, 48), **auto).baseline_stem == "small"
    assert build_candidate(name, image_shape=(3, 224, 224), **auto).baseline_stem == "timm"
    resized = build_candidate(name, image_shape=(1, 48, 48), resize=96, **auto)
    assert resized.input_shape == (1, 96, 96) and resized.baseline_stem == "timm"


def test_pretrained_checkpoint_is_adapted_to_the_data(tmp_path):
    source = timm.create_model("mobilenetv2_050", in_chans=3, num_classes=1000)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    candidate = build_candidate(
        "timm:mobilenetv2_050", image_shape=(1, 48, 48), num_classes=7, pretrained=str(path)
    )
    model = candidate.model
    assert model.get_classifier().out_features == 7
    # timm sums an RGB stem's filters over colours for one grey channel.
    torch.testing.assert_close(model.conv_stem.weight, source.conv_stem.weight.sum(1, keepdim=True))
    torch.testing.assert_close(
        model.blocks[3][0].conv_pw.weight, source.blocks[3][0].conv_pw.weight
    )
    with pytest.raises(ModelError, match="does not exist"):
        build_candidate("timm:resnet50", image_shape=(1, 48, 48), num_classes=7,
                        pretrained=str(tmp_path / "missing.pth"))  # fmt: skip
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="is not a PyTorch checkpoint"):
        build_candidate("timm:resnet50", image_shape=(1, 48, 48), num_classes=7,
                        pretrained=str(tmp_path / "junk.pth"))  # fmt: skip


def test_baselines_command_records_baselines_with_their_remedy(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["baselines", "--models", "mobilenetv2_050,timm:mobilenetv1_100", "--data", TINY_DATA,
            "--epochs", "1", "--max-batches", "2", "--device", "cpu", "--db", db, "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "timm:mobilenetv2_050" in out and "timm" in out.split("\n")[2].split()
    with Store(db) as store:
        frame = store.trials_frame()
        assert list(frame["arch"]) == ["timm:mobilenetv2_050", "timm:mobilenetv1_100"]
        assert set(frame["kind"]) == {"baseline"} and set(frame["family"]) == {"baseline"}
        assert set(frame["study"]) == {"baselines"}
        config = store.trial(int(frame["trial_id"].iloc[0]))["config"]
    # What a report labels a baseline's row with, all recorded.
    assert config["baseline_stem"] == "timm" and config["input_shape"] == [1, 48, 48]
    assert config["resize"] is None and config["pretrained"] is None
    assert config["skeleton"]["head"] == "linear"
    assert config["protocol"] == "fast" and config["epochs"] == 1


def test_bad_flags_are_clear_errors(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["train", "RX", "--db", db]) == 2
    assert "X" in capsys.readouterr().err
    assert main(["train", "RI", "--protocol", "nope", "--db", db]) == 2
    assert "known: fast, paper" in capsys.readouterr().err
    assert main(["baselines", "--models", "resnet50,mobilenetv2_100", "--pretrained", "x.pth",
                 "--db", db]) == 2  # fmt: skip
    assert "--pretrained" in capsys.readouterr().err


_WRITER = """
import sys
from harness.config import TrainConfig
from harness.store import Store
from harness.trial import load_trial_dataset, run_trial
store, data = Store(sys.argv[1]), load_trial_dataset("synthetic?n=300")
for seed in range(int(sys.argv[2]), int(sys.argv[2]) + 4):
    config = TrainConfig.from_protocol("fast", arch="R I", data="synthetic?n=300", epochs=2,
        max_batches=1, batch_size=32, skeleton={"width_mult": 0.125}, device="cpu", seed=seed)
    assert run_trial(config, store, dataset=data, measure_latency=False).status == "complete"
"""


def test_two_processes_training_into_one_sqlite_file_lose_nothing(tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    Store(db).close()  # create the schema once, as `harness run` does before its workers
    workers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, db, str(first)],
                         stderr=subprocess.PIPE)
        for first in (0, 100)
    ]  # fmt: skip
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-2000:]
    with Store(db) as store:
        frame = store.trials_frame()
        assert sorted(frame["seed"]) == [0, 1, 2, 3, 100, 101, 102, 103]
        assert set(frame["status"]) == {"complete"}
        assert list(frame["epochs"]) == [2] * 8


def test_baseline_stems_are_distinct_candidates(store, tiny_data):
    # max_flops=1 rejects both before training: only the measurements are recorded.
    flops = {}
    for stem in ("timm", "small"):
        config = tiny_config(arch="timm:mobilenetv2_050", baseline_stem=stem)
        outcome = run_trial(
            config, store, dataset=tiny_data, constraints=Constraints(max_flops=1),
            measure_latency=False,
        )  # fmt: skip
        flops[stem] = store.trial(outcome.trial_id)["flops"]
    assert store.trials_frame()["candidate_id"].nunique() == 2
    assert 10 < flops["small"] / flops["timm"] < 20  # 4x less downsampling: ~16x the work


# timm's test_resnet: a ResNet stem and classifier at a fraction of a second per FLOP count.
def test_a_baselines_options_are_the_flags_it_names(store, tiny_data):
    spelled = tiny_config(arch="timm:test_resnet?stem=small&head=paper&resize=56")
    assert (spelled.baseline_stem, spelled.resize) == ("small", 56)
    assert spelled.skeleton["head"] == "paper"
    flagged = tiny_config(
        arch="timm:test_resnet", baseline_stem="small", resize=56,
        skeleton={"width_mult": 0.25, "head": "paper"},
    )  # fmt: skip
    ids = []
    for config in (spelled, flagged):
        outcome = run_trial(
            config, store, dataset=tiny_data, constraints=Constraints(max_flops=1),
            measure_latency=False,
        )  # fmt: skip
        stored = store.trial(outcome.trial_id)
        ids.append((stored["candidate_id"], stored["config_hash"]))
        recorded = stored["config"]
        assert recorded["arch"] == "timm:test_resnet"
        assert (recorded["baseline_stem"], recorded["resize"]) == ("small", 56)
        assert recorded["skeleton"]["head"] == "paper" and recorded["input_shape"] == [1, 56, 56]
    assert ids[0] == ids[1]  # one network, one experiment, however it was spelled
    assert spelled.arch == "timm:test_resnet?stem=small&head=paper&resize=56"


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("timm:resnet50?stme=small", "unknown option 'stme'"),
        ("timm:resnet50?stem=tiny", "stem='tiny'"),
        ("timm:resnet50?resize=big", "whole number"),
        ("timm:resnet50?stem=small&stem=timm", "given twice"),
        ("timm:resnet50?head=", "needs a value"),
        ("RI?head=paper", "for timm baselines"),
    ],
)
def test_bad_baseline_options_are_config_errors(arch, message):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        tiny_config(arch=arch)


def test_head_and_weights_make_distinct_candidates(store, tiny_data, tmp_path):
    weights = tmp_path / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet", in_chans=1, num_classes=7).state_dict(), weights)
    rows = []
    for arch in (
        "timm:test_resnet",
        "timm:test_resnet?head=paper",
        f"timm:test_resnet?pretrained={weights}",
    ):
        outcome = run_trial(
            tiny_config(arch=arch), store, dataset=tiny_data,
            constraints=Constraints(max_flops=1), measure_latency=False,
        )  # fmt: skip
        rows.append(store.trial(outcome.trial_id))
    assert len({row["candidate_id"] for row in rows}) == 3
    assert len({row["config_hash"] for row in rows}) == 3
    assert rows[2]["config"]["pretrained"] == str(weights)
    assert rows[1]["params"] > rows[0]["params"]  # the paper head's 2048 and 1024 units


def test_sigmoid_loss_is_keras_categorical_cross_entropy_or_bce(tiny_data):
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, 1.0, -2.0, 0.3], [0.1] * 7])
    labels = torch.tensor([0, 3])
    # Keras: categorical_crossentropy(one_hot, sigmoid) divides by the sum, then -log.
    sig = torch.sigmoid(logits)
    keras = -(sig / sig.sum(-1, keepdim=True))[torch.arange(2), labels].log().mean()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nn.functional.one_hot(labels, 7).float()
    )
    candidate = build_candidate(
        "R I", image_shape=(1, 48, 48), num_classes=7,
        skeleton={"width_mult": 0.125, "output": "sigmoid"},
    )  # fmt: skip
    for loss, expected in (("renormalised", keras), ("bce", bce)):
        config = tiny_config(output_loss=loss, label_smoothing=0.0)
        trainer = Trainer(candidate.model, tiny_data, config, torch.device("cpu"))
        torch.testing.assert_close(trainer.loss(logits, labels), expected)
    with pytest.raises(Exception, match="output_loss must be one of renormalised, bce, got 'mse'"):
        tiny_config(output_loss="mse")
