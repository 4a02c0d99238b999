"""Dataset spec strings: `KIND[:PATH][?OPTION=VALUE&...]`.

    synthetic                              the default; no path
    synthetic?n=3000&seed=1&difficulty=0.5
    fer2013:~/data/fer2013.csv
    ferplus:~/data/ferplus?mode=majority
    ckplus:~/data/CK+48?folds=10&fold=0
    folder:~/data/faces                    train/, val/, test/ with class folders
    ...?dedup=1                            on any kind: drop val/test images also in an earlier split

`str(spec)` is the normalised form recorded with every trial: the absolute
path and every option with its effective value, in a fixed order, so that
two specs that load the same data print the same.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import DataError

__all__ = ["DEFAULT_SPEC", "KINDS", "DataSpec", "Option", "describe_kinds", "parse_spec"]

DEFAULT_SPEC = "synthetic"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One `?name=value` option: its type, default, and the check its value must pass."""

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def parse(self, text: str, spec_kind: str) -> Any:
        where = f"option {self.name!r} of {spec_kind}"
        if self.kind is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise DataError(f"{where} must be 0 or 1, got {text!r}")
        if self.kind is str:
            if text not in self.choices:
                raise DataError(f"{where} must be one of {', '.join(self.choices)}, got {text!r}")
            return text
        try:
            value = self.kind(text)
        except ValueError:
            raise DataError(
                f"{where} must be {'an integer' if self.kind is int else 'a number'}, got {text!r}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):  # float() reads nan and inf
            raise DataError(f"{where} must be a finite number, got {text!r}")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise DataError(f"{where} must be in [{_fmt(self.low)}, {_fmt(self.high)}], got {text}")
        return value

    def format(self, value: Any) -> str:
        if self.kind is bool:
            return "1" if value else "0"
        return _fmt(value)


def _fmt(value: Any) -> str:
    if value is None:
        return "..."
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_DEDUP = Option(
    "dedup", bool, False, "drop val/test images whose pixels also appear in an earlier split"
)
_SIZE = Option("size", int, 48, "side of the square grayscale images, in pixels", low=16, high=512)

# kind -> (takes a path, options in the order the normalised spec lists them)
KINDS: dict[str, tuple[bool, tuple[Option, ...]]] = {
    "synthetic": (
        False,
        (
            Option(
                "n", int, 3000, "images in all splits together (70/15/15)", low=21, high=10_000_000
            ),
            Option("seed", int, 0, "random seed of the generator", low=0, high=2**63 - 1),
            Option("difficulty", float, 0.5, "strength of every nuisance, 0..1", low=0.0, high=1.0),
            _SIZE,
            Option("prior", str, "uniform", "class frequencies", choices=("uniform", "fer2013")),
            _DEDUP,
        ),
    ),
    "fer2013": (True, (_DEDUP,)),
    "ferplus": (
        True,
        (
            Option(
                "mode",
                str,
                "majority",
                "FER+ label mode",
                choices=("majority", "probability", "crossentropy", "all10", "plurality"),
            ),
            _DEDUP,
        ),
    ),
    "ckplus": (
        True,
        (
            Option("folds", int, 10, "subject-independent folds", low=3, high=1000),
            Option("fold", int, 0, "the test fold; the next one is validation", low=0, high=999),
            Option(
                "frames",
                int,
                3,
                "last frames per labelled sequence (original release)",
                low=1,
                high=100,
            ),
            Option(
                "neutral",
                bool,
                False,
                "add each sequence's first frame as 'neutral' (original release)",
            ),
            _SIZE,
            _DEDUP,
        ),
    ),
    "folder": (True, (_SIZE, _DEDUP)),
}


@dataclass(frozen=True)
class DataSpec:
    """A parsed spec: kind, absolute path (or None) and every option's value."""

    kind: str
    path: Path | None
    options: tuple[tuple[str, Any], ...]

    def __getitem__(self, name: str) -> Any:
        return dict(self.options)[name]

    def __str__(self) -> str:
        _, schema = KINDS[self.kind]
        query = "&".join(f"{o.name}={o.format(self[o.name])}" for o in schema)
        where = f":{self.path}" if self.path is not None else ""
        return f"{self.kind}{where}?{query}"

    def source_options(self) -> dict[str, Any]:
        """Options that change what is read from disk (not dedup, which acts later)."""
        return {name: value for name, value in self.options if name != "dedup"}


def parse_spec(text: str | DataSpec) -> DataSpec:
    """Parse and validate a spec string; DataError names what is wrong and what is allowed."""
    if isinstance(text, DataSpec):
        return text
    text = text.strip() or DEFAULT_SPEC
    head, _, query = text.partition("?")
    kind, colon, path_text = head.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise DataError(f"unknown dataset kind {kind!r} in {text!r} (known: {', '.join(KINDS)})")
    takes_path, schema = KINDS[kind]
    path: Path | None = None
    if takes_path:
        if not path_text.strip():
            raise DataError(f"{kind} needs a path: {kind}:PATH (got {text!r})")
        path = Path(os.path.expanduser(path_text.strip())).resolve()
    elif colon:
        raise DataError(f"{kind} takes no path, only options such as {kind}?seed=1 (got {text!r})")
    return DataSpec(kind, path, tuple(_parse_options(kind, schema, query).items()))


def _parse_options(kind: str, schema: tuple[Option, ...], query: str) -> dict[str, Any]:
    by_name: dict[str, Option] = {o.name: o for o in schema}
    values = {o.name: o.default for o in schema}
    seen: set[str] = set()
    for item in filter(None, query.split("&")):
        name, eq, value = item.partition("=")
        name = name.strip()
        if name not in by_name:
            allowed = ", ".join(o.name for o in schema)
            raise DataError(f"unknown option {name!r} for {kind} (allowed: {allowed})")
        if not eq:
            raise DataError(f"option {name!r} of {kind} needs a value: {name}=VALUE")
        if name in seen:
            raise DataError(f"option {name!r} given twice in the {kind} spec")
        seen.add(name)
        values[name] = by_name[name].parse(value.strip(), kind)
    if kind == "ckplus" and values["fold"] >= values["folds"]:
        raise DataError(
            f"ckplus fold must be below folds ({values['folds']}), got fold={values['fold']}"
        )
    return values


def describe_kinds() -> str:
    """One line per kind with its options, for --help texts."""
    lines = []
    for kind, (takes_path, schema) in KINDS.items():
        options = "&".join(f"{o.name}={o.format(o.default)}" for o in schema)
        lines.append(f"{kind}{':PATH' if takes_path else ''}?{options}")
    return "\n".join(lines)
