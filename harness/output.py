"""Output files: checked before the work that fills them, written whole or not at all.

`check_writable` runs before a command builds anything, so a folder, a missing
parent or a read-only place fails with one line instead of after minutes of work.
`atomic_path` hands out a hidden temporary file beside the target and renames it
over the target only once it is complete; on any failure the temporary file is
removed, so a reader never sees half a page and no `.partial` file is left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.errors import ConfigError, first_line

__all__ = ["atomic_path", "check_writable", "write_text_atomic"]


def check_writable(path: str | Path, flag: str = "-o", example: str = "report.html") -> Path:
    """`path` as a Path if a file can be written there (its folder may still be missing,
    as long as it can be created); ConfigError naming `flag` otherwise. `example` is the
    file name suggested when `path` is a folder."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"{flag} {target} is a folder; name the file, e.g. {target / example}")
    if str(path).endswith(os.sep):
        raise ConfigError(f"{flag} {target}{os.sep} names a folder; name the file")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write {target}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {target}: no write permission in {folder}")
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(f"cannot write {target}: the file is read-only")
    return target


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed to `path` when the block ends
    without an error, removed otherwise. An OSError becomes a ConfigError (one line)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".partial", dir=target.parent
        )
    except OSError as error:
        raise ConfigError(f"cannot write {target}: {first_line(error)}") from None
    os.close(handle)
    partial = Path(name)
    # mkstemp makes the file private (0600); the finished file gets the usual mode.
    os.chmod(partial, 0o666 & ~_umask())
    try:
        yield partial
        os.replace(partial, target)
    except OSError as error:
        raise ConfigError(f"cannot write {target}: {first_line(error)}") from None
    finally:
        # After a successful replace the name is gone already.
        partial.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` whole or not at all; return the path."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
