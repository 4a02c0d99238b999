"""Search spaces are files: `search_spaces/NAME.toml` (or .yaml), validated on load.

A space fixes a protocol, a skeleton and training settings, says which
architectures are candidates, and which other settings Optuna varies:

    description = "..."
    protocol = "fast"                 # harness/protocols/NAME.toml
    [skeleton]                        # fixed skeleton fields (models.Skeleton)
    depths = [3, 4, 6, 3]
    [train]                           # fixed training settings (config.TrainConfig)
    [architecture]
    positions = ["R", "I"]            # one letter per block position, sum(depths) of them
    # or: choices = ["alternated", "RI", "timm:resnet50"]   (a list of architectures)
    # or: split = ["R", "I"]          (R*k I*(16-k) and I*k R*(16-k), k = 0..16)
    # or: counts = { R = 8, I = 8 }   (every order of exactly 8 R and 8 I)
    enqueue = ["alternated", "RI", "IR"]                   # measured first, always
    [search.skeleton.width_mult]      # a searched skeleton field
    choices = [0.5, 1.0]
    [search.block_params.I.exp_ratio] # a searched block parameter of letter I
    choices = [2, 4, 6]
    [search.train.lr]                 # a searched training setting
    low = 5e-4
    high = 5e-3
    log = true

Kinds of [architecture] -> Optuna parameters: `encodings`; finding files: `lookup`.
Every error is a ConfigError naming the file, the key and what is allowed.
Nothing here imports torch: spaces must list and validate quickly.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import limits
from harness.block_params import check_block_params
from harness.config import TRAIN_LIMITS, check_finite
from harness.errors import ConfigError
from harness.grammar import resolve
from harness.search.encodings import (
    Encoding,
    canonical,
    check_architecture,
    grid_error,
    make_encoding,
)
from harness.search.lookup import (
    ENV_VAR,
    SUFFIXES,
    find_space,
    list_spaces,
    looked_in,
    packaged_dir,
    read_space,
    space_dirs,
)
from harness.skeleton_limits import check_skeleton_field

__all__ = [
    "ENV_VAR",
    "SUFFIXES",
    "Param",
    "SearchSpace",
    "list_spaces",
    "load_space",
    "looked_in",
    "packaged_dir",
    "skeleton_value",
    "space_dirs",
]


_TOP_KEYS = ("description", "protocol", "skeleton", "train", "architecture", "search")
_SEARCH_KEYS = ("skeleton", "train", "block_params")
_PARAM_KEYS = ("choices", "low", "high", "log", "step")
# Skeleton fields a space may set; input shape and classes always come from the data.
_SKELETON_KEYS = (
    "stem",
    "stem_width",
    "widths",
    "depths",
    "width_mult",
    "head",
    "head_activation",
    "output",
    "drop_rate",
    "block_params",
)
# Training settings a space may not fix: the architecture is the space's, and the
# data and device are the user's.
_NOT_TRAIN_KEYS = {"arch", "skeleton", "data", "device", "threads", "protocol", "description"}
_DEFAULT_DEPTHS = (3, 4, 6, 3)
_DEFAULT_LETTERS = ("I", "R")


@dataclass(frozen=True)
class Param:
    """One searched setting: categorical `choices`, or a numeric range."""

    name: str  # Optuna's parameter name: "width_mult", "I.exp_ratio", "lr"
    target: str  # "skeleton", "block_params" or "train"
    key: str  # the field: "width_mult", "exp_ratio", "lr"
    letter: str | None = None  # block_params only
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def is_categorical(self) -> bool:
        return self.choices is not None

    @property
    def is_int(self) -> bool:
        return not self.is_categorical and all(
            isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None
        )

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(_show(c) for c in self.choices) + "}"
        scale = ", log" if self.log else ""
        step = f", step {_show(self.step)}" if self.step is not None else ""
        return f"[{_show(self.low)}, {_show(self.high)}{scale}{step}]"


@dataclass(frozen=True)
class SearchSpace:
    name: str
    path: Path
    description: str
    protocol: str
    skeleton: dict[str, Any]  # fixed skeleton fields
    train: dict[str, Any]  # fixed training settings
    kind: str  # "positions" | "choices" | "split" | "counts" (harness.search.encodings)
    # positions: the letters each position may take (sorted); split: the two letters;
    # counts: the letters as written, `counts` blocks of each.
    letters: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # choices: the architectures as written
    counts: tuple[int, ...] = ()
    enqueue: tuple[str, ...] = ()
    params: tuple[Param, ...] = field(default_factory=tuple)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(self.skeleton.get("depths", _DEFAULT_DEPTHS))

    @property
    def n_positions(self) -> int:
        """Block positions the space fills (sum of depths); 0 for a list of choices."""
        return sum(self.depths) if self.kind != "choices" else 0

    @property
    def encoding(self) -> Encoding:
        return make_encoding(
            self.kind, self.depths, self.letters or _known_letters(), self.choices, self.counts
        )

    def arch_from_params(self, params: Mapping[str, Any]) -> str:
        """The architecture a trial's parameters name: canonical string, or a choice as written."""
        return self.encoding.arch(params)

    def enqueue_params(self) -> list[dict[str, Any]]:
        """Optuna parameters of the architectures to measure first (others are sampled)."""
        encoding = self.encoding
        if self.kind == "choices":
            return [encoding.params_of(arch) for arch in self.enqueue]
        return [
            encoding.params_of(resolve(text, self.depths, known=self.letters).flat)
            for text in self.enqueue
        ]

    def arch_grid(self) -> dict[str, list[Any]]:
        """The architecture's parameters for Optuna's grid sampler; ConfigError if it has none."""
        grid = self.encoding.grid()
        if grid is None:
            raise grid_error(self.encoding, f"{self.name} ({self.path})")
        return grid

    def summary(self) -> str:
        return self.encoding.describe()


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- validation ------------------------------------------------------------------------


class _Checker:
    """Validation with messages that all start with the file name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message}")

    def table(self, data: Any, key: str) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self.fail(key, f"expected a table, got {type(data).__name__} {data!r}")
        return data

    def keys(self, data: dict[str, Any], allowed: tuple[str, ...] | set[str], key: str) -> None:
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            shown = f"[{key}]" if key else "top level"
            raise self.fail(
                f"{key}.{unknown[0]}" if key else unknown[0],
                f"unknown key in {shown} (allowed: {', '.join(sorted(allowed))})",
            )

    def string_list(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a non-empty list of strings, got {value!r}")
        return tuple(value)


def _train_keys() -> set[str]:
    from harness.config import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig) if f.name not in _NOT_TRAIN_KEYS}


def _check_skeleton(check: _Checker, data: dict[str, Any], key: str) -> dict[str, Any]:
    check.keys(data, _SKELETON_KEYS, key)
    for name, value in data.items():
        check_skeleton_field(f"{check.path}: {key}.{name}", name, value)
    if "widths" in data and "depths" in data and len(data["widths"]) != len(data["depths"]):
        raise check.fail(
            f"{key}.widths",
            f"has {len(data['widths'])} stages but depths has {len(data['depths'])}",
        )
    if "block_params" in data:
        params = check.table(data["block_params"], f"{key}.block_params")
        for letter, values in params.items():
            check_block_params(letter, check.table(values, f"{key}.block_params.{letter}"),
                               f"{check.path}: {key}.block_params.")  # fmt: skip
    return dict(data)


def _check_train(check: _Checker, data: dict[str, Any], key: str) -> dict[str, Any]:
    check.keys(data, _train_keys(), key)
    for name, value in data.items():
        if name in TRAIN_LIMITS:
            limits.check(f"{check.path}: {key}.{name}", value, TRAIN_LIMITS[name])
    return dict(data)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_param(check: _Checker, spec: Any, where_key: str, **where: Any) -> Param:
    key = where_key
    spec = check.table(spec, key)
    check.keys(spec, _PARAM_KEYS, key)
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            raise check.fail(f"{key}.{extra[0]}", "cannot be combined with choices")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise check.fail(f"{key}.choices", f"expected a non-empty list, got {choices!r}")
        for choice in choices:
            # Optuna's categorical values must be None, bool, int, float or str.
            if not isinstance(choice, (str, int, float, bool)):
                raise check.fail(
                    f"{key}.choices",
                    f"{choice!r} is a {type(choice).__name__}; choices must be strings or numbers "
                    '(write a list of widths as a string, e.g. "64,128,256,512")',
                )
        if len(set(map(repr, choices))) != len(choices):
            raise check.fail(f"{key}.choices", f"has duplicates: {choices!r}")
        return Param(choices=tuple(choices), **where)
    if "low" not in spec or "high" not in spec:
        raise check.fail(key, "needs either choices = [...] or both low and high")
    low, high = spec["low"], spec["high"]
    if not _number(low) or not _number(high) or low >= high:
        raise check.fail(key, f"needs finite numbers low < high, got low={low!r} high={high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise check.fail(f"{key}.log", f"expected true or false, got {log!r}")
    if log and low <= 0:
        raise check.fail(f"{key}.low", f"must be positive on a log scale, got {low!r}")
    step = spec.get("step")
    if step is not None and not (_number(step) and math.isfinite(step) and step > 0):
        limits.refuse(f"{check.path}: {key}.step", "must be a finite number above 0", step)
    if step is not None and log:
        raise check.fail(f"{key}.step", "cannot be combined with log = true")
    return Param(low=low, high=high, log=log, step=step, **where)


def _check_search(
    check: _Checker, data: dict[str, Any], letters: tuple[str, ...], fixed: dict[str, Any]
) -> tuple[Param, ...]:
    check.keys(data, _SEARCH_KEYS, "search")
    params: list[Param] = []
    skeleton = check.table(data.get("skeleton"), "search.skeleton")
    check.keys(skeleton, tuple(k for k in _SKELETON_KEYS if k != "block_params"), "search.skeleton")
    for name, spec in skeleton.items():
        key = f"search.skeleton.{name}"
        param = _check_param(check, spec, key, name=name, target="skeleton", key=name)
        for where, value in _searched_values(param, key):
            value = skeleton_value(name, value)
            check_skeleton_field(f"{check.path}: {where}", name, value)
            _check_skeleton(check, {**fixed, name: value}, "search.skeleton")  # widths vs depths
        params.append(param)
    block_params = check.table(data.get("block_params"), "search.block_params")
    for letter, table in block_params.items():
        if letter not in letters:
            raise check.fail(
                f"search.block_params.{letter}",
                f"unknown block letter (allowed: {', '.join(letters)})",
            )
        for name, spec in check.table(table, f"search.block_params.{letter}").items():
            key = f"search.block_params.{letter}.{name}"
            where = {"name": f"{letter}.{name}", "target": "block_params", "key": name}
            param = _check_param(check, spec, key, letter=letter, **where)
            for value in param.choices or (param.low, param.high):
                check_block_params(letter, {name: value}, f"{check.path}: search.block_params.")
            params.append(param)
    train = check.table(data.get("train"), "search.train")
    check.keys(train, _train_keys(), "search.train")
    for name, spec in train.items():
        key = f"search.train.{name}"
        param = _check_param(check, spec, key, name=name, target="train", key=name)
        for where, value in _searched_values(param, key):
            if name in TRAIN_LIMITS:
                limits.check(f"{check.path}: {where}", value, TRAIN_LIMITS[name])
        params.append(param)
    names = [p.name for p in params]
    for name in names:
        if names.count(name) > 1 or _reserved(name):
            raise check.fail(f"search.*.{name}", "parameter name is used twice or reserved")
    return tuple(params)


def _searched_values(param: Param, key: str) -> list[tuple[str, Any]]:
    """(where, value) of each value a searched setting may take at its ends: each choice,
    or the range's low and high."""
    if param.choices is not None:
        return [(f"{key}.choices", choice) for choice in param.choices]
    return [(f"{key}.low", param.low), (f"{key}.high", param.high)]


def _reserved(name: str) -> bool:
    """Names any architecture kind may use (encodings), whatever this space's kind, and
    `seed`: every run's Optuna parameter (harness.search.study.SEED_PARAM)."""
    reserved = ("arch", "split", "order", "seed")
    return name in reserved or (name[:1] in "bk" and name[1:].isdigit())


def skeleton_value(name: str, value: Any) -> Any:
    """Searched widths/depths are strings ("64,128,256,512"): Optuna takes no lists."""
    if name in ("widths", "depths") and isinstance(value, str):
        try:
            return [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            return value
    return value


def _known_letters() -> tuple[str, ...]:
    # The registry lives in harness.blocks, which imports torch; the paper's two
    # letters are known without it, and a custom letter needs its module loaded anyway.
    if "harness.blocks" in sys.modules:
        return sys.modules["harness.blocks"].known_letters()
    return _DEFAULT_LETTERS


def load_space(name: str) -> SearchSpace:
    """A space by name (looked up in `space_dirs()`) or by path; ConfigError if invalid."""
    path = find_space(name)
    check = _Checker(path)
    data = read_space(path)
    check.keys(data, _TOP_KEYS, "")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise check.fail("description", f"expected a string, got {description!r}")
    protocol = data.get("protocol", "fast")
    from harness.config import list_protocols

    protocols = list_protocols()
    if protocol not in protocols:
        raise check.fail(
            "protocol", f"unknown protocol {protocol!r} (allowed: {', '.join(protocols)})"
        )
    skeleton = _check_skeleton(check, check.table(data.get("skeleton"), "skeleton"), "skeleton")
    train = _check_train(check, check.table(data.get("train"), "train"), "train")
    if "architecture" not in data:
        raise check.fail("architecture", 'missing: say positions = ["R", "I"] or choices = [...]')
    depths = tuple(skeleton.get("depths", _DEFAULT_DEPTHS))
    table, known = check.table(data["architecture"], "architecture"), _known_letters()
    arch = check_architecture(check, table, depths, known)
    search = check.table(data.get("search"), "search")
    params = _check_search(check, search, tuple(arch["letters"] or known), skeleton)
    # TOML and YAML spell nan and inf; no setting takes them. Checked last, so that a
    # setting with limits says its whole rule, as its flag does.
    check_finite(data, f"{path}: ")
    searched_depths = any(p.target == "skeleton" and p.key == "depths" for p in params)
    if searched_depths and arch["kind"] != "choices":
        raise check.fail(
            "search.skeleton.depths",
            f"cannot be searched with architecture.{arch['kind']} (the positions are the depths)",
        )
    return SearchSpace(
        name=path.stem,
        path=path,
        description=description,
        protocol=protocol,
        skeleton=skeleton,
        train=train,
        params=params,
        **arch,
    )


def canonical_of(space: SearchSpace, text: str) -> str:
    """Canonical string of an architecture of the space (timm names unchanged)."""
    return canonical(text, space.depths, space.letters or _known_letters())
