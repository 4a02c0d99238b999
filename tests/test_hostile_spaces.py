"""Hostile search-space files: each is one line naming the file and what is wrong, before
any work, and one bad file in a space folder does not hide the good ones from the list."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _refusal import refused

from harness.block_params import check_block_params
from harness.errors import ConfigError
from harness.search.lookup import MAX_NESTING

POSITIONS = 'architecture:\n  positions: ["R", "I"]\n'
TOML_POSITIONS = '[architecture]\npositions = ["R", "I"]\n'
# Nine levels of nine aliases each: 643 bytes that stand for 9^9 strings.
LAUGHS = (
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    + "".join(
        f"{b}: &{b} [{','.join(['*' + a] * 9)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + POSITIONS
)
NESTED = "description = " + "[" * 5000 + "]" * 5000 + "\n" + TOML_POSITIONS

CASES = [
    ("laughs.yaml", LAUGHS, "aliases (*name) are not allowed"),
    ("self.yaml", "description: &x [*x]\n" + POSITIONS, "aliases (*name) are not allowed"),
    ("merge.yaml", "skeleton: &s\n  block_params: *s\n" + POSITIONS, "aliases"),
    ("keys.yaml", "1: a\nb: c\n" + POSITIONS, "top level: keys must be strings, got 1"),
    (
        "countkeys.yaml",
        "architecture:\n  counts: {1: 8, R: 8}\n",
        "architecture.counts: keys must be strings",
    ),
    (
        "deep.toml",
        "[skeleton]\ndepths = [20000]\nwidths = [64]\n" + TOML_POSITIONS,
        "skeleton.depths must be a non-empty list, each a whole number from 1 to 1024, got [20000]",
    ),
    (
        "positions.toml",
        "[skeleton]\ndepths = [1000, 1000]\nwidths = [64, 128]\n" + TOML_POSITIONS,
        "skeleton.depths must add up to at most 1024 block positions",
    ),
    (
        "counts.toml",
        "[skeleton]\ndepths = [10000000]\nwidths = [64]\n"
        "[architecture]\ncounts = {R = 5000000, I = 5000000}\n",
        "skeleton.depths must be a non-empty list, each a whole number from 1 to 1024",
    ),
    (
        "wide.toml",
        "[skeleton]\nwidths = [64, 128, 256, 99999]\n" + TOML_POSITIONS,
        "skeleton.widths must be a non-empty list, each a whole number from 1 to 16384",
    ),
    (
        "drop.toml",
        "[skeleton]\ndrop_rate = 5\n" + TOML_POSITIONS,
        "skeleton.drop_rate must be a finite number at least 0 and below 1, got 5",
    ),
    (
        "mult.toml",
        "[skeleton]\nwidth_mult = 1e9\n" + TOML_POSITIONS,
        "skeleton.width_mult must be a finite number above 0 and at most 16, got 1000000000.0",
    ),
    (
        "bp.toml",
        "[skeleton.block_params.I]\nbogus = 6\n" + TOML_POSITIONS,
        "skeleton.block_params.I.bogus: unknown block parameter (allowed: drop_path_rate, "
        "exp_ratio, kernel_size)",
    ),
    (
        "reduction.toml",
        "[skeleton.block_params.R]\nreduction = 0\n" + TOML_POSITIONS,
        "skeleton.block_params.R.reduction must be a whole number from 1 to 256, got 0",
    ),
    (
        "letter.toml",
        "[skeleton.block_params.Q]\nx = 1\n" + TOML_POSITIONS,
        "skeleton.block_params.Q: unknown block letter",
    ),
    (
        "searched.toml",
        TOML_POSITIONS + "[search.block_params.I.bogus]\nchoices = [1, 2]\n",
        "search.block_params.I.bogus: unknown block parameter",
    ),
    (
        "searched_range.toml",
        TOML_POSITIONS + "[search.block_params.I.exp_ratio]\nlow = 0.5\nhigh = 1000\n",
        "search.block_params.I.exp_ratio must be a finite number above 0 and at most 64, got 1000",
    ),
    (
        "searched_drop.toml",
        TOML_POSITIONS + "[search.skeleton.drop_rate]\nlow = 0.1\nhigh = 3.0\n",
        "search.skeleton.drop_rate.high must be a finite number at least 0 and below 1, got 3.0",
    ),
    ("nested.toml", NESTED, f"nested deeper than {MAX_NESTING} levels"),
    (
        "bigint.yaml",
        f"skeleton:\n  depths: [{'9' * 5000}]\n" + POSITIONS,
        "not valid YAML: Exceeds the limit",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_hostile_space_file_is_one_line_naming_it(tmp_path, capsys, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    line = refused(["spaces", "show", str(path), "--no-flops"], capsys)
    assert str(path) in line and message in line, line


def test_a_latin1_space_file_names_the_byte(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes('description = "caf\xe9"\n'.encode("latin-1") + TOML_POSITIONS.encode())
    line = refused(["spaces", "show", str(path), "--no-flops"], capsys)
    assert f"{path}: not UTF-8 text (byte 18 is b'\\xe9')" in line


def test_a_space_path_that_is_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    line = refused(["spaces", "show", str(path), "--no-flops"], capsys)
    assert "not a regular file" in line or "no search-space file" in line


def test_an_oversized_space_file_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "huge.toml"
    path.write_text(TOML_POSITIONS + "# " + "x" * (2 << 20) + "\n")
    line = refused(["spaces", "show", str(path), "--no-flops"], capsys)
    assert "a space file is at most 1,048,576" in line


def test_one_bad_file_does_not_hide_the_good_spaces(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "spaces"
    folder.mkdir()
    (folder / "good.toml").write_text('description = "a good one"\n' + TOML_POSITIONS)
    (folder / "bad.yaml").write_text(LAUGHS)
    (folder / "latin.toml").write_bytes(b'description = "\xe9"\n' + TOML_POSITIONS.encode())
    monkeypatch.setenv("HARNESS_SPACES", str(folder))
    from harness.cli import main

    assert main(["spaces"]) == 2
    out, err = capsys.readouterr()
    assert "good" in out and "a good one" in out
    assert "paper" in out  # the packaged spaces are still listed
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("harness: error: ") for line in lines)
    assert any(str(folder / "bad.yaml") in line and "aliases" in line for line in lines)
    assert any(str(folder / "latin.toml") in line and "UTF-8" in line for line in lines)


def test_a_good_space_with_block_params_still_loads(tmp_path):
    from harness.search.space import load_space

    path = tmp_path / "ok.toml"
    path.write_text(
        "[skeleton]\ndepths = [1, 2]\nwidths = [16, 32]\ndrop_rate = 0.2\n"
        "[skeleton.block_params.R]\nreduction = 2\n[skeleton.block_params.I]\nexp_ratio = 6\n"
        + TOML_POSITIONS
        + "[search.block_params.I.kernel_size]\nchoices = [3, 5]\n"
    )
    space = load_space(str(path))
    assert space.skeleton["block_params"] == {"R": {"reduction": 2}, "I": {"exp_ratio": 6}}
    assert space.n_positions == 3


@pytest.mark.parametrize(
    ("letter", "params", "message"),
    [
        ("I", {"kernel_size": 4}, "I.kernel_size must be an odd whole number from 1 to 31, got 4"),
        ("I", {"exp_ratio": True}, "I.exp_ratio must be a finite number above 0 and at most 64"),
        (
            "R",
            {"drop_path_rate": 1.0},
            "R.drop_path_rate must be a finite number at least 0 and below 1",
        ),
        ("R", {"act_layer": "relu"}, "R.act_layer: unknown block parameter"),
        ("R", [1, 2], "R: expected a table of parameters"),
    ],
)
def test_block_params_are_checked_against_what_the_block_takes(letter, params, message):
    with pytest.raises(ConfigError) as error:
        check_block_params(letter, params)
    assert message in str(error.value)


def test_a_registered_letter_takes_the_names_of_its_factory(tmp_path):
    from torch import nn

    from harness import blocks

    def factory(in_chs, out_chs, stride, *, width: int = 1):
        return nn.Identity()

    blocks.register_block("Z", factory, "test block")
    try:
        check_block_params("Z", {"width": 3})
        with pytest.raises(ConfigError, match="Z.height: unknown block parameter .allowed: width"):
            check_block_params("Z", {"height": 3})
    finally:
        blocks.unregister_block("Z")
    with pytest.raises(ConfigError, match="unknown block letter"):
        check_block_params("Z", {"width": 3})


def test_a_reduction_that_does_not_divide_the_width_is_a_model_error():
    from harness import blocks
    from harness.errors import ModelError

    with pytest.raises(ModelError, match="reduction 3 does not divide"):
        blocks.build_block("R", 64, 64, 1, reduction=3)
    with pytest.raises(ModelError, match="R.bogus: unknown block parameter"):
        blocks.build_block("R", 64, 64, 1, bogus=1)


def test_the_packaged_spaces_all_still_load():
    from harness.search.lookup import packaged_dir
    from harness.search.space import load_space

    paths = sorted(Path(packaged_dir()).glob("*.toml"))
    assert paths
    for path in paths:
        load_space(str(path))
