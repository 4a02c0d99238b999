"""Every command given a bad argument: one line on stderr, exit 2, nothing printed before it.

Our errors are one line, `harness: error: ...`. Argparse's own errors (a missing
required argument, a value outside `choices`, a bad `type=`) are that one line too,
without the usage argparse prints first (it wraps over many lines for commands with
many flags): those cases are marked "usage" and must point at the command's --help.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.store import Store

# A tiny space and settings, so that a case whose check is missing trains for
# seconds instead of starting the paper's search.
SPACE = """
[skeleton]
depths = [1, 1]
widths = [8, 16]
[architecture]
positions = ["R", "I"]
"""
RUN = [
    "run",
    "--space",
    "{tmp}/tiny.toml",
    "--data",
    "synthetic?n=60&size=16",
    "--trials",
    "1",
    "--epochs",
    "1",
    "--max-batches",
    "1",
    "--db",
    "sqlite:///{tmp}/run.db",
    "--no-report",
]
# Bad flags come after these (argparse keeps the last value).
TRAIN = ["--data", "synthetic?n=60&size=16", "--epochs", "1", "--max-batches", "1"]
TRAIN += ["--db", "sqlite:///{tmp}/train.db"]
MISSING_DB = "sqlite:///{tmp}/missing.db"
FER = "fer2013:{tmp}/no/fer2013.csv"

# (argv, what the error line must contain, or "usage" for argparse's own error)
CASES: list[tuple[list[str], str]] = [
    # run
    (["run"], "usage"),
    ([*RUN, "--space", "nope"], "unknown search space 'nope'"),
    ([*RUN, "--trials", "0"], "--trials must be a whole number from 1 to"),
    ([*RUN, "--threads", "0"], "--threads must be a whole number from 1 to"),
    ([*RUN, "--threads", "9999"], "omit --threads for all"),
    ([*RUN, "--workers", "9999"], "--workers must be a whole number from 1 to"),
    ([*RUN, "--lr", "nan"], "--lr must be a finite number above 0"),
    ([*RUN, "--lr=-inf"], "--lr must be a finite number above 0"),
    ([*RUN, "--seed", "-1"], "--seed must be a whole number from 0 to"),
    ([*RUN, "--beta1", "1"], "--beta1 must be a finite number at least 0 and at most 0.999999"),
    ([*RUN, "--label-smoothing", "1"], "--label-smoothing must be"),
    ([*RUN, "--epochs", "1.5"], "--epochs must be a whole number from 1 to"),
    ([*RUN, "--max-flops", "inf"], "--max-flops must be a positive number"),
    ([*RUN, "--max-latency-ms", "nan"], "--max-latency-ms must be a finite number"),
    ([*RUN, "--heartbeat", "1e9"], "--heartbeat must be a whole number from 1 to"),
    ([*RUN, "--workers", "0"], "--workers must be a whole number from 1 to"),
    ([*RUN, "--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N"),
    ([*RUN, "--data", "bogus:x"], "unknown dataset kind 'bogus'"),
    ([*RUN, "--data", FER], "file not found"),
    ([*RUN, "--max-flops", "lots"], "--max-flops must be a positive number"),
    ([*RUN, "--objectives", "accuracy,speed"], "unknown objective 'speed'"),
    ([*RUN, "--db", "nope://x"], "unknown database kind"),
    ([*RUN, "--budget", "huge"], "usage"),
    # describe
    (["describe"], "usage"),
    (["describe", "RQ"], "unknown block 'Q'"),
    (["describe", "RI", "--threads", "0"], "--threads must be a whole number from 1 to"),
    (["describe", "RI", "--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N"),
    (["describe", "RI", "--batch", "0"], "--batch must be"),
    (["describe", "RI", "--input", "1x0x48"], "--input must be an input shape CxHxW"),
    (["describe", "RI", "--input", "128x48x48"], "at most 64 channels"),
    (["describe", "RI", "--classes", "1"], "--classes must be a whole number from 2 to"),
    (["describe", "RI", "--width-mult", "inf"], "--width-mult must be a finite number"),
    (["describe", "RI", "--widths", "8,99999999"], "--widths must be comma-separated"),
    (["describe", "RI", "--resize", "100000"], "--resize must be a whole number from 8 to 1024"),
    (["describe", "RI", "--block-params", '{"I": {"exp_ratio": Infinity}}'], "finite numbers"),
    (["describe", "RI", "--block-params", "{bad"], "--block-params is not valid JSON"),
    (["describe", "timm:nosuchnet"], "nosuchnet"),
    # bench
    (["bench"], "name architectures to bench"),
    (["bench", "RQ"], "unknown block 'Q'"),
    (["bench", "RI", "timm:nosuchnet"], "nosuchnet"),
    (["bench", "--space", "nope"], "unknown search space 'nope'"),
    (["bench", "RI", "--threads", "-1"], "--threads must be a whole number from 1 to"),
    (["bench", "RI", "--repeats", "0"], "--repeats must be a whole number from 1 to"),
    (["bench", "RI", "--max-seconds", "0"], "--max-seconds must be a finite number above 0"),
    (
        ["bench", "RI", "--batch", "1,nan"],
        "--batch must be comma-separated, each a whole number from 1 to 65536",
    ),
    (["bench", "RI", "--json", "--format", "csv"], "ask for two formats"),
    (["bench", "RI", "--format", "xml"], "usage"),
    # data
    (["data"], "usage"),
    (["data", "show", "bogus:x"], "unknown dataset kind 'bogus'"),
    (["data", "show", FER], "file not found"),
    (["data", "show", "synthetic?n=5"], "must be in [21"),
    (["data", "show", "synthetic?colour=1"], "unknown option 'colour'"),
    (["data", "preview", "-o", "{tmp}/no/grid.png"], "folder {tmp}/no does not exist"),
    (["data", "preview", "-o", "{tmp}/grid.png", "--per-class", "0"], "--per-class"),
    (["data", "preview", "-o", "{tmp}/grid.png", "--scale", "100000"], "--scale must be"),
    (["data", "preview", "-o", "{tmp}"], "is a folder"),
    (["data", "preview", "bogus:x", "-o", "{tmp}/grid.png"], "unknown dataset kind"),
    # report
    (["report", "--db", MISSING_DB], "no results database at"),
    (["report", "--db", "sqlite:///{tmp}/empty.db"], "no trials in"),
    (["report", "--db", "sqlite:///{tmp}/empty.db", "--study", "nope"], "unknown study 'nope'"),
    (["report", "--db", "sqlite:///{tmp}/empty.db", "-o", "{tmp}"], "is a folder"),
    (["report", "--format", "md", "-o", "{tmp}/r.md"], "-o and --json are for html"),
    (["report", "--format", "pdf"], "usage"),
    # trials, studies
    (["trials", "--db", MISSING_DB], "no results database at"),
    (["trials", "--db", "nope://x"], "unknown database kind"),
    (["trials", "--limit", "0"], "--limit must be a whole number from 1 to"),
    (["trials", "--limit", "1e99"], "--limit must be a whole number from 1 to"),
    (["trials", "--status", "won"], "usage"),
    (["studies", "--db", MISSING_DB], "no results database at"),
    (["studies", "--db", "sqlite:///{tmp}/no/such/folder/x.db"], "no results database at"),
    # spaces
    (["spaces", "show"], "needs a space name"),
    (["spaces", "show", "nope"], "unknown search space 'nope'"),
    (["spaces", "list", "paper"], "did you mean `harness spaces show paper`?"),
    (["spaces", "show", "paper", "--input", "48x48"], "--input must be an input shape CxHxW"),
    (["spaces", "show", "paper", "--classes", "0"], "--classes must be a whole number from 2 to"),
    (["spaces", "remove", "paper"], "usage"),
    # doctor, clean
    (["doctor", "--verbose"], "usage"),
    (["clean", "--cache-dir", "{tmp}/tiny.toml"], "is a file, not a folder"),
    # train, baselines
    (["train", "RQ", *TRAIN], "unknown block 'Q'"),
    (["train", "RI", *TRAIN, "--data", "bogus:x"], "unknown dataset kind 'bogus'"),
    (["train", "RI", *TRAIN, "--data", FER], "file not found"),
    (["train", "RI", *TRAIN, "--threads", "0"], "--threads must be a whole number from 1 to"),
    (["train", "RI", *TRAIN, "--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N"),
    (["baselines", *TRAIN, "--models", "nosuchnet"], "nosuchnet"),
    (["baselines", *TRAIN, "--data", "bogus:x"], "unknown dataset kind 'bogus'"),
    (["baselines", *TRAIN, "--data", FER], "file not found"),
]


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # a default results/ or reports/ lands here, if anywhere
    (tmp_path / "tiny.toml").write_text(textwrap.dedent(SPACE))
    Store(f"sqlite:///{tmp_path}/empty.db").prepare().close()
    return str(tmp_path)


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_argument_is_one_line_and_exit_2(argv, expected, tmp, capsys):
    argv = [arg.replace("{tmp}", tmp) for arg in argv]
    expected = expected.replace("{tmp}", tmp)
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert status == 2, err
    assert out == ""
    assert len(lines) == 1, err
    assert lines[0].startswith("harness: error: "), err
    if expected == "usage":
        assert re.search(r"\(see harness( [a-z-]+)* --help\)$", lines[0]), err
    else:
        assert expected in lines[0], err
