"""Where search-space files are found, and reading them (TOML or YAML).

Lookup order, first folder holding a name wins: $HARNESS_SPACES (folders
separated by os.pathsep), ./search_spaces, then the spaces installed with
harness (`packaged_dir`). Nothing here imports torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ENV_VAR",
    "SUFFIXES",
    "find_space",
    "list_spaces",
    "looked_in",
    "packaged_dir",
    "read_space",
    "space_dirs",
]

ENV_VAR = "HARNESS_SPACES"
SUFFIXES = (".toml", ".yaml", ".yml")


def packaged_dir() -> Path:
    """The spaces that come with harness.

    A wheel or a non-editable install has them as package data in
    harness/search_spaces/ (pyproject.toml maps the top-level search_spaces/ there);
    running from a checkout (editable install, PYTHONPATH) reads the checkout's
    search_spaces/ next to the package. The path is returned even if missing, for
    error messages."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "search_spaces"
    checkout = package.parent / "search_spaces"
    # pyproject.toml tells a checkout from site-packages, where a stray search_spaces/
    # folder could be anybody's.
    if not installed.is_dir() and (package.parent / "pyproject.toml").is_file():
        return checkout
    return installed


def _candidate_dirs() -> list[tuple[str, Path]]:
    """(where, folder) in lookup order, existing or not."""
    out = [
        (f"${ENV_VAR}", Path(p).expanduser())
        for p in os.environ.get(ENV_VAR, "").split(os.pathsep)
        if p.strip()
    ]
    out.append(("./search_spaces", Path.cwd() / "search_spaces"))
    out.append(("installed with harness", packaged_dir()))
    return out


def space_dirs() -> list[Path]:
    """Where spaces are looked up, first match wins: $HARNESS_SPACES (os.pathsep-separated),
    ./search_spaces, then the spaces installed with harness (`packaged_dir`)."""
    unique: list[Path] = []
    for _, folder in _candidate_dirs():
        if folder.is_dir() and all(not _same(folder, seen) for seen in unique):
            unique.append(folder)
    return unique


def looked_in() -> str:
    """Every place spaces are looked up, for messages: "$HARNESS_SPACES (unset), ..."."""
    parts = [] if os.environ.get(ENV_VAR, "").strip() else [f"${ENV_VAR} (unset)"]
    for where, folder in _candidate_dirs():
        missing = "" if folder.is_dir() else ", missing"
        parts.append(f"{where} ({folder}{missing})")
    return "; ".join(parts)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def list_spaces() -> dict[str, Path]:
    """Space name -> file, over every space folder (the first folder holding a name wins)."""
    found: dict[str, Path] = {}
    for folder in space_dirs():
        for path in sorted(folder.iterdir()):
            if path.suffix in SUFFIXES and path.stem not in found and not path.stem.startswith("_"):
                found[path.stem] = path
    return found


def find_space(name: str) -> Path:
    if name.endswith(SUFFIXES) or os.sep in name or "/" in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"no search-space file {path}")
        return path
    spaces = list_spaces()
    if name not in spaces:
        known = ", ".join(spaces) or "none"
        raise ConfigError(
            f"unknown search space {name!r} (known: {known}; looked in {looked_in()})"
        )
    return spaces[name]


def read_space(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read search space {path}: {error.strerror or error}") from None
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        first = str(error).replace("\n", " ")
        raise ConfigError(f"{path}: not valid YAML: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data
