"""One rule, one message: a bad value reads the same from a flag, a space file's fixed
value, a searched range's bound and a library caller; only where it came from differs."""

from __future__ import annotations

import argparse

import pytest
from _refusal import refused

from harness.block_params import BUILT_IN_PARAMS
from harness.cli import build_parser
from harness.commands.argtypes import Number
from harness.config import TRAIN_LIMITS, TrainConfig
from harness.errors import ConfigError, ModelError
from harness.limits import Limit
from harness.models import Skeleton
from harness.skeleton_limits import SKELETON_LIMITS

POSITIONS = '[architecture]\npositions = ["R", "I"]\n'

# (table, setting, flag, the command it is a flag of, bad value as typed, a good value)
CASES = [
    ("train", "lr", "--lr", ["train", "RI"], "20", "0.01"),
    ("train", "lr", "--lr", ["train", "RI"], "0", "0.01"),
    ("train", "epochs", "--epochs", ["train", "RI"], "0", "2"),
    ("train", "seed", "--seed", ["train", "RI"], "-1", "1"),
    ("train", "label_smoothing", "--label-smoothing", ["train", "RI"], "1.5", "0.1"),
    ("train", "crop_padding", "--crop-padding", ["train", "RI"], "65", "2"),
    ("train", "rotate_deg", "--rotate-deg", ["train", "RI"], "181.0", "10.0"),
    ("skeleton", "width_mult", "--width-mult", ["describe", "RI"], "17", "0.5"),
    ("skeleton", "width_mult", "--width-mult", ["describe", "RI"], "0", "0.5"),
]
LIMITS = {"train": TRAIN_LIMITS, "skeleton": SKELETON_LIMITS}


def _problem(line: str, where: str) -> str:
    """The rule of a refusal line: what follows `where`, up to the value."""
    head = f"harness: error: {where} "
    assert line.startswith(head), (line, where)
    return line[len(head) :].rpartition(", got ")[0]


def _space(tmp_path, text: str) -> str:
    path = tmp_path / "space.toml"
    path.write_text(text + POSITIONS)
    return str(path)


@pytest.mark.parametrize(
    ("table", "name", "flag", "command", "bad", "good"),
    CASES,
    ids=[f"{c[1]}={c[4]}" for c in CASES],
)
def test_a_bad_value_reads_the_same_from_every_source(
    tmp_path, capsys, table, name, flag, command, bad, good
):
    rule = f"must be {LIMITS[table][name].rule()}"
    by_flag = _problem(refused([*command, f"{flag}={bad}"], capsys), flag)

    fixed = _space(tmp_path, f"[{table}]\n{name} = {bad}\n")
    line = refused(["spaces", "show", fixed, "--no-flops"], capsys)
    by_file = _problem(line, f"{fixed}: {table}.{name}")

    low, high = sorted((good, bad), key=float)
    bound = "high" if high == bad else "low"
    searched = _space(tmp_path, f"[search.{table}.{name}]\nlow = {low}\nhigh = {high}\n")
    line = refused(["spaces", "show", searched, "--no-flops"], capsys)
    by_range = _problem(line, f"{searched}: search.{table}.{name}.{bound}")

    kind = LIMITS[table][name].kind
    value = kind(float(bad))
    error = ConfigError if table == "train" else ModelError
    with pytest.raises(error) as caught:
        TrainConfig(**{name: value}) if table == "train" else Skeleton(**{name: value})
    assert str(caught.value) == f"{name} {rule}, got {value!r}"

    assert by_flag == by_file == by_range == rule
    assert "at most" in rule or " to " in rule  # the range, not only "finite"


def test_a_list_of_widths_meets_one_rule_per_stage(tmp_path, capsys):
    each = f"each {SKELETON_LIMITS['widths'].rule()}"
    line = refused(["describe", "RI", "--widths", "64,128,256,99999"], capsys)
    assert f"--widths must be comma-separated, {each}, got '64,128,256,99999'" in line
    path = _space(tmp_path, "[skeleton]\nwidths = [64, 128, 256, 99999]\n")
    line = refused(["spaces", "show", path, "--no-flops"], capsys)
    assert f"{path}: skeleton.widths must be a non-empty list, {each}" in line
    with pytest.raises(ModelError, match=f"widths must be a non-empty list, {each}"):
        Skeleton(widths=(64, 128, 256, 99999))


def test_a_block_parameter_reads_the_same_from_the_flag_and_a_space(tmp_path, capsys):
    rule = BUILT_IN_PARAMS["I"]["exp_ratio"](100)
    line = refused(["describe", "RI", "--block-params", '{"I": {"exp_ratio": 100}}'], capsys)
    assert _problem(line, "--block-params I.exp_ratio") == rule
    path = _space(tmp_path, "[skeleton.block_params.I]\nexp_ratio = 100\n")
    line = refused(["spaces", "show", path, "--no-flops"], capsys)
    assert _problem(line, f"{path}: skeleton.block_params.I.exp_ratio") == rule
    assert rule == "must be a finite number above 0 and at most 64"


def test_a_choice_reads_the_same_from_a_flag_a_space_and_a_library_caller(tmp_path, capsys):
    rule = "must be one of adam, adamw, sgd"
    by_flag = refused(["train", "RI", "--optimizer", "lion"], capsys)
    assert _problem(by_flag, "--optimizer") == rule
    path = _space(tmp_path, '[train]\noptimizer = "lion"\n')
    line = refused(["spaces", "show", path, "--no-flops"], capsys)
    assert _problem(line, f"{path}: train.optimizer") == rule
    with pytest.raises(ConfigError, match=f"^optimizer {rule}, got 'lion'$"):
        TrainConfig(optimizer="lion")


def test_a_skeleton_choice_reads_the_same_from_a_flag_a_space_and_a_library_caller(
    tmp_path, capsys
):
    rule = f"must be {SKELETON_LIMITS['stem'].rule()}"
    assert _problem(refused(["train", "RI", "--stem", "huge"], capsys), "--stem") == rule
    path = _space(tmp_path, '[skeleton]\nstem = "huge"\n')
    line = refused(["spaces", "show", path, "--no-flops"], capsys)
    assert _problem(line, f"{path}: skeleton.stem") == rule
    with pytest.raises(ModelError, match=f"^stem {rule}, got 'huge'$"):
        Skeleton(stem="huge")


@pytest.mark.parametrize(
    ("limit", "good", "bad", "rule"),
    [
        (Limit(int, 1, 256), [1, 256], [0, 257, 2.0, True, None, "3"], "a whole number from 1 to 256"),
        (
            Limit(float, 0, 10, open_low=True),
            [1e-9, 10, 3],
            [0, 10.5, float("nan"), float("inf"), False],
            "a finite number above 0 and at most 10",
        ),
        (Limit(float, 0, 1, open_high=True), [0, 0.5], [1, -0.1], "a finite number at least 0 and below 1"),
        (Limit(int, 1, 31, odd=True), [1, 3, 31], [2, 33, 0], "an odd whole number from 1 to 31"),
        (Limit(float, 0, 0.999_999_999), [0.5], [1.0], "a finite number at least 0 and at most 0.999999999"),
    ],
)  # fmt: skip
def test_a_limit_allows_its_range_and_says_it(limit, good, bad, rule):
    assert all(limit.allows(v) and limit(v) == "" for v in good)
    assert not any(limit.allows(v) for v in bad)
    assert limit.rule() == rule and limit(bad[0]) == f"must be {rule}"


def test_a_flag_checks_the_whole_limit_it_is_given():
    # Odd kernel sizes: a flag built from a Limit keeps every part of its rule.
    kernel = Number("--kernel-size", Limit(int, 1, 31, odd=True))
    assert kernel(" 5 ") == 5
    with pytest.raises(ConfigError) as caught:
        kernel("4")
    assert str(caught.value) == "--kernel-size must be an odd whole number from 1 to 31, got '4'"


def test_every_training_flag_checks_its_settings_own_limit():
    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    types = {a.dest: a.type for a in train.choices["train"]._actions}
    for name, limit in TRAIN_LIMITS.items():
        # --threads is bounded by this machine's cores, tighter than the setting's limit.
        if name in types and not limit.choices and name != "threads":
            assert isinstance(types[name], Number) and types[name].limit is limit, name
    assert types["width_mult"].limit is SKELETON_LIMITS["width_mult"]
