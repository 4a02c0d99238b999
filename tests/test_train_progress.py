"""`harness train` and `harness baselines` as a user meets them: the demo defaults learn,
the progress output names the cost before training, and bad input fails before it."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.commands._training import DEMO_DATA, DEMO_SKELETON, DEMO_TRAINING
from harness.config import TrainConfig
from harness.store import Store

TINY = ["--data", "synthetic?n=300", "--epochs", "1", "--batch-size", "16", "--device", "cpu"]


def test_a_short_run_on_the_default_settings_beats_chance(tmp_path, capsys):
    # The demo defaults (no --data): (IR)*2 for 2 epochs, measured on 2 shared cores at
    # seeds 0 and 1: test 0.33-0.40 (chance 1/7 = 0.14), about 10 s of training.
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["train", "(IR)*2", "--epochs", "2", "--device", "cpu", "--db", db, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["config"]["data"].startswith(DEMO_DATA.split("&")[0])
    assert {k: printed["config"]["skeleton"][k] for k in DEMO_SKELETON} == DEMO_SKELETON
    assert {name: printed["config"][name] for name in DEMO_TRAINING} == DEMO_TRAINING
    assert printed["test_acc"] >= 2 / 7 and printed["val_acc"] >= 2 / 7


def test_demo_defaults_yield_to_flags_and_to_data(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["train", "R I", "--epochs", "1", "--max-batches", "1", "--device", "cpu",
            "--db", db, "--json"]  # fmt: skip
    assert main([*args, "--width-mult", "0.125", "--rotate-deg", "5"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["skeleton"]["width_mult"] == 0.125 and config["rotate_deg"] == 5
    # The rest of the demo's recipe (rates tuned in AdamW + one-cycle) holds whole,
    # whatever `fast` uses.
    kept = {name: value for name, value in DEMO_TRAINING.items() if name != "rotate_deg"}
    assert {name: config[name] for name in kept} == kept
    # With --data (or --protocol) the protocol's values hold.
    assert main([*args, "--data", "synthetic?n=300", "--width-mult", "0.125"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    fast = TrainConfig.from_protocol("fast")
    assert {name: config[name] for name in DEMO_TRAINING} == {
        name: getattr(fast, name) for name in DEMO_TRAINING
    }
    # ... which differ from the demo's, or the line above would not tell them apart.
    assert any(getattr(fast, name) != value for name, value in kept.items())


def test_crop_padding_mode_is_a_flag_recorded_with_the_trial_and_used(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["train", "R I", *TINY, "--max-batches", "1", "--width-mult", "0.125", "--db", db]
    assert main([*args, "--crop-padding-mode", "replicate", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["config"]["crop_padding_mode"] == "replicate"
    with Store(db) as store:
        stored = store.trial(printed["trial_id"])
    assert stored["hyperparameters"]["crop_padding_mode"] == "replicate"
    # The protocol's value holds without the flag, and the trainer's augmentation uses it.
    assert main([*args, "--json"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["crop_padding_mode"] == TrainConfig.from_protocol("fast").crop_padding_mode


def test_an_unknown_crop_padding_mode_is_refused_like_any_choice(capsys):
    assert main(["train", "R I", "--crop-padding-mode", "circular", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--crop-padding-mode must be one of zeros, reflect, replicate, got 'circular'" in err[0]


def test_the_trainer_crops_with_the_configured_padding_mode():
    import torch

    from harness.data import load_dataset
    from harness.models import Skeleton, build_model
    from harness.train import Trainer

    dataset = load_dataset("synthetic?n=60&size=16")
    model = build_model("R I", Skeleton(input_shape=(1, 16, 16), num_classes=7, width_mult=0.125))
    for mode in ("zeros", "reflect"):
        config = TrainConfig(crop_padding=4, crop_padding_mode=mode, flip=False, rotate_deg=0.0)
        trainer = Trainer(model, dataset, config, torch.device("cpu"))
        crops = trainer.augment(torch.full((64, 1, 16, 16), 255, dtype=torch.uint8))
        # Zero padding shows black bars on most of 64 shifted crops; reflection never does.
        assert (crops.amin((1, 2, 3)) == 0).any() == (mode == "zeros")


def test_progress_names_the_flops_then_estimates_the_run_time(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["train", "R I", *TINY, "--width-mult", "0.25", "--db", db]) == 0
    err = capsys.readouterr().err
    with Store(db) as store:
        flops = int(store.trials_frame()["flops"].iloc[0])
    flops_line = f"{flops / 1e6:,.1f} MFLOPs per image (fvcore, multiply-add = 1)"
    positions = [err.find(text) for text in ("training R|I on", flops_line, "estimate: ~",
                                             "an epoch", "epoch   1:")]  # fmt: skip
    assert -1 not in positions, err
    assert positions == sorted(positions)

    for quiet in ("--json", "--no-progress"):
        assert main(["train", "R I", *TINY, "--width-mult", "0.25", "--db", db, quiet]) == 0
        err = capsys.readouterr().err
        assert "MFLOPs" not in err and "estimate" not in err and "training" not in err


@pytest.mark.parametrize(
    ("flags", "remedy"),
    [
        ([], "timm's own stem"),
        (["--baseline-stem", "small"], "small stem (first 4x of downsampling removed)"),
        (["--resize", "64"], "timm's own stem, inputs upsampled to 64x64"),
    ],
)
def test_baselines_progress_names_the_stem_remedy_before_training(flags, remedy, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["baselines", "--models", "mobilenetv2_050", *TINY, "--max-batches", "7", *flags]
    assert main([*args, "--db", db]) == 0
    err = capsys.readouterr().err
    assert remedy in err and "MFLOPs per image" in err
    assert err.find(remedy) < err.find("estimate: ~") < err.find("epoch   1:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "RQ"], "unknown block 'Q'"),
        (["train", "R I", "--data", "ckplus:/no/such/folder"], "not a folder"),
        (["train", "R I", "--data", "synthetic?bogus=1"], "unknown option 'bogus'"),
        (["train", "timm:resnet5O"], "unknown timm model"),
        (["train", "timm:resnet18", "--pretrained", "/no/such.pth"], "does not exist"),
        (["train", "R*4", "--data", "synthetic?n=300&size=16", "--stem", "resnet"], "small"),
        (["baselines", "--models", "mobilenetv2_050,not_a_model"], "unknown timm model"),
        (["baselines", "--data", "folder:/no/such/folder"], "folder"),
        (["baselines", "--models", "resnet18", "--pretrained", "/no/such.pth"], "does not exist"),
        (["train", "R I", "--threads", "0"], "--threads must be a whole number from 1 to"),
        (["baselines", "--device", "nonsense"], "--device must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_bad_input_fails_before_any_progress(argv, message, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    device = [] if "--device" in argv else ["--device", "cpu"]
    assert main([*argv, *device, "--db", db]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("harness: error: ") and captured.err.count("\n") == 1, (
        captured.err
    )
    assert message in captured.err and captured.out == ""
    assert not (tmp_path / "r.db").exists()


def test_baselines_json_is_the_stored_result_and_quiet_has_no_bars(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'b.db'}"
    args = ["baselines", "--models", "mobilenetv2_050", *TINY, "--max-batches", "2", "--db", db]
    assert main([*args, "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    (result,) = summary["baselines"]
    with Store(db) as store:
        stored = store.trial(result["trial_id"])
    assert (result["arch"], result["test_acc"]) == (stored["arch"], stored["test_acc"])
    assert result["stem"] == "timm" and summary["wall_s"] > 0
    assert "epoch 1/1" not in err  # no bar with --json
    assert main([*args, "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "epoch 1/1" not in err and "wall time:" in err and "mobilenetv2_050" in out


def test_bench_shows_a_bar_unless_quiet(capsys):
    assert main(["bench", "R I", "I R", "--no-latency", "--input", "1x16x16"]) == 0
    err = capsys.readouterr().err
    assert "bench" in err and "net" in err and "wall time:" in err
    assert main(["bench", "R I", "--no-latency", "--input", "1x16x16", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_setting_added_later_keeps_earlier_records_matching():
    # Runs recorded before crop_padding_mode existed all padded with zeros: at zeros the
    # setting stays out of the identity, so their records are still reused and grouped.
    zeros = TrainConfig.from_protocol("fast", arch="RI")
    assert "crop_padding_mode" not in zeros.identity()
    assert "crop_padding_mode" not in zeros.hyperparameters()
    reflect = zeros.replace(crop_padding_mode="reflect")
    assert reflect.identity()["crop_padding_mode"] == "reflect"
    assert reflect.hyperparameters()["crop_padding_mode"] == "reflect"
    assert {k: v for k, v in reflect.identity().items() if k != "crop_padding_mode"} == (
        zeros.identity()
    )


def test_the_config_defaults_are_the_fast_protocol():
    # A library caller's TrainConfig() trains like `harness train --protocol fast` (on the
    # CPU: batch_size_cuda stays None, "as batch_size", or every protocol without its own
    # would inherit fast's 512), so the protocol file and the dataclass cannot drift apart.
    fast, bare = TrainConfig.from_protocol("fast"), TrainConfig()
    names = [*bare.hyperparameters(), "crop_padding_mode", "beta2", "momentum"]
    differing = {
        name: (getattr(bare, name), getattr(fast, name))
        for name in names
        if getattr(bare, name) != getattr(fast, name)
    }
    assert not differing, f"TrainConfig defaults differ from fast.toml: {differing}"
