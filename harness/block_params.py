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

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import ConfigError
from harness.limits import Limit, refuse

__all__ = [
    "BUILT_IN_PARAMS",
    "ParamCheck",
    "check_block_params",
    "declare_block_params",
    "forget_block_params",
]

# A value -> what is wrong with it ("" when it is fine), e.g. "must be ...": a
# harness.limits.Limit is one, and a registered block may bring its own.
ParamCheck = Callable[[Any], str]

_RATE = Limit(float, 0, 1, open_high=True)
# R's inner width is its width / reduction (harness.blocks.residual_block): a
# reduction above the narrowest width leaves no channels; 256 bounds its base width.
BUILT_IN_PARAMS: dict[str, dict[str, ParamCheck]] = {
    "R": {"reduction": Limit(int, 1, 256), "drop_path_rate": _RATE},
    "I": {
        "exp_ratio": Limit(float, 0, 64, open_low=True),
        "kernel_size": Limit(int, 1, 31, odd=True),
        "drop_path_rate": _RATE,
    },
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
            refuse(f"{prefix}.{name}", problem, value)
