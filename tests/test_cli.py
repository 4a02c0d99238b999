"""The `harness` command: help without torch, describe, and errors as one line with exit 2."""

import json
import subprocess
import sys

import pytest

from harness.cli import main


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'timm', 'optuna', 'plotly', 'pandas', 'sqlalchemy', 'fvcore') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out
    assert "describe" in out


def test_help_of_every_subcommand_imports_no_torch():
    from harness.cli import COMMANDS

    code = (
        "import sys\n"
        "from harness.cli import main\n"
        f"for name in {list(COMMANDS)!r}:\n"
        "    try:\n"
        "        main([name, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "TORCH False" in out


def test_describe_json(capsys):
    status = main(
        [
            "describe",
            "R*2 I*2",
            "--json",
            "--batch",
            "1,4",
            "--width-mult",
            "0.25",
            "--threads",
            "1",
        ]
    )
    assert status == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"] == "R|R|I|I"
    assert info["family"] == "RI"
    assert info["blocks"] == {"I": 2, "R": 2}
    # A quarter of 64/128/256/512, raised to the floor where an R block's 3x3 would
    # have fewer than 16 channels (64 = 4 x 16).
    assert [s["width"] for s in info["stages"]] == [64, 64, 64, 128]
    assert info["narrowest_conv"] == {"stem": 16, "R": 16, "I": 64}
    assert info["params"] > 0 and info["flops"] > 0
    assert info["flops_unit"] == "FLOPs (fvcore, multiply-add = 1)"
    assert [lat["batch"] for lat in info["latency"]] == [1, 4]
    for lat in info["latency"]:
        assert lat["threads"] == 1
        assert lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"] <= lat["max_ms"]
    assert info["environment"]["torch"]
    assert info["environment"]["device"].startswith("cpu")


def test_describe_table(capsys):
    assert main(["describe", "RI", "--no-latency", "--input", "1x48x48", "--classes", "7"]) == 0
    out = capsys.readouterr().out
    assert "RRR|RRRR|RIIIII|III" in out  # R*8 I*8 cut 3/4/6/3
    assert "FLOPs (fvcore, multiply-add = 1)" in out
    assert "family        RI" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["describe", "R*(I"], "column"),
        (["describe", "RRIX|II"], "unknown block 'X' at column 4"),
        (["describe", "timm:mobilenetv2_1OO"], "did you mean"),
        (["describe", "R*4", "--input", "1x16x16", "--stem", "resnet"], "too small"),
        (["describe", "R", "--input", "48x48"], "CxHxW"),
        (["describe", "R", "--block-params", "{bad"], "not valid JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv + ["--no-latency"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("harness: error: ")
    assert message in err
    assert "Traceback" not in err


def test_console_script_exit_status():
    """The installed entry point, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "describe", "Q"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("harness: error: unknown block 'Q'")
