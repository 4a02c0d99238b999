"""`harness describe` and `harness bench` measure the network a trial trains, flag for flag."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.config import TrainConfig
from harness.store import Store
from harness.trial import Constraints, load_trial_dataset, run_trial

DATA = "synthetic?n=120"  # 1x48x48 faces, 7 classes

# (describe/bench arguments, the same network as training settings, the stem
# both must report). timm's test_resnet has ResNet's stem and classifier and
# counts its FLOPs in well under a second.
CASES = {
    # The default on both sides: timm's own stem, as the paper ran ResNet-50.
    "resnet50": (["timm:resnet50"], {"arch": "timm:resnet50"}, "timm"),
    "small stem, paper head": (
        ["timm:test_resnet?stem=small", "--head", "paper"],
        {"arch": "timm:test_resnet?stem=small", "skeleton": {"head": "paper"}},
        "small",
    ),
    "resize, auto stem": (
        ["timm:test_resnet", "--resize", "96", "--baseline-stem", "auto"],
        {"arch": "timm:test_resnet", "resize": 96, "baseline_stem": "auto"},
        "timm",  # auto keeps timm's stem at 96 px
    ),
    "ours, paper head": (
        ["R I", "--head", "paper", "--width-mult", "0.25"],
        {"arch": "R I", "skeleton": {"head": "paper", "width_mult": 0.25}},
        "small",  # our skeleton's auto stem at 48 px
    ),
}


@pytest.fixture(scope="module")
def dataset():
    return load_trial_dataset(DATA)


def _trained_flops(tmp_path, dataset, settings: dict) -> tuple[int, dict]:
    config = TrainConfig.from_protocol("fast", data=DATA, device="cpu", **settings)
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        # max_flops=1: measured and recorded as run_trial builds it, then rejected untrained.
        outcome = run_trial(
            config, store, dataset=dataset, constraints=Constraints(max_flops=1),
            measure_latency=False,
        )  # fmt: skip
    assert outcome.status == "pruned"
    return outcome.flops, outcome.config


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_describe_and_bench_report_the_trained_flops(case, tmp_path, dataset, capsys):
    args, settings, stem = CASES[case]
    trained, recorded = _trained_flops(tmp_path, dataset, settings)

    assert main(["describe", *args, "--json", "--no-latency", "--threads", "1"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["flops"] == trained
    assert described["stem"] == stem
    assert recorded["baseline_stem"] == (stem if described["kind"] == "baseline" else None)
    assert described["head"] == recorded["skeleton"]["head"]
    assert described["model_input_shape"] == recorded["input_shape"]

    assert main(["bench", *args, "--format", "json", "--no-latency", "--threads", "1"]) == 0
    (benched,) = json.loads(capsys.readouterr().out)["results"]
    assert benched["flops"] == trained
    assert benched["stem"] == stem


def test_describe_shows_the_stem_and_the_input_remedy(capsys):
    args = ["describe", "timm:test_resnet", "--resize", "96", "--no-latency", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1x48x48 upsampled to 1x96x96" in out
    assert "timm (timm's own)" in out
    assert main(["describe", "timm:test_resnet?stem=small", "--no-latency", "--threads", "1"]) == 0
    assert "small (first 4x of downsampling removed)" in capsys.readouterr().out
