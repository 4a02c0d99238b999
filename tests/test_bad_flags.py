"""Every numeric flag of every command, and every number in a space file, given
nan, inf, -inf, 0, -1 and an absurd value: one line on stderr, exit 2, before any
output, and the results database byte-for-byte unchanged.

The flags are collected by walking the real parser of `harness.cli`, so a new flag
is covered as soon as it exists (and a new flag with a bare `type=int` fails
`test_every_numeric_flag_has_a_checked_type`).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _refusal import refused

from harness.cli import build_parser, main
from harness.commands.argtypes import Number, TextCheck
from harness.store import Store

BAD = ("nan", "inf", "-inf", "0", "-1", "1e30")


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser, action) for every option of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))
        elif action.option_strings:
            yield path, parser, action


def _numeric() -> list[tuple[tuple[str, ...], str, object, bool]]:
    found = []
    for path, parser, action in _walk(build_parser()):
        # --block-params (JSON) has its own test below.
        if isinstance(action.type, (Number, TextCheck)):
            has_db = any("--db" in a.option_strings for a in parser._actions)
            found.append((path, action.option_strings[-1], action.type, has_db))
    return found


NUMERIC = _numeric()


def test_the_walk_finds_the_known_flags():
    flags = {(" ".join(path), flag) for path, flag, _, _ in NUMERIC}
    for expected in [
        ("train", "--lr"),
        ("run", "--trials"),
        ("run", "--max-latency-ms"),
        ("baselines", "--threads"),
        ("describe", "--classes"),
        ("bench", "--max-seconds"),
        ("data preview", "--scale"),
        ("trials", "--limit"),
        ("spaces", "--classes"),
    ]:
        assert expected in flags
    assert len(NUMERIC) > 60


def test_every_numeric_flag_has_a_checked_type():
    for path, _, action in _walk(build_parser()):
        name = f"{' '.join(path)} {action.option_strings[-1]}"
        assert action.type not in (int, float), f"{name} has a bare type={action.type.__name__}"
        if action.metavar in ("N", "K", "S", "MS", "X", "B,B,...", "W,W,...", "D,D,..."):
            assert hasattr(action.type, "flag"), f"{name} looks numeric but is not checked"
        if hasattr(action.type, "flag"):
            # The message names the flag the user typed.
            assert action.type.flag in action.option_strings, name


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory, record_trial) -> tuple[str, Path]:
    path = tmp_path_factory.mktemp("db") / "results.db"
    url = f"sqlite:///{path}"
    with Store(url) as store:
        record_trial(store, study="kept", epochs=2)
    return url, path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize(
    ("path", "flag", "kind", "has_db"),
    NUMERIC,
    ids=[f"{' '.join(p)} {f}" for p, f, _, _ in NUMERIC],
)
def test_bad_number_is_refused_before_anything(
    path, flag, kind, has_db, value, database, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a default results/ or reports/ would land here
    url, db_path = database
    before = _digest(db_path)
    if value == "0" and isinstance(kind, Number) and kind.limit.allows(0):
        # 0 lies in the flag's documented range (--crop-padding 0: no crop); nothing
        # below 0 ever does.
        assert kind("0") == 0 and kind.limit.low == 0
        return
    # `--lr=-inf`: argparse reads a lone `-inf` as an unknown option, not a value.
    argv = [*path, f"{flag}={value}", *(["--db", url] if has_db else [])]
    line = refused(argv, capsys)
    assert flag in line and repr(value) in line, line
    assert _digest(db_path) == before
    assert list(tmp_path.iterdir()) == []  # no results/ or reports/ made


def test_threads_above_the_cores_is_refused_and_help_says_so(capsys):
    from harness.commands.argtypes import usable_cores

    line = refused(["train", "RI", "--threads", str(usable_cores() + 1)], capsys)
    assert "omit --threads for all" in line
    with pytest.raises(SystemExit):
        main(["describe", "--help"])
    assert f"1 to {usable_cores()} here" in re.sub(r"\s+", " ", capsys.readouterr().out)


def test_describe_refuses_one_class(capsys):
    assert "--classes must be a whole number from 2 to" in refused(
        ["describe", "RI", "--classes", "1"], capsys
    )


def test_train_help_hides_input_and_classes_but_still_explains_them(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--input" not in text and "--classes" not in text
    assert "--width-mult" in text  # the rest of the skeleton group stays
    line = refused(["train", "RI", "--classes", "3", "--db", "sqlite:///:memory:"], capsys)
    assert "come from the data when training" in line


def test_json_flag_with_nan_isrefused(capsys):
    line = refused(["describe", "RI", "--block-params", '{"I": {"exp_ratio": NaN}}'], capsys)
    assert "--block-params must hold finite numbers only" in line


def test_in_a_real_process_one_line_and_exit_2(database):
    url, db_path = database
    before = _digest(db_path)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "train", "RI", "--lr", "nan", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "harness: error: --lr must be a finite number above 0 and at most 10, got 'nan'"
    ]
    assert _digest(db_path) == before


# -- every number in a space file ------------------------------------------------------

SPACE = """
[skeleton]
depths = [1, 1]
widths = [8, 16]
width_mult = {width_mult}
drop_rate = {drop_rate}
[train]
lr = {lr}
weight_decay = {weight_decay}
[architecture]
positions = ["R", "I"]
[search.skeleton.width_mult]
choices = [{choice}, 1.0]
[search.block_params.I.exp_ratio]
choices = [{exp_ratio}, 4]
[search.train.label_smoothing]
low = {low}
high = {high}
step = {step}
"""
GOOD = {
    "width_mult": "0.5",
    "drop_rate": "0.0",
    "lr": "0.01",
    "weight_decay": "0.05",
    "choice": "0.5",
    "exp_ratio": "2",
    "low": "0.0",
    "high": "0.2",
    "step": "0.1",
}
SPACE_CASES = [(key, value) for key in GOOD for value in ("nan", "inf", "-inf")]
SPACE_CASES += [("lr", "1e30"), ("weight_decay", "-1.0"), ("high", "1e30")]


def test_the_space_file_is_valid_as_written(tmp_path, capsys):
    path = tmp_path / "space.toml"
    path.write_text(textwrap.dedent(SPACE.format(**GOOD)))
    assert main(["spaces", "show", str(path), "--no-flops"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(("key", "value"), SPACE_CASES, ids=[f"{k}={v}" for k, v in SPACE_CASES])
def test_bad_number_in_a_space_file(key, value, database, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url, db_path = database
    before = _digest(db_path)
    path = tmp_path / "space.toml"
    path.write_text(textwrap.dedent(SPACE.format(**{**GOOD, key: value})))
    argv = ["run", "--space", str(path), "--data", "synthetic?n=60&size=16", "--db", url]
    line = refused([*argv, "--trials", "1", "--epochs", "1", "--no-report"], capsys)
    assert str(path) in line and ("finite" in line or "at most" in line), line
    assert _digest(db_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.toml"]
    assert str(path) in refused(["spaces", "show", str(path)], capsys)


def test_nan_in_a_yaml_space_file(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text("architecture:\n  positions: [R, I]\nskeleton:\n  width_mult: .nan\n")
    line = refused(["spaces", "show", str(path)], capsys)
    assert "skeleton.width_mult must be a finite number above 0 and at most 16, got nan" in line
