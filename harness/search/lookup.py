"""Where search-space files are found, and reading them (TOML or YAML).

Lookup order, first folder holding a name wins: $HARNESS_SPACES (folders
separated by os.pathsep), ./search_spaces, then the spaces installed with
harness (`packaged_dir`). Nothing here imports torch.
"""

from __future__ import annotations

import os
import stat
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
# A space file is a few hundred bytes: a megabyte is a mistake, and tables nested
# deeper than a few levels are too (the parsers recurse, and would hit Python's limit).
MAX_SPACE_BYTES = 1 << 20
MAX_NESTING = 16


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
    """The file's tables: UTF-8 TOML or YAML, a regular file of at most MAX_SPACE_BYTES,
    string keys nested at most MAX_NESTING deep, no YAML aliases; ConfigError otherwise."""
    text = _read_text(path)
    try:
        data = _parse(path, text)
    except RecursionError:
        raise ConfigError(f"{path}: nested deeper than {MAX_NESTING} levels") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    _check_tree(path, data)
    return data


def _read_text(path: Path) -> str:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise ConfigError(f"cannot read search space {path}: not a regular file")
        if info.st_size > MAX_SPACE_BYTES:
            raise ConfigError(
                f"search space {path} is {info.st_size:,} bytes; a space file is at most "
                f"{MAX_SPACE_BYTES:,}"
            )
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read search space {path}: {error.strerror or error}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start} is {raw[error.start : error.start + 1]!r}); "
            "save it as UTF-8"
        ) from None


def _parse(path: Path, text: str) -> Any:
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except ValueError as error:  # TOMLDecodeError, or an integer too long to convert
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML: {error.problem or error.context}{at}") from None
    except (yaml.YAMLError, ValueError) as error:  # ValueError: an integer too long to convert
        first = str(error).replace("\n", " ")
        raise ConfigError(f"{path}: not valid YAML: {first}") from None


def _loader() -> type:
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """PyYAML's safe loader without aliases: `*name` repeats a node without copying
        it, so a 643-byte file of nested aliases ("billion laughs") stands for 9^9
        values that every check would walk, and `&a [*a]` is a list holding itself."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed in a space file; write the "
                    "value out", self.peek_event().start_mark,
                )  # fmt: skip
            return super().compose_node(parent, index)

    return NoAliasLoader


def _check_tree(path: Path, data: dict[str, Any]) -> None:
    """Keys are strings (YAML also reads `1:` and `null:` as keys), nesting is bounded."""
    stack: list[tuple[str, Any, int]] = [("", data, 1)]
    while stack:
        where, value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ConfigError(f"{path}: {where}: nested deeper than {MAX_NESTING} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(value, dict) and not isinstance(key, str):
                raise ConfigError(
                    f"{path}: {where or 'top level'}: keys must be strings, got {key!r}"
                )
            if isinstance(child, (dict, list)):
                stack.append((f"{where}.{key}" if where else str(key), child, depth + 1))
