"""Search-space files: validation messages, size, FLOPs range, enqueued orderings, CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.grammar import resolve
from harness.search import flops_range, list_spaces, load_space, space_size
from harness.search.samplers import grid_space, parse_objectives

SHIPPED = ("rir_orderings", "paper", "rir_macro")


def write(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_spaces_load(name):
    space = load_space(name)
    assert space.name == name
    assert name in list_spaces()


def test_rir_orderings_enqueues_the_paper_orderings_first():
    space = load_space("rir_orderings")
    assert space.enqueue == ("alternated", "RI", "IR")
    archs = [space.arch_from_params(p) for p in space.enqueue_params()]
    assert archs == [resolve(n, (3, 4, 6, 3)).canonical for n in ("alternated", "RI", "IR")]
    assert archs[1] == "RRR|RRRR|RIIIII|III"


def test_paper_space_has_the_orderings_and_baselines():
    space = load_space("paper")
    assert space.protocol == "paper"
    assert {"alternated", "RI", "IR", "timm:resnet50"} <= set(space.choices)
    assert space.skeleton["block_params"]["I"]["exp_ratio"] == 6


def test_sizes_count_distinct_canonical_architectures(tmp_path):
    assert space_size(load_space("rir_orderings")).architectures == 2**16
    assert space_size(load_space("paper")).architectures == 6
    macro = space_size(load_space("rir_macro"))
    assert macro.architectures == 2**16 and macro.settings is None  # lr is continuous
    # "RI" and "R*8 I*8" are one network on a 3/4/6/3 skeleton.
    path = write(
        tmp_path,
        """
        [architecture]
        choices = ["RI", "R*8 I*8", "IR"]
        [search.skeleton.width_mult]
        choices = [0.5, 1.0]
        """,
    )
    size = space_size(load_space(str(path)))
    assert (size.architectures, size.settings, size.total) == (2, 2, 4)


@pytest.mark.parametrize(
    ("body", "key", "hint"),
    [
        ("colour = 1\n[architecture]\npositions = ['R']", "colour", "allowed: architecture"),
        ("[architecture]\npositions = ['R', 'X']", "architecture.positions", "allowed: I, R"),
        ("[architecture]\npositions = ['R', 'I']\nenqueue = ['RI:3']", "architecture.enqueue", "16 positions"),
        ("protocol = 'nope'\n[architecture]\npositions = ['R']", "protocol", "allowed: fast, paper"),
        ("[skeleton]\nstem = 'big'\n[architecture]\npositions = ['R']", "skeleton.stem", "allowed: auto, small, resnet"),
        ("[architecture]\nchoices = ['RI']\nenqueue = ['IR']", "architecture.enqueue", "not one of the choices"),
        ("[architecture]\npositions = ['R']\n[search.skeleton.widths]\nchoices = [[8, 16]]", "search.skeleton.widths.choices", "as a string"),
        ("[architecture]\npositions = ['R']\n[search.train.lr]\nlow = 1", "search.train.lr", "low and high"),
        ("[architecture]\npositions = ['R']\n[search.train.optimizer]\nchoices = ['adam', 'lion']", "search.train.optimizer.choices", "allowed: adam, adamw, sgd"),
        ("[architecture]\npositions = ['R']\n[search.block_params.Q.exp_ratio]\nchoices = [2]", "search.block_params.Q", "allowed: R"),
        ("[architecture]\n", "architecture", "exactly one of"),
        ("[architecture\n", "not valid TOML", ""),
    ],
)  # fmt: skip
def test_invalid_spaces_name_file_key_and_allowed_values(tmp_path, body, key, hint):
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as error:
        load_space(str(path))
    message = str(error.value)
    assert message.startswith(str(path)), message
    assert key in message and hint in message, message
    assert "\n" not in message


def test_yaml_spaces_load(tmp_path):
    path = write(
        tmp_path,
        """
        skeleton: {depths: [2, 2], widths: [16, 32]}
        architecture: {positions: [R, I], enqueue: [RI]}
        """,
        name="tiny.yaml",
    )
    space = load_space(str(path))
    assert space.n_positions == 4 and space_size(space).architectures == 16


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown search space 'nope'.*rir_orderings"):
        load_space("nope")


def test_spaces_found_through_env_var(tmp_path, monkeypatch):
    write(tmp_path, "[architecture]\npositions = ['R', 'I']\n", name="mine.toml")
    monkeypatch.setenv("HARNESS_SPACES", str(tmp_path))
    assert "mine" in list_spaces() and load_space("mine").kind == "positions"


def test_flops_range_is_additive_over_positions(tmp_path):
    from harness.candidate import build_candidate
    from harness.measure import count_flops

    path = write(
        tmp_path,
        """
        [skeleton]
        depths = [2, 2]
        widths = [16, 32]
        [architecture]
        positions = ["R", "I"]
        """,
    )
    space = load_space(str(path))
    found = flops_range(space, input_shape=(1, 16, 16), num_classes=7)

    def flops(arch: str) -> int:
        candidate = build_candidate(
            arch, image_shape=(1, 16, 16), num_classes=7, skeleton=space.skeleton
        )
        return count_flops(candidate.model, candidate.input_shape)

    every = {a: flops(a) for a in ("RR|RR", "II|II", "RI|IR", "IR|RI", "RI|RI", "IR|IR")}
    assert found.low == min(every.values()) and found.high == max(every.values())
    assert every[found.low_arch] == found.low and every[found.high_arch] == found.high


def test_grid_refuses_large_spaces_and_ranges(tmp_path):
    space = load_space("rir_orderings")
    with pytest.raises(ConfigError, match="65,536 configurations"):
        grid_space(space, space.params)
    macro = load_space("rir_macro")
    with pytest.raises(ConfigError, match="lr is a range"):
        grid_space(macro, macro.params)


def test_objectives_parse():
    assert parse_objectives("accuracy,flops") == ("accuracy", "flops")
    with pytest.raises(ConfigError, match="known: accuracy, flops, latency, params"):
        parse_objectives("accuracy,speed")
    with pytest.raises(ConfigError, match="needs accuracy"):
        parse_objectives("flops")


def test_cli_lists_and_shows_spaces(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SHIPPED) and "65,536" in out
    assert main(["spaces", "show", "paper", "--no-flops"]) == 0
    out = capsys.readouterr().out
    assert "timm:resnet50" in out and "6 distinct architectures" in out


def test_cli_show_prints_flops_range(capsys, tmp_path):
    path = write(
        tmp_path,
        "[skeleton]\ndepths = [1, 1]\nwidths = [16, 32]\n[architecture]\npositions = ['R', 'I']\n",
    )
    assert main(["spaces", "show", str(path), "--input", "1x16x16"]) == 0
    out = capsys.readouterr().out
    assert "4 distinct architectures" in out and "FLOPs:" in out and "R|R" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["spaces", "show", "nope"],
        ["run", "--space", "nope"],
        ["run", "--space", "rir_orderings", "--objectives", "speed"],
    ],
)
def test_cli_bad_space_is_one_line_and_status_2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error:") and "\n" not in err


def test_cli_broken_space_file_is_one_line_and_status_2(capsys, tmp_path):
    path = write(tmp_path, "[architecture]\npositions = ['R', 'Z']\n")
    assert main(["run", "--space", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error:") and str(path) in err and "\n" not in err


def test_cli_unreachable_storage_is_one_line_and_status_2(capsys, tmp_path):
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    assert main(["run", "--space", "rir_orderings", "--storage", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error:") and "127.0.0.1" in err and "\n" not in err
