"""Budgets shrink cost, not blocks: no budget, named ordering or shipped space trains a
conv narrower than the floor (config.MIN_CONV_CHANNELS), and `describe --budget` shows it."""

from __future__ import annotations

import itertools
import json

import pytest

from harness.blocks import register_block, unregister_block
from harness.candidate import build_candidate
from harness.cli import main
from harness.config import MIN_CONV_CHANNELS
from harness.data.spec import parse_spec
from harness.describe import narrowest_convs
from harness.estimate.rank import sample_configs
from harness.estimate.validate import landmark_params
from harness.models import Skeleton
from harness.search import BUDGETS, RunPlan, SearchSettings, list_spaces, load_space
from harness.search.size import _skeleton_combos
from harness.search.space import skeleton_value


def _image_shape(budget) -> tuple[int, int, int]:
    spec = parse_spec(budget.data)
    return (1, spec["size"], spec["size"])


def _configs(space: str, budget: str):
    search = RunPlan.resolve(SearchSettings(space=space, url="sqlite://", budget=budget))
    first = landmark_params(search)
    return sample_configs(search, len(first) + 3, seed=0, first=first)


@pytest.mark.parametrize(
    ("space", "budget"), list(itertools.product(sorted(list_spaces()), sorted(BUDGETS)))
)
def test_no_conv_under_the_floor(space, budget):
    checked = 0
    for config in _configs(space, budget):
        candidate = build_candidate(
            config.arch,
            image_shape=_image_shape(BUDGETS[budget]),
            num_classes=7,
            skeleton=config.skeleton,
            baseline_stem=config.baseline_stem,
        )
        narrowest = narrowest_convs(candidate.model)
        if candidate.is_baseline:
            continue  # timm's own networks: their widths are timm's
        assert narrowest, config.arch
        low = {k: v for k, v in narrowest.items() if v < MIN_CONV_CHANNELS}
        assert not low, f"{space} at {budget}: {config.arch} has convs of {low} channels"
        checked += 1
    if load_space(space).kind != "choices":
        assert checked >= 4


@pytest.mark.parametrize("space", sorted(list_spaces()))
def test_shipped_spaces_choose_widths_at_or_above_the_floor(space):
    """A searched width below the floor would silently train the floor's width: two
    choices would then be one network. Shipped spaces choose none."""
    loaded = load_space(space)
    for skeleton in _skeleton_combos(loaded):
        fields = {k: skeleton_value(k, v) if isinstance(v, str) else v for k, v in skeleton.items()}
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        raised = Skeleton(**fields).raised_widths()
        assert not raised, f"{space}: {skeleton} sits under the floor at stages {raised}"


def test_width_below_the_floor_is_raised_to_it():
    quarter = Skeleton(width_mult=0.25)
    # An R block of reduction 4 needs 4 x 16 channels for a 16-channel 3x3.
    assert quarter.scaled_widths() == (64, 64, 64, 128)
    assert quarter.raised_widths() == (1, 2)  # 256 x 0.25 is 64 already
    assert quarter.scaled_stem_width() == MIN_CONV_CHANNELS
    wider_r = Skeleton(width_mult=0.25, block_params={"R": {"reduction": 8}})
    assert wider_r.scaled_widths()[0] == 8 * MIN_CONV_CHANNELS
    assert Skeleton().scaled_widths() == (64, 128, 256, 512)
    assert Skeleton().raised_widths() == ()


def test_quarter_width_network_keeps_every_conv_whole():
    candidate = build_candidate(
        "RI", image_shape=(1, 32, 32), num_classes=7, skeleton={"width_mult": 0.25}
    )
    assert min(narrowest_convs(candidate.model).values()) >= MIN_CONV_CHANNELS
    # Without the floor the R blocks would have 4-channel convs (the old smoke budget's).
    unfloored = build_candidate(
        "RI",
        image_shape=(1, 32, 32),
        num_classes=7,
        skeleton={"width_mult": 0.25, "min_channels": 1},
    )
    assert narrowest_convs(unfloored.model)["R"] == 4


def test_a_new_kind_states_its_own_floor():
    from torch import nn

    def squeeze(in_chs, out_chs, stride, **_):
        return nn.Sequential(
            nn.Conv2d(in_chs, out_chs // 8, 1), nn.Conv2d(out_chs // 8, out_chs, 3, stride, 1)
        )

    register_block("S", squeeze, "test squeeze block", min_out=lambda floor, **_: floor * 8)
    try:
        assert Skeleton(width_mult=0.25).scaled_widths()[0] == 8 * MIN_CONV_CHANNELS
    finally:
        unregister_block("S")
    assert Skeleton(width_mult=0.25).scaled_widths()[0] == 4 * MIN_CONV_CHANNELS


@pytest.mark.parametrize("budget", sorted(BUDGETS))
def test_describe_budget_prints_what_it_trains(budget, capsys):
    assert main(["describe", "RI", "--budget", budget, "--no-latency", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    spec = BUDGETS[budget]
    assert info["input_shape"] == list(_image_shape(spec))
    assert info["budget"]["name"] == budget
    assert min(info["narrowest_conv"].values()) >= MIN_CONV_CHANNELS
    assert set(info["narrowest_conv"]) == {"stem", "R", "I"}
    assert info["stem"] == spec.skeleton.get("stem", "small")
    assert info["stages"][0]["output"] == (
        [8, 8] if budget == "smoke" else [12, 12] if budget == "short" else [48, 48]
    )
    assert [s["width"] for s in info["stages"]] == [64, 128, 256, 512]


def test_describe_budget_text_and_flags_win(capsys):
    assert main(["describe", "RI", "--budget", "smoke", "--no-latency", "--stem", "small"]) == 0
    out = capsys.readouterr().out
    assert "stem, head    small" in out and "48x48  RRR" not in out and "32x32  RRR" in out
    assert "narrowest     conv channels: stem 32, R 16, I 256 (floor 16)" in out
    assert "budget        smoke: data synthetic?n=2000&size=32" in out
    assert "input         1x32x32" in out


def test_describe_unknown_budget_is_one_line(capsys):
    assert main(["describe", "RI", "--budget", "tiny", "--no-latency"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown budget 'tiny'" in err[0]


def test_the_evaluation_batch_suits_the_device():
    from harness.config import EVAL_BATCH, TrainConfig

    assert TrainConfig().eval_batch_on("cpu") == EVAL_BATCH["cpu"] < EVAL_BATCH["cuda"]
    assert TrainConfig().eval_batch_on("cuda") == EVAL_BATCH["cuda"]
    assert TrainConfig(eval_batch_size=7).eval_batch_on("cuda") == 7
    # Not part of a result's identity: the same experiment on any eval batch.
    assert TrainConfig(eval_batch_size=7).identity() == TrainConfig().identity()
