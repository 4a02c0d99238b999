"""Output files: checked before the work that fills them, written whole or not at all.

`check_writable` runs before a command builds anything, so a folder, a missing
parent or a read-only place fails with one line instead of after minutes of work.
`atomic_path` hands out a hidden temporary file beside the target and renames it
over the target only once it is complete; on any failure the temporary file is
removed, so a reader never sees half a page and no `.partial` file is left behind.

Only a regular file or a new name is ever replaced. A device, FIFO or socket
(`-o /dev/null`, `-o /dev/stdout`) is refused: the rename would put a regular
file in its place (as root, the system's /dev/null), and writing through it
instead would mix the page into the printed path on stdout. A symbolic link
to a regular file (or to a new name) is followed: the file it points at is
replaced and the link stays, as the shell's `>` would do; replacing the link
itself would silently cut it from the file the user linked. A link that
points nowhere inside an existing folder is followed the same way.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.errors import ConfigError, first_line

__all__ = ["atomic_path", "check_writable", "regular_target", "write_text_atomic"]


def check_writable(path: str | Path, flag: str = "-o", example: str = "report.html") -> Path:
    """`path` as a Path if a file can be written there (its folder may still be missing,
    as long as it can be created); ConfigError naming `flag` otherwise. `example` is the
    file name suggested when `path` is a folder."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"{flag} {target} is a folder; name the file, e.g. {target / example}")
    if str(path).endswith(os.sep):
        raise ConfigError(f"{flag} {target}{os.sep} names a folder; name the file")
    target = regular_target(target, flag)
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
    target = regular_target(Path(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".partial", dir=target.parent
        )
    except OSError as error:
        raise ConfigError(f"cannot write {target}: {first_line(error)}") from None
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        # mkstemp makes the file private (0600), and a writer that makes its file anew
        # (safetensors) does too: the finished file gets the usual mode.
        os.chmod(partial, 0o666 & ~_umask())
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


def regular_target(path: Path, flag: str | None = None) -> Path:
    """The file that writing `path` replaces: `path` itself when it is a regular file or
    a new name, the file a symbolic link points at; ConfigError for anything else."""
    shown = f"{flag} {path}" if flag else str(path)
    try:
        mode = path.stat().st_mode  # follows links
    except (FileNotFoundError, NotADirectoryError):  # a new name (or a file as its folder)
        if not path.is_symlink():
            return path
        mode = None
    except OSError as error:
        raise ConfigError(f"cannot write {shown}: {first_line(error)}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(
            f"cannot write {shown}: it is {_kind(mode)}, not a regular file; name a file"
        )
    if not path.is_symlink():
        return path
    if _through_descriptor(path):
        # /dev/stdout redirected to a file resolves to that file: replacing it would
        # leave the shell's handle on the deleted old one.
        raise ConfigError(f"cannot write {shown}: it names an open file descriptor; name a file")
    resolved = Path(os.path.realpath(path))
    if mode is None and not resolved.parent.is_dir():
        raise ConfigError(
            f"cannot write {shown}: it is a link to {resolved}, whose folder is missing"
        )
    return resolved


def _through_descriptor(path: Path) -> bool:
    """Whether `path` or a link on its way leads into /proc or /dev/fd (stdout, a pipe)."""
    current = path.absolute()
    for _ in range(40):  # the kernel's own limit on links followed
        if current.parts[1:2] == ("proc",) or current.parts[1:3] == ("dev", "fd"):
            return True
        if not current.is_symlink():
            return False
        current = current.parent / os.readlink(current)
    return False


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISDIR: "a folder",
    }
    return next((name for test, name in kinds.items() if test(mode)), "a special file")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
