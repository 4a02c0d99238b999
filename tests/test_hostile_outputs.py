"""Hostile output paths and a stdout that cannot take the output (issue 23).

Every file a command writes goes through harness.output: a device, FIFO or socket
is refused (the atomic rename would put a regular file in its place), a link to a
regular file is written through (the link stays), /dev/stdout (a link into
/proc/self/fd) is refused. A full
or closed stdout is one line, and argparse's own errors are one line too.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _refusal import refused

from harness.cli import COMMANDS
from harness.errors import ConfigError
from harness.output import atomic_path, write_text_atomic
from harness.store import Store

SMALL = "synthetic?n=60&size=16"


@pytest.fixture
def db(tmp_path: Path, record_trial) -> str:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Store(url) as store:
        record_trial(store, study="kept", epochs=2)
    return url


def _special(kind: str, path: Path) -> Path:
    """A special file of `kind` at `path`; the test is skipped where it cannot be made."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "char device":
        try:
            os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
        except PermissionError:
            pytest.skip("making a device node needs CAP_MKNOD (root); the FIFO case still runs")
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(str(path))
        except OSError as error:  # a tmp path over the 108-byte limit of AF_UNIX names
            pytest.skip(f"cannot bind a unix socket here: {error}")
        finally:
            server.close()
    elif kind == "link to /dev/null":
        path.symlink_to(os.devnull)
    return path


def _mode(path: Path) -> int:
    return stat.S_IFMT(path.lstat().st_mode)


KINDS = ["fifo", "char device", "socket", "link to /dev/null"]


@pytest.mark.parametrize("kind", KINDS)
def test_report_refuses_a_special_file_and_leaves_it(kind, db, tmp_path, capsys):
    node = _special(kind, tmp_path / "node")
    before = _mode(node)
    line = refused(["report", "--db", db, "-o", str(node), "--quiet"], capsys)
    assert "not a regular file" in line and str(node) in line
    assert _mode(node) == before  # still the node (or link) it was, not a regular file
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("kind", KINDS)
def test_data_preview_refuses_a_special_file(kind, tmp_path, capsys):
    node = _special(kind, tmp_path / "grid.png")
    before = _mode(node)
    line = refused(["data", "preview", SMALL, "-o", str(node)], capsys)
    assert "not a regular file" in line
    assert _mode(node) == before


@pytest.mark.parametrize("kind", KINDS)
def test_every_atomic_write_refuses_a_special_file(kind, tmp_path):
    # The writer the report, the preview and the supernet's checkpoints all use.
    node = _special(kind, tmp_path / "out")
    before = _mode(node)
    with pytest.raises(ConfigError, match="not a regular file"):
        write_text_atomic(node, "page")
    with pytest.raises(ConfigError, match="not a regular file"), atomic_path(node):
        raise AssertionError("never reached: refused before the block")
    assert _mode(node) == before


# /dev/stdout is a link to /proc/self/fd/1; the tests use a link of their own with the
# same target, so that a regression replaces that link, never the system's /dev/stdout.


def test_a_link_to_stdout_is_refused(db, tmp_path, capsys):
    # Whatever stdout is (a pipe, a terminal, a file), the page is never renamed over it.
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    line = refused(["report", "--db", db, "-o", str(stdout), "--quiet"], capsys)
    assert f"-o {stdout}" in line
    assert stdout.is_symlink()


def test_a_link_to_stdout_redirected_to_a_file_is_refused_too(db, tmp_path):
    # A file behind stdout: replacing it would leave the shell's handle on the old one.
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    out = tmp_path / "out.txt"
    with out.open("w") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "report", "--db", db, "-o", str(stdout)],
            stdout=handle, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"harness: error: cannot write -o {stdout}: it names an open file descriptor; name a file"
    ]
    assert out.read_text() == "" and stdout.is_symlink()


def test_a_link_to_a_regular_file_is_written_through(db, tmp_path, capsys):
    target = tmp_path / "pages" / "real.html"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    from harness.cli import main

    assert main(["report", "--db", db, "-o", str(link), "--quiet"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)  # the link stays
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in target.parent.iterdir()) == ["real.html"]  # no partial


def test_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "new.txt")
    write_text_atomic(link, "page")
    assert link.is_symlink() and (tmp_path / "new.txt").read_text() == "page"
    loose = tmp_path / "loose.txt"
    loose.symlink_to(tmp_path / "missing" / "x.txt")
    with pytest.raises(ConfigError, match="whose folder is missing"):
        write_text_atomic(loose, "page")


# -- stdout that cannot take the output ----------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(
    "argv",
    [
        ["trials", "--format", "csv"],
        ["trials", "--format", "json"],
        ["describe", "RI", "--json", "--threads", "1"],
    ],
)
def test_a_full_stdout_is_one_line_and_exit_2(argv, db, tmp_path):
    argv = [*argv, "--db", db] if argv[0] == "trials" else argv
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", *argv],
            stdout=full, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "harness: error: cannot write the output: No space left on device"
    ]


def test_a_closed_pipe_is_quiet_and_exit_0(db):
    # `harness trials | head -0`: the reader left; that is not an error, and no
    # "Exception ignored" is printed at exit.
    done = subprocess.run(
        f"{sys.executable} -m harness.cli trials --format csv --db {db} | head -c 0",
        shell=True, stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""


# -- argparse's own errors ---------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_flag_is_one_line_for_every_command(command, capsys):
    # A missing required argument or an unknown flag, whichever argparse meets first.
    name = command.replace("_", "-")
    line = refused([name, "--no-such-flag"], capsys)
    assert line.startswith(f"harness: error: {name}: ")
    assert line.endswith(f"(see harness {name} --help)")


def test_a_bad_choice_is_one_line(capsys):
    line = refused(["trials", "--format", "xml"], capsys)
    assert line.startswith("harness: error: trials: argument --format: invalid choice: 'xml'")
    assert line.endswith("(see harness trials --help)")
    assert refused([], capsys).endswith("(see harness --help)")
