"""What one setting may be, and the one message a value outside it gets.

A flag (`--lr`), a space file (`space.toml: train.lr`), a searched range's bounds
and a library caller (`TrainConfig`, `Skeleton`) meet the same `Limit` and read
the same words, `WHERE must be RULE, got VALUE`: only WHERE says where the value
came from. The tables of limits live beside what they limit: training settings in
`harness.config`, skeleton fields in `harness.skeleton_limits`, block parameters in
`harness.block_params`.

Only the standard library: `harness --help` and space files stay fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

from harness.errors import ConfigError

__all__ = ["Limit", "check", "one_of", "refuse", "show"]


@dataclass(frozen=True)
class Limit:
    """A whole number (`kind` int), a finite number (float; ints too) within
    [low, high] (an end excluded where `open_low` / `open_high`), or one of
    `choices` (kind str). `hint` ends the rule: why the range is what it is."""

    kind: type = float
    low: float = 0
    high: float = 0
    open_low: bool = False
    open_high: bool = False
    choices: tuple[Any, ...] = ()
    odd: bool = False  # whole numbers only: a conv kernel's size
    hint: str = ""

    def allows(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value) or (self.odd and value % 2 == 0):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def rule(self) -> str:
        """What an allowed value is, in the words every message uses."""
        if self.choices:
            return f"one of {', '.join(map(show, self.choices))}{self.hint}"
        if self.kind is float:
            what = "a finite number"
        else:
            what = "an odd whole number" if self.odd else "a whole number"
        if self.kind is int and not (self.open_low or self.open_high):
            return f"{what} from {show(self.low)} to {show(self.high)}{self.hint}"
        low = f"{'above' if self.open_low else 'at least'} {show(self.low)}"
        high = f"{'below' if self.open_high else 'at most'} {show(self.high)}"
        return f"{what} {low} and {high}{self.hint}"

    def __call__(self, value: Any) -> str:
        """What is wrong with `value`, "" if nothing (a `block_params.ParamCheck`)."""
        return "" if self.allows(value) else f"must be {self.rule()}"


def one_of(allowed: tuple[Any, ...], hint: str = "") -> Limit:
    return Limit(str, choices=tuple(allowed), hint=hint)


def show(value: Any) -> str:
    """A bound as people write it: 10, 0.99, 0.999999999 (not 1.0, not 1)."""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def refuse(where: str, problem: str, value: Any, error: type[Exception] = ConfigError) -> NoReturn:
    """The one message: `where` (a flag, `file: key`, a field), what is wrong, the value."""
    raise error(f"{where} {problem}, got {value!r}")


def check(where: str, value: Any, limit: Limit, error: type[Exception] = ConfigError) -> None:
    """`error` (ConfigError unless a caller has its own) unless `limit` allows `value`."""
    problem = limit(value)
    if problem:
        refuse(where, problem, value, error)
