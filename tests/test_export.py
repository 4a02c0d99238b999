"""`harness export`: a trial's saved weights as a checked folder, refused whole on bad input.

One real tiny trial (`_export_trial.train_tiny_trial`: run_trial on synthetic data, its
trained weights kept as an Optuna artifact linked to its row, as a search keeps them) is
exported once with every format; the command tests read its weights through
`harness.artifacts.trial_weights`.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import closing

import numpy as np
import pytest
import timm
import torch
from _export_trial import train_tiny_trial
from _refusal import refused

from harness.cli import main
from harness.export.bundle import FORMAT, FORMAT_VERSION, read_bundle
from harness.export.checks import TOLERANCE, ExportError
from harness.export.network import load_model
from harness.export.pipeline import export_trial, parse_formats
from harness.export.to_onnx import OPSET, require_onnx, run_onnx
from harness.store import Store
from harness.weights import file_sha256, load_weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_trial(tmp_path_factory.mktemp("trial"))


@pytest.fixture(scope="module")
def trial_row(tiny):
    with Store(tiny.db, create=False) as store:
        return store.trial(tiny.trial_id)


@pytest.fixture(scope="module")
def exported(tiny, trial_row, tmp_path_factory):
    state, metadata = load_weights(tiny.weights)
    out = tmp_path_factory.mktemp("exports") / "demo-trial"
    result = export_trial(trial_row, state, metadata, out=out, formats=["onnx,torchscript"])
    return result


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_the_folder_holds_the_weights_the_formats_and_a_config_that_describes_them(
    tiny, trial_row, exported
):
    folder = exported.folder
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.json", "model.onnx", "model.safetensors", "model.torchscript.pt"]
    assert _leftovers(folder.parent) == []
    config = json.loads((folder / "config.json").read_text())
    assert (config["format"], config["format_version"]) == (FORMAT, FORMAT_VERSION)
    arch = config["architecture"]
    assert arch["arch"] == trial_row["arch"] == "R|I" and arch["family"] == trial_row["family"]
    assert (
        arch["skeleton"]["width_mult"] == 0.25 and arch["timm"]["model_name"] == "harness_blockseq"
    )
    assert config["classes"] == tiny.classes == trial_row["class_names"]
    spec = config["input"]
    assert spec["shape"] == [1, 32, 32] and spec["grayscale"] and spec["resize"] is None
    assert spec["crop"] == "none"  # synthetic pictures are drawn square, never cut
    assert spec["value_range"] == [0.0, 1.0]
    assert spec["mean"] == [tiny.mean] and spec["std"] == [tiny.std]
    assert config["training"] == trial_row["config"]
    assert config["accuracy"]["test_acc_recorded"] == trial_row["test_acc"]
    assert config["accuracy"]["test_acc_reevaluated"] == trial_row["test_acc"]
    assert config["accuracy"]["val_acc_recorded"] == trial_row["val_acc"]
    recorded = config["trial"]
    assert recorded["id"] == tiny.trial_id and recorded["study"] == "demo"
    assert recorded["seed"] == 0 and recorded["data_spec"] == trial_row["data_spec"]
    assert recorded["data_fingerprint"] == trial_row["data_fingerprint"]
    assert "optuna_trial_number" in recorded
    env = config["environment"]["export"]
    assert env["torch"] == torch.__version__ and env["timm"] == timm.__version__
    assert env["onnx"] and env["onnxruntime"] and "hostname" not in env
    for name, entry in config["files"].items():
        assert entry["sha256"] == file_sha256(folder / name)
    checks = config["checks"]
    assert checks["onnx"]["opset"] == OPSET and checks["onnx"]["tolerance"] == TOLERANCE
    for name in ("safetensors", "timm", "onnx", "torchscript"):
        assert checks[name]["max_abs_diff"] <= TOLERANCE and checks[name]["images"] == 30
    assert checks["accuracy"]["passed"] and checks["preprocessing"]["equal_to_training"]


def test_the_reevaluated_test_accuracy_equals_the_recorded_one_exactly(trial_row, exported):
    check = exported.accuracy
    assert check.reevaluated == trial_row["test_acc"] and check.allowed_images == 0
    assert "re-evaluated" in check.line() and " = recorded " in check.line()


def test_onnx_takes_any_batch_and_gives_the_networks_logits(tiny, exported):
    images = tiny.test_images[:5]
    x = ((images.float() / 255.0 - tiny.mean) / tiny.std).numpy()
    expected = tiny.logits(images).numpy()
    for count in (1, 5):
        logits = run_onnx(exported.folder / "model.onnx", x[:count])
        assert logits.shape == (count, 7)
        assert np.abs(logits - expected[:count]).max() <= TOLERANCE


def test_torchscript_and_the_rebuilt_network_give_the_trained_networks_logits(tiny, exported):
    import warnings

    images = tiny.test_images[:8]
    x = (images.float() / 255.0 - tiny.mean) / tiny.std
    expected = tiny.logits(images)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(exported.folder / "model.torchscript.pt"))
        assert torch.allclose(scripted(x), expected, atol=1e-5)
        assert torch.allclose(load_model(exported.folder)(x), expected, atol=1e-5)


def test_timm_create_model_on_the_exported_file_gives_the_trained_networks_logits(tiny, exported):
    import harness.timm_model  # noqa: F401

    config = json.loads((exported.folder / "config.json").read_text())
    recipe = config["architecture"]["timm"]
    model = timm.create_model(
        "harness_blockseq",
        arch=config["architecture"]["arch"],
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(exported.folder / "model.safetensors")),
        **recipe["kwargs"],
    ).eval()
    images = tiny.test_images[:8]
    x = (images.float() / 255.0 - tiny.mean) / tiny.std
    with torch.inference_mode():
        assert torch.allclose(model(x), tiny.logits(images), atol=1e-5)


def test_a_trial_recorded_on_cuda_may_differ_by_one_percent_of_the_test_images(tiny, trial_row):
    from harness.export.evaluate import rebuild_trial, reevaluate

    state, _ = load_weights(tiny.weights)
    network = rebuild_trial({**trial_row, "device": "cuda:0"}, state)
    one_off = trial_row["test_acc"] + 1 / 30  # 1% of 30 images rounds up to one image
    network.trial = {**network.trial, "test_acc": one_off}
    check = reevaluate(network)
    assert check.allowed_images == 1 and "up to 1 image may differ" in check.line()
    assert " vs recorded " in check.line()
    network.trial = {**network.trial, "test_acc": one_off + 1 / 30}
    with pytest.raises(ExportError, match="recorded on cuda"):
        reevaluate(network)


@pytest.mark.slow  # about 9 s on 2 cores: torch.onnx.export of a MobileNetV2
def test_a_timm_baseline_exports_with_its_upsampling_and_predicts(tmp_path):
    from PIL import Image

    from harness.export.predict import predict_files

    baseline = train_tiny_trial(
        tmp_path, arch="timm:mobilenetv2_050", resize=40, epochs=1, max_batches=2
    )
    with Store(baseline.db, create=False) as store:
        row = store.trial(baseline.trial_id)
    state, metadata = load_weights(baseline.weights)
    result = export_trial(row, state, metadata, out=tmp_path / "exp", formats=["onnx"])
    config = result.config
    assert config["architecture"]["timm"] is None  # its harness stem and head are not timm's
    assert config["input"]["shape"] == [1, 40, 40] and config["input"]["image_size"] == [32, 32]
    assert config["input"]["resize"] == 40
    assert config["checks"]["onnx"]["max_abs_diff"] <= TOLERANCE
    Image.fromarray(baseline.test_images[0, 0].numpy()).save(tmp_path / "face.png")
    expected = torch.nn.functional.interpolate(
        baseline.test_images[:1].float() / 255.0, size=(40, 40), mode="bilinear",
        align_corners=False,
    )  # fmt: skip
    with torch.inference_mode():
        logits = baseline.model.eval()((expected - baseline.mean) / baseline.std)
    for onnx in (False, True):
        probs = predict_files(tmp_path / "exp", [tmp_path / "face.png"], onnx=onnx).probabilities
        assert np.abs(probs - logits.softmax(-1).numpy()).max() < 1e-4


def test_weights_that_do_not_score_the_recorded_accuracy_are_refused(tiny, trial_row, tmp_path):
    state, metadata = load_weights(tiny.weights)
    shifted = {**trial_row, "test_acc": trial_row["test_acc"] + 2 / 30}  # two images more
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="not the weights it measured"):
        export_trial(shifted, state, metadata, out=out)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_format_check_leaves_nothing_behind(tiny, trial_row, tmp_path, monkeypatch):
    import harness.export.to_onnx

    def off_by_a_little(path, images):
        return run_onnx(path, images) + 1e-3

    monkeypatch.setattr(harness.export.to_onnx, "run_onnx", off_by_a_little)
    state, metadata = load_weights(tiny.weights)
    out = tmp_path / "exports" / "new" / "out"  # its two parents are made for it
    with pytest.raises(ExportError, match=r"onnx check failed: max abs diff 1\.00e-03"):
        export_trial(trial_row, state, metadata, out=out, formats=["onnx"])
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_folder_is_refused_and_left_untouched(tiny, trial_row, tmp_path):
    state, metadata = load_weights(tiny.weights)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="already exists; choose another --out or add --force"):
        export_trial(trial_row, state, metadata, out=out)
    with pytest.raises(ExportError, match="not an export folder; --force replaces only"):
        export_trial(trial_row, state, metadata, out=out, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_force_replaces_an_earlier_export_whole(tiny, trial_row, tmp_path):
    state, metadata = load_weights(tiny.weights)
    out = tmp_path / "exp"
    export_trial(trial_row, state, metadata, out=out, formats=["torchscript"])
    assert (out / "model.torchscript.pt").is_file()
    export_trial(trial_row, state, metadata, out=out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert read_bundle(out).config["trial"]["id"] == tiny.trial_id
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]


def test_formats_are_checked_and_safetensors_is_always_written():
    assert parse_formats(None) == ["safetensors"]
    assert parse_formats(["torchscript,onnx", "onnx"]) == ["safetensors", "onnx", "torchscript"]
    with pytest.raises(ExportError, match="unknown --format 'tflite'"):
        parse_formats(["tflite"])


# -- the command ------------------------------------------------------------------------


def test_export_prints_each_check_the_folder_and_what_to_run_next(
    tiny, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "exp"
    argv = ["export", str(tiny.trial_id), "--db", tiny.db, "--out", str(out)]
    assert main([*argv, "--format", "onnx"]) == 0
    printed, err = capsys.readouterr()
    lines = printed.splitlines()
    assert lines[0].startswith("test accuracy re-evaluated ") and " = recorded " in lines[0]
    assert any(
        line.startswith("safetensors: rebuilt from config.json, max abs diff") for line in lines
    )
    assert any(
        line.startswith(f"onnx: opset {OPSET}, onnxruntime CPU, max abs diff ")
        and line.endswith("on 30 test images (tolerance 1e-04)")
        for line in lines
    )
    assert f"wrote {out}/ (config.json, model.safetensors, model.onnx)" in lines
    assert lines[-2] == f"  harness predict {out} IMAGE..."
    assert lines[-1].startswith("  import timm, harness.timm_model; model = timm.create_model(")
    assert err.startswith(f"exporting trial {tiny.trial_id} of study demo: R|I")
    # The printed timm line runs as it stands.
    namespace: dict = {}
    exec(lines[-1].strip(), namespace)
    assert namespace["model"].num_classes == 7


def test_export_best_picks_the_leaderboards_top_trial_and_prints_json(
    tiny, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--best", "--db", tiny.db, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trial_id"] == tiny.trial_id
    assert summary["folder"] == f"exports/demo-trial-{tiny.trial_id}"
    assert (tmp_path / summary["folder"] / "model.safetensors").is_file()
    assert summary["checks"]["accuracy"]["passed"]


def test_bad_input_is_one_line_and_leaves_no_folder(
    tiny, tmp_path, monkeypatch, capsys, record_trial
):
    saved = tiny.artifact.read_bytes()
    other_db = tmp_path / "two.db"
    # SQLite's backup, not a file copy: the database is in WAL mode, and a copy of the
    # main file alone may miss the newest writes (the trial, its weights link).
    source, target = sqlite3.connect(tiny.db.removeprefix("sqlite:///")), sqlite3.connect(other_db)
    with closing(source), closing(target):
        source.backup(target)
    with Store(f"sqlite:///{other_db}") as store:
        unkept = record_trial(store, study="other").trial_id  # a row without weights
    out = tmp_path / "out"
    base = ["export", "--db", tiny.db, "--out", str(out)]
    trial = str(tiny.trial_id)
    other = ["export", "--db", f"sqlite:///{other_db}", "--out", str(out)]
    cases = [
        ("no trial 999", [*base, "999"], None),
        (f"trial {unkept} has no saved weights", [*other, str(unkept)], None),
        (f"`harness export {unkept} --retrain` trains it again", [*other, str(unkept)], None),
        ("are not the file that was saved (SHA-256 differs): changed or truncated",
         [*base, trial], b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}"),
        ("SHA-256 differs", [*base, trial], saved[:-100]),
        (f"`harness export {trial} --retrain` trains it again", [*base, trial], saved[:-100]),
        ("give a TRIAL id or --best", base, None),
        ("--study goes with --best", [*base, trial, "--study", "demo"], None),
        ("holds 2 studies (demo, other): name one with --study", [*other, "--best"], None),
        ("unknown study 'nope'", [*base, "--best", "--study", "nope"], None),
        ("unknown --format 'png'", [*base, trial, "--format", "png"], None),
    ]  # fmt: skip
    try:
        for expected, argv, damaged in cases:
            tiny.artifact.write_bytes(saved if damaged is None else damaged)
            assert expected in refused(argv, capsys), argv
    finally:
        tiny.artifact.write_bytes(saved)
    assert not out.exists() and _leftovers(tmp_path) == []

    out.mkdir()
    (out / "kept.txt").write_text("mine")
    line = refused([*base, str(tiny.trial_id)], capsys)
    assert (
        line
        == f"harness: error: output folder {out} already exists; choose another --out or add --force"
    )
    assert [p.name for p in out.iterdir()] == ["kept.txt"]


def test_onnx_without_the_export_extra_is_one_line_before_any_work(
    tiny, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ExportError, match="needs the export extra"):
        require_onnx()
    out = tmp_path / "out"
    argv = ["export", str(tiny.trial_id), "--db", tiny.db, "--out", str(out), "--format", "onnx"]
    assert refused(argv, capsys) == (
        "harness: error: --format onnx needs the export extra: pip install 'harness[export]' "
        "(onnxruntime is not installed)"
    )
    assert not out.exists()


def test_retrain_trains_the_trial_again_to_the_very_same_weights(tiny, tmp_path, capsys):
    """A trial whose weights were not kept: trained again with its seed on the CPU, it is
    the same network (same tensors), and the accuracy check says so."""
    out = tmp_path / "again"
    argv = ["export", str(tiny.trial_id), "--db", tiny.db, "--out", str(out), "--retrain"]
    assert main(argv) == 0
    printed, err = capsys.readouterr()
    assert f"training trial {tiny.trial_id} again" in err
    assert printed.splitlines()[0].startswith("test accuracy re-evaluated ")
    retrained, _ = load_weights(out / "model.safetensors")
    kept, _ = load_weights(tiny.weights)
    assert retrained.keys() == kept.keys()
    assert all(torch.equal(retrained[name], kept[name]) for name in kept)


def test_the_printed_export_command_pastes_as_it_stands():
    """Quoted for a shell, `--db` only off the default, and never a masked password (it
    could not connect): such a URL is read from $HARNESS_DB instead."""
    from harness.export.select import export_command

    assert export_command("sqlite:///results/harness.db", trial_id=3) == "harness export 3"
    assert (
        export_command("postgresql://bob:***@db.example/h", trial_id=3)
        == 'harness export 3 --db "$HARNESS_DB"'
    )
    assert (
        export_command("sqlite:///my runs/h.db", study="a b", extra=" --format onnx")
        == "harness export --best --study 'a b' --db 'sqlite:///my runs/h.db' --format onnx"
    )
