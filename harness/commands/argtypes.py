"""Argparse types for every numeric flag: finite, in range, refused while parsing.

A bad value is refused before the command runs (before any progress line, before
the database is opened) with one line, `harness: error: --lr ...`, and exit
status 2: each type raises ConfigError, which argparse lets through and
`harness.cli.main` prints as one line. argparse's own ArgumentTypeError would
print the whole usage first, many lines for commands with many flags; so each
type knows its flag, to name it. Each numeric type holds the `harness.limits.Limit` it
checks, so the tests can walk the real parser and try every numeric flag.

Flags whose text is parsed later by the command (`--batch 1,64`, `--max-flops
300M`, `--input 1x48x48`, `--block-params JSON`) get a type that checks the text
and returns it unchanged, so the command's own parser sees what the user typed.

Only the standard library is imported here: `harness --help` stays fast.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, NoReturn

from harness.errors import ConfigError
from harness.limits import Limit, refuse, show

__all__ = [
    "Choice",
    "Number",
    "TextCheck",
    "block_params",
    "count",
    "count_value",
    "device",
    "each_of",
    "finite_float",
    "int_list",
    "int_range",
    "shape",
    "study_name",
    "threads",
    "usable_cores",
    "workers",
]

# Above any real run, below what makes a typo (1e30) allocate or loop for days.
MAX_BATCH = 65_536
MAX_SIDE = 4_096
MAX_CHANNELS = 64
MAX_CLASSES = 100_000
MAX_STUDY_NAME = 200  # a name to read in a table; 10,000 characters is a pasted mistake
FOLDS_HINT = " (a test fold, a validation fold and one to train on)"
_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class Number:
    """An int or float flag that `limit` allows (a setting's own `Limit` from a table
    such as `config.TRAIN_LIMITS`, or one made here); floats must be finite. Its message
    is the `Limit`'s, as a space file's and a library caller's are."""

    def __init__(self, flag: str, limit: Limit) -> None:
        self.flag, self.limit = flag, limit
        # argparse names the type in its own messages; keep that readable.
        self.__name__ = limit.kind.__name__

    def __call__(self, text: str) -> Any:
        try:
            value = self.limit.kind(text.strip())
        except ValueError:
            value = None
        if not self.limit.allows(value):
            refuse(self.flag, self.limit(value), text)
        return value


def int_range(flag: str, low: int, high: int, *, hint: str = "") -> Number:
    """A whole number from `low` to `high` inclusive."""
    return Number(flag, Limit(int, low, high, hint=hint))


def finite_float(
    flag: str,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> Number:
    """A finite float in the range; nan, inf and -inf are always refused."""
    return Number(flag, Limit(float, low, high, open_low=open_low, open_high=open_high))


def threads(flag: str = "--threads") -> Number:
    """1 to the cores this process may use. 0 is refused rather than meaning "all":
    leaving the flag out already means all, and a 0 from a script is more often a bug.
    More threads than cores only thrash, so they are refused, not capped silently."""
    cores = usable_cores()
    return int_range(
        flag, 1, cores, hint=f" (the cores this machine lets us use; omit {flag} for all)"
    )


def workers(flag: str = "--workers") -> Number:
    """Worker processes: at least one core each (a GPU each on CUDA, where cores still bound it)."""
    cores = usable_cores()
    return int_range(flag, 1, cores, hint=" (one core each at least, the cores this machine has)")


class TextCheck:
    """Checks a numeric text flag (a list, a count, a shape) and returns the text unchanged.

    `limit` bounds every number in it; `what` is the message's rule."""

    def __init__(self, flag: str, limit: Limit, parse: Any, what: str) -> None:
        self.flag, self.limit, self.parse, self.what = flag, limit, parse, what
        self.__name__ = "str"

    def __call__(self, text: str) -> str:
        try:
            values = self.parse(text)
        except ValueError:
            values = None
        if not values or not all(map(self.limit.allows, values)):
            refuse(self.flag, f"must be {self.what}", text)
        return text


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _count(text: str) -> list[float]:
    raw = text.strip().lower()
    scale = 1.0
    if raw and raw[-1] in _SUFFIXES:
        scale, raw = _SUFFIXES[raw[-1]], raw[:-1]
    return [float(raw) * scale]


def count_value(text: str | None) -> float | None:
    """The number a `count` flag's text stands for: '300M' -> 3e8 (None stays None)."""
    return None if text is None else _count(text)[0]


def _shape(text: str) -> list[int]:
    parts = [int(p) for p in text.lower().replace("×", "x").split("x")]
    if len(parts) != 3:
        raise ValueError(text)
    return parts


class Choice:
    """A flag that takes one of a `Limit`'s choices, refused in the words a space file's
    value gets (`--stem must be one of ..., got 'x'`), not argparse's own."""

    def __init__(self, flag: str, limit: Limit) -> None:
        self.flag, self.limit = flag, limit
        self.__name__ = "choice"
        # --help lists the choices as argparse's `choices=` would.
        self.metavar = "{" + ",".join(map(str, limit.choices)) + "}"

    def __call__(self, text: str) -> str:
        value = text.strip()
        if not self.limit.allows(value):
            refuse(self.flag, self.limit(value), text)
        return value


def int_list(flag: str, low: int, high: int) -> TextCheck:
    """'1,64,256': comma-separated whole numbers, each from `low` to `high` (as a space
    file's list of widths or depths)."""
    return each_of(flag, Limit(int, low, high))


def each_of(flag: str, limit: Limit) -> TextCheck:
    """'1,64,256': comma-separated whole numbers, each within `limit` (a skeleton list
    field's: widths, depths)."""
    return TextCheck(flag, limit, _ints, f"comma-separated, each {limit.rule()}")


def count(flag: str, high: float) -> TextCheck:
    """'300M', '2.5e6': one positive finite number with an optional k/M/G/T suffix."""
    what = f"a positive number such as 300M or 2.5e6 from 1 to {show(high)}"
    return TextCheck(flag, Limit(float, 1, high), _count, what)


class _Shape(TextCheck):
    def __call__(self, text: str) -> str:
        super().__call__(text)
        channels = _shape(text)[0]
        if channels > MAX_CHANNELS:
            refuse(self.flag, f"must have at most {MAX_CHANNELS} channels (CxHxW)", text)
        return text


def shape(flag: str = "--input") -> TextCheck:
    """'1x48x48': channels, height and width, each from 1 to MAX_SIDE (channels MAX_CHANNELS)."""
    what = f"an input shape CxHxW (e.g. 1x48x48) with sizes from 1 to {MAX_SIDE}"
    return _Shape(flag, Limit(int, 1, MAX_SIDE), _shape, what)


class _BlockParams:
    """Per-letter block parameters as JSON without NaN or Infinity (Python's json reads
    both, JSON has neither), each name and value checked as a space file's are."""

    def __init__(self, flag: str) -> None:
        self.flag = flag
        self.__name__ = "str"

    def __call__(self, text: str) -> str:
        from harness.block_params import check_block_params

        def non_finite(constant: str) -> NoReturn:
            refuse(self.flag, f"must hold finite numbers only, not {constant}", text)

        try:
            value = json.loads(text, parse_constant=non_finite)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{self.flag} is not valid JSON: {error}") from None
        if _has_non_finite(value):
            non_finite("a number too large for a float")
        if not isinstance(value, dict):
            refuse(self.flag, 'must map letters to objects, e.g. \'{"I": {"exp_ratio": 6}}\'', text)
        for letter, params in value.items():
            check_block_params(letter, params, f"{self.flag} ")
        return text


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def block_params(flag: str = "--block-params") -> _BlockParams:
    """Per-letter block parameters as JSON, each name and value checked against what the
    letter's block takes (harness.block_params) while parsing."""
    return _BlockParams(flag)


def _device(text: str) -> str:
    """auto, cpu, cuda or cuda:N with N a CUDA device torch sees. Other torch device kinds
    (mps, xpu, meta) parse in torch but train nowhere here: refused before any record."""
    name = text.strip().lower()
    kind, _, index = name.partition(":")
    if name in ("auto", "cpu", "cuda") or (kind == "cuda" and index.isascii() and index.isdigit()):
        if kind == "cuda":
            import torch

            count = torch.cuda.device_count()
            if count == 0:
                raise ConfigError(f"--device {text} was asked for but torch sees no CUDA device")
            if index and int(index) >= count:
                raise ConfigError(
                    f"--device {text}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
                )
        return name
    refuse("--device", "must be auto, cpu, cuda or cuda:N (harness runs on the CPU and CUDA)", text)


def device() -> Any:
    """The --device flag's type: the device name, lower-cased, checked while parsing."""
    return _device


def _study_name(text: str) -> str:
    shown = repr(text[:40]) + (f"... ({len(text):,} characters)" if len(text) > 40 else "")
    if not text.strip() or len(text) > MAX_STUDY_NAME:
        raise ConfigError(f"--study must be 1 to {MAX_STUDY_NAME} characters, got {shown}")
    try:
        text.encode("utf-8")  # bytes that are not UTF-8 reach us as lone surrogates
    except UnicodeEncodeError:
        raise ConfigError(f"--study must be UTF-8 text, got {shown}") from None
    if not text.isprintable():
        raise ConfigError(f"--study must be printable (no tabs, newlines or controls), got {shown}")
    return text


def study_name() -> Any:
    """The --study flag's type: a name for tables and the database, checked while parsing."""
    return _study_name
