"""The one error line of a refused `harness` command, shared by the bad-input tests."""

from __future__ import annotations

import pytest

from harness.cli import main


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a refused command (asserts exit 2 and nothing else printed)."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    assert status == 2, (argv, out, err)
    assert out == "", (argv, out)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), (argv, err)
    return lines[0]
