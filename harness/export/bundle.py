"""An export folder: written into a hidden sibling and renamed into place whole, read back checked.

    with staged(out, force=False) as folder:   # ExportError: `out` exists
        ...write files into folder...          # an error here removes folder
    bundle = read_bundle(out)                  # ExportError: not an export folder

The folder holds `config.json` (what `harness.export.manifest` writes),
`model.safetensors` and, on request, `model.onnx` and `model.torchscript.pt`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import first_line
from harness.export.checks import ExportError
from harness.weights import WEIGHTS_FILE, file_sha256

__all__ = [
    "CONFIG_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "ONNX_FILE",
    "TORCHSCRIPT_FILE",
    "Bundle",
    "read_bundle",
    "refuse_existing",
    "staged",
    "write_config",
]

FORMAT = "harness-export"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"


@dataclass(frozen=True)
class Bundle:
    folder: Path
    config: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.folder / name

    def has(self, name: str) -> bool:
        return name in self.config.get("files", {})


def refuse_existing(out: Path, force: bool) -> None:
    """ExportError unless `out` is new, or `force` and `out` is an export folder (or empty):
    --force never replaces a folder of something else."""
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise ExportError(
            f"output folder {out} already exists; choose another --out or add --force"
        )
    if not out.is_dir() or out.is_symlink():
        raise ExportError(
            f"output {out} exists and is not a folder; remove it or choose another --out"
        )
    if any(out.iterdir()) and not _is_bundle(out):
        raise ExportError(
            f"output folder {out} exists and is not an export folder; --force replaces only "
            "an earlier export: remove it yourself or choose another --out"
        )


@contextlib.contextmanager
def staged(out: Path, *, force: bool = False) -> Iterator[Path]:
    """A hidden folder beside `out` to write the export into; renamed to `out` when the
    block ends without an error (with `force`, an earlier export there is replaced),
    removed otherwise, so that `out` is either the whole export or untouched."""
    refuse_existing(out, force)
    token = uuid.uuid4().hex[:8]
    partial = out.parent / f".{out.name}.partial-{token}"
    # Folders made for the export (exports/ on a first run) go again if it fails.
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    try:
        partial.mkdir(parents=True)
    except OSError as error:
        raise ExportError(f"cannot write {out}: {first_line(error)}") from None
    done = False
    old = None
    try:
        yield partial
        refuse_existing(out, force)  # made meanwhile by someone else: still refused
        if out.exists():
            old = out.parent / f".{out.name}.old-{token}"
            os.replace(out, old)
        os.replace(partial, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        done = True
    except OSError as error:
        if old is not None and old.exists() and not out.exists():
            os.replace(old, out)  # --force: the earlier export comes back, not hidden
        raise ExportError(f"cannot write {out}: {first_line(error)}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        if not done:
            for folder in made:  # innermost first; one that holds anything else stays
                with contextlib.suppress(OSError):
                    folder.rmdir()


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_bundle(folder: str | Path, *, verify: bool = True) -> Bundle:
    """The export folder `folder`: its config.json read and, with `verify`, every file it
    lists present with its recorded SHA-256. ExportError (one line) otherwise."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ExportError(f"{folder} is not a folder; give the folder `harness export` wrote")
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(
            f"{folder} is not an export folder (no {CONFIG_FILE}); give the folder "
            "`harness export` wrote"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"cannot read {path}: {first_line(error)}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ExportError(f"{path} is not a harness export's config (no format {FORMAT!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise ExportError(
            f"{path} is format version {config.get('format_version')}, this harness reads "
            f"version {FORMAT_VERSION}; export the trial again with this harness"
        )
    files = config.get("files")
    if not isinstance(files, dict) or WEIGHTS_FILE not in files:
        raise ExportError(f"{path} lists no {WEIGHTS_FILE}; export the trial again")
    if verify:
        for name, entry in files.items():
            file = folder / name
            if not file.is_file():
                raise ExportError(f"{file} is missing from the export folder; export again")
            if file_sha256(file) != entry.get("sha256"):
                raise ExportError(
                    f"{file} is not the file that was exported (its SHA-256 differs): it was "
                    "changed or truncated; export again"
                )
    return Bundle(folder, config)


def _is_bundle(folder: Path) -> bool:
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT
