"""What each block letter's parameters may be, checked before any network is built.

A search space, `--block-params` and a library caller all hand the block
factories (harness.blocks) a table per letter, e.g. `{"R": {"reduction": 4}}`.
A wrong name or value used to surface as the factory's TypeError or
ZeroDivisionError deep inside the model build, after a trial was recorded.
Here each name is checked against what the factory takes and each value
against its range, with one message that says what is allowed.

Nothing here imports torch: search spaces validate quickly. The paper's R and I
are declared here; `harness.blocks.register_block` declares any other letter
(its parameter names read from the factory's signature).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "BUILT_IN_PARAMS",
    "ParamCheck",
    "check_block_params",
    "declare_block_params",
    "forget_block_params",
]

# A value -> what is wrong with it ("" when it is fine).
ParamCheck = Callable[[Any], str]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(high: int) -> ParamCheck:
    def check(value: Any) -> str:
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high
        return "" if ok else f"must be a whole number from 1 to {high}"

    return check


def positive_number(high: float) -> ParamCheck:
    def check(value: Any) -> str:
        return (
            ""
            if _number(value) and 0 < value <= high
            else f"must be a number above 0, at most {high:g}"
        )

    return check


def odd_kernel(high: int) -> ParamCheck:
    def check(value: Any) -> str:
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high
        return "" if ok and value % 2 else f"must be an odd whole number from 1 to {high}"

    return check


def rate(value: Any) -> str:
    return (
        ""
        if _number(value) and 0 <= value < 1
        else "must be a number from 0 up to (not including) 1"
    )


# R's inner width is its width / reduction (harness.blocks.residual_block): a
# reduction above the narrowest width leaves no channels; 256 bounds its base width.
BUILT_IN_PARAMS: dict[str, dict[str, ParamCheck]] = {
    "R": {"reduction": positive_int(256), "drop_path_rate": rate},
    "I": {"exp_ratio": positive_number(64), "kernel_size": odd_kernel(31), "drop_path_rate": rate},
}
# letter -> its parameters' checks (None: any name, any value).
_PARAMS: dict[str, dict[str, ParamCheck] | None] = dict(BUILT_IN_PARAMS)


def declare_block_params(letter: str, checks: Mapping[str, ParamCheck] | None) -> None:
    """The parameters `letter` takes (None: any, for a factory that takes **kwargs)."""
    _PARAMS[letter] = None if checks is None else dict(checks)


def forget_block_params(letter: str) -> None:
    """Undo `declare_block_params` (tests register temporary letters)."""
    _PARAMS.pop(letter, None)
    if letter in BUILT_IN_PARAMS:
        _PARAMS[letter] = BUILT_IN_PARAMS[letter]


def check_block_params(letter: str, params: Any, where: str = "") -> None:
    """ConfigError unless `params` is a table of `letter`'s parameters with allowed
    values; `where` starts the message (a file and key, or a flag)."""
    prefix = f"{where}{letter}"
    if not isinstance(params, Mapping):
        raise ConfigError(f"{prefix}: expected a table of parameters, got {params!r}")
    if letter not in _PARAMS:
        known = ", ".join(sorted(_PARAMS))
        raise ConfigError(f"{prefix}: unknown block letter (known: {known})")
    checks = _PARAMS[letter]
    if checks is None:
        return
    for name, value in params.items():
        if name not in checks:
            allowed = ", ".join(sorted(checks)) or "none"
            raise ConfigError(f"{prefix}.{name}: unknown block parameter (allowed: {allowed})")
        problem = checks[name](value)
        if problem:
            raise ConfigError(f"{prefix}.{name} {problem}, got {value!r}")
