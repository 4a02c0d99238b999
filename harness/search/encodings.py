"""A space's architectures as Optuna parameters, and back: one encoding per kind.

    [architecture]
    positions = ["R", "I"]      # each of the 16 positions R or I: categoricals b01..b16
    choices = ["RI", "IR"]      # a list of architectures: one categorical "arch"
    split = ["R", "I"]          # R*k I*(16-k) and I*k R*(16-k): "split" = k, "order" = RI|IR
    counts = { R = 8, I = 8 }   # every order of exactly 8 R and 8 I: random keys k01..k16

`split` keeps the two letters' sequences contiguous and makes the switch point
the variable: an int "split" in 0..n (how many blocks of the first letter) and a
categorical "order" ("RI" or "IR"). Split 0 of one order is split n of the other
(I*16 either way), so 2(n+1) parameter pairs name 2n networks; canonical dedup of
trials makes the repeats free.

`counts` uses random keys (Bean 1994, "Genetic algorithms and random keys for
sequencing and optimization"): one float key in [0, 1] per position; positions
sorted by key (ties by position) take the letters in the order written, so with
`{R = 8, I = 8}` the 8 lowest keys are R. Every key vector decodes to exactly
8 R and 8 I, uniform keys give every ordering the same chance (random sampler),
and each key keeps a meaning TPE and NSGA-II can model and recombine ("low key:
position i tends to be R"). A categorical over the 12,870 strings would have
TPE estimate each string on its own, and an index into the combinations has
neighbours that share little but a prefix. Enqueued architectures get keys
0.25 (R) and 0.75 (I). The grid sampler cannot enumerate keys.

Nothing here imports torch or Optuna at import time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import TIMM_PREFIX
from harness.errors import ConfigError, GrammarError
from harness.grammar import cut, resolve

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ENCODINGS",
    "KINDS",
    "Encoding",
    "canonical",
    "check_architecture",
    "grid_error",
    "make_encoding",
]

# Costs per position: letter -> one number per block position.
Costs = Mapping[str, Sequence[float]]


def _join(values: Any, sep: str = ", ") -> str:
    return sep.join(str(v) for v in values)


@dataclass(frozen=True)
class Encoding:
    """How one kind of [architecture] maps to Optuna parameters."""

    kind: ClassVar[str]
    depths: tuple[int, ...]
    letters: tuple[str, ...]
    choices: tuple[str, ...] = ()
    counts: tuple[int, ...] = ()  # counts: blocks of each letter, in the order of `letters`

    @property
    def n(self) -> int:
        return sum(self.depths)

    def names(self) -> list[str]:
        """The Optuna parameter names this encoding uses."""
        raise NotImplementedError

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        raise NotImplementedError

    def flat(self, params: Mapping[str, Any]) -> str:
        """The letters of the network the parameters name, one per position."""
        raise NotImplementedError

    def arch(self, params: Mapping[str, Any]) -> str:
        """The architecture the parameters name, as its canonical string."""
        return "|".join(cut(self.flat(params), self.depths))

    def params_of(self, flat: str) -> dict[str, Any]:
        """Parameters naming `flat`; GrammarError if it is not a member of the space."""
        raise NotImplementedError

    def grid(self) -> dict[str, list[Any]] | None:
        """Every value of every parameter, for Optuna's grid sampler; None if it has none."""
        raise NotImplementedError

    def size(self) -> int:
        """Distinct architectures (with the stage cut fixed, distinct letter strings)."""
        raise NotImplementedError

    def extremes(self, costs: Costs) -> tuple[str, str]:
        """The cheapest and dearest member for costs additive over positions."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def describe_params(self) -> str:
        raise NotImplementedError

    def _total(self, flat: str, costs: Costs) -> float:
        return sum(costs[letter][i] for i, letter in enumerate(flat))


def _numbered(prefix: str, n: int) -> list[str]:
    """Parameter names prefix01 .. prefixNN, zero-padded so that they sort."""
    width = max(2, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


class Positions(Encoding):
    kind = "positions"

    def names(self) -> list[str]:
        return _numbered("b", self.n)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {name: trial.suggest_categorical(name, list(self.letters)) for name in self.names()}

    def flat(self, params: Mapping[str, Any]) -> str:
        return "".join(str(params[name]) for name in self.names())

    def params_of(self, flat: str) -> dict[str, Any]:
        return dict(zip(self.names(), flat, strict=True))

    def grid(self) -> dict[str, list[Any]]:
        return {name: list(self.letters) for name in self.names()}

    def size(self) -> int:
        return len(self.letters) ** self.n

    def extremes(self, costs: Costs) -> tuple[str, str]:
        positions = range(self.n)
        cheap = "".join(min(self.letters, key=lambda k, i=i: costs[k][i]) for i in positions)
        dear = "".join(max(self.letters, key=lambda k, i=i: costs[k][i]) for i in positions)
        return cheap, dear

    def describe(self) -> str:
        letters = "/".join(self.letters)
        return f"{self.n} positions x {letters} on depths {_join(self.depths, '/')}"

    def describe_params(self) -> str:
        names = self.names()
        return f"{names[0]}..{names[-1]} in {{{_join(self.letters)}}}"


class Choices(Encoding):
    kind = "choices"

    def names(self) -> list[str]:
        return ["arch"]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {"arch": trial.suggest_categorical("arch", list(self.choices))}

    def arch(self, params: Mapping[str, Any]) -> str:
        return str(params["arch"])  # as written: timm names have no canonical form

    def params_of(self, flat: str) -> dict[str, Any]:
        return {"arch": flat}

    def grid(self) -> dict[str, list[Any]]:
        return {"arch": list(self.choices)}

    def size(self) -> int:
        return len({canonical(text, self.depths, self.letters) for text in self.choices})

    def describe(self) -> str:
        return f"{len(self.choices)} architectures"

    def describe_params(self) -> str:
        return f"arch in {{{_join(self.choices)}}}"


class Split(Encoding):
    kind = "split"

    def names(self) -> list[str]:
        return ["split", "order"]

    def orders(self) -> list[str]:
        first, second = self.letters
        return [first + second, second + first]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "split": trial.suggest_int("split", 0, self.n),
            "order": trial.suggest_categorical("order", self.orders()),
        }

    def flat(self, params: Mapping[str, Any]) -> str:
        first, second = str(params["order"])
        k = int(params["split"])
        return first * k + second * (self.n - k)

    def params_of(self, flat: str) -> dict[str, Any]:
        runs = [(letter, len(list(group))) for letter, group in groupby(flat)]
        if len(runs) == 1 and runs[0][0] in self.letters:
            # One letter throughout: the order that starts with it, split at the end.
            letter = runs[0][0]
            other = next(x for x in self.letters if x != letter)
            return {"split": self.n, "order": letter + other}
        if len(runs) == 2 and {runs[0][0], runs[1][0]} == set(self.letters):
            return {"split": runs[0][1], "order": runs[0][0] + runs[1][0]}
        a, b = self.letters
        raise GrammarError(f"is not {a}*k {b}*({self.n}-k) or {b}*k {a}*({self.n}-k)")

    def members(self) -> list[str]:
        return [
            self.flat({"split": k, "order": o}) for o in self.orders() for k in range(self.n + 1)
        ]

    def grid(self) -> dict[str, list[Any]]:
        return {"split": list(range(self.n + 1)), "order": self.orders()}

    def size(self) -> int:
        return len(set(self.members()))

    def extremes(self, costs: Costs) -> tuple[str, str]:
        members = self.members()
        return (
            min(members, key=lambda flat: self._total(flat, costs)),
            max(members, key=lambda flat: self._total(flat, costs)),
        )

    def describe(self) -> str:
        a, b = self.letters
        n = self.n
        return f"{a}*k {b}*({n}-k) or {b}*k {a}*({n}-k), k = 0..{n}, on depths {_join(self.depths, '/')}"

    def describe_params(self) -> str:
        return (
            f"split in 0..{self.n} (blocks before the switch), order in {{{_join(self.orders())}}}"
        )


class Counts(Encoding):
    kind = "counts"

    def names(self) -> list[str]:
        return _numbered("k", self.n)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {name: trial.suggest_float(name, 0.0, 1.0) for name in self.names()}

    def flat(self, params: Mapping[str, Any]) -> str:
        keys = [float(params[name]) for name in self.names()]
        by_key = sorted(range(self.n), key=lambda i: (keys[i], i))
        out = [""] * self.n
        start = 0
        for letter, count in zip(self.letters, self.counts, strict=True):
            for i in by_key[start : start + count]:
                out[i] = letter
            start += count
        return "".join(out)

    def params_of(self, flat: str) -> dict[str, Any]:
        have = [flat.count(letter) for letter in self.letters]
        if len(flat) != self.n or have != list(self.counts):
            raise GrammarError(f"has {self._counted(have)}; this space needs {self.needs()}")
        key = {letter: (j + 0.5) / len(self.letters) for j, letter in enumerate(self.letters)}
        return {name: key[letter] for name, letter in zip(self.names(), flat, strict=True)}

    def needs(self) -> str:
        return "exactly " + self._counted(self.counts)

    def _counted(self, counts: Sequence[int]) -> str:
        return " + ".join(f"{c} {letter}" for letter, c in zip(self.letters, counts, strict=True))

    def grid(self) -> None:
        return None

    def size(self) -> int:
        size = math.factorial(self.n)
        for count in self.counts:
            size //= math.factorial(count)
        return size

    def extremes(self, costs: Costs) -> tuple[str, str]:
        # Positions to letters with fixed counts is an assignment problem: one column
        # per block of each letter.
        import numpy as np
        from scipy.optimize import linear_sum_assignment

        slots = [
            letter
            for letter, count in zip(self.letters, self.counts, strict=True)
            for _ in range(count)
        ]
        matrix = np.array([[costs[letter][i] for letter in slots] for i in range(self.n)], float)
        out = []
        for maximize in (False, True):
            rows, columns = linear_sum_assignment(matrix, maximize=maximize)
            letters = dict(zip(rows.tolist(), [slots[c] for c in columns], strict=True))
            out.append("".join(letters[i] for i in range(self.n)))
        return out[0], out[1]

    def describe(self) -> str:
        return f"every order of {self._counted(self.counts)} on depths {_join(self.depths, '/')}"

    def describe_params(self) -> str:
        names = self.names()
        return (
            f"{names[0]}..{names[-1]} in [0, 1] (random keys: positions sorted by key take "
            f"{', then '.join(f'{c} {letter}' for letter, c in zip(self.letters, self.counts, strict=True))})"
        )


ENCODINGS: dict[str, type[Encoding]] = {
    cls.kind: cls for cls in (Positions, Choices, Split, Counts)
}
KINDS = tuple(ENCODINGS)


def make_encoding(
    kind: str,
    depths: Sequence[int],
    letters: Sequence[str],
    choices: Sequence[str] = (),
    counts: Sequence[int] = (),
) -> Encoding:
    return ENCODINGS[kind](tuple(depths), tuple(letters), tuple(choices), tuple(counts))


def canonical(text: str, depths: tuple[int, ...], known: Sequence[str]) -> str:
    """The canonical string of `text` (a timm name as written)."""
    if text.strip().startswith(TIMM_PREFIX):
        return text.strip()
    return resolve(text, depths, known=known).canonical


# -- validation ------------------------------------------------------------------------


def check_architecture(
    check: Any, data: dict[str, Any], depths: tuple[int, ...], known: tuple[str, ...]
) -> dict[str, Any]:
    """The [architecture] table -> SearchSpace fields; `check` is space._Checker."""
    check.keys(data, (*KINDS, "enqueue"), "architecture")
    given = [kind for kind in KINDS if kind in data]
    if len(given) != 1:
        raise check.fail(
            "architecture",
            "needs exactly one of positions = [letters], choices = [architectures], "
            "split = [two letters] or counts = {letter = blocks, ...}",
        )
    kind = given[0]
    key = f"architecture.{kind}"
    fields: dict[str, Any] = {"kind": kind}
    if kind == "choices":
        choices = check.string_list(data["choices"], key)
        for text in choices:
            if not text.strip().startswith(TIMM_PREFIX):
                try:
                    resolve(text, depths, known=known)
                except GrammarError as error:
                    raise check.fail(key, str(error)) from None
        if len(set(choices)) != len(choices):
            raise check.fail(key, f"has duplicates: {list(choices)!r}")
        fields.update(choices=choices, letters=())
    elif kind == "counts":
        table = check.table(data["counts"], key)
        if len(table) < 2:
            raise check.fail(key, f"needs two or more letters, got {table!r}")
        for letter, count in table.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise check.fail(f"{key}.{letter}", f"expected a block count >= 1, got {count!r}")
        _check_letters(check, tuple(table), key, known)
        if sum(table.values()) != sum(depths):
            written = " + ".join(f"{c} {letter}" for letter, c in table.items())
            raise check.fail(
                key,
                f"{written} = {sum(table.values())} blocks; this space has {sum(depths)} "
                f"positions (depths {_join(depths, '/')})",
            )
        fields.update(letters=tuple(table), counts=tuple(table.values()))
    else:
        letters = _check_letters(check, check.string_list(data[kind], key), key, known)
        if kind == "split" and len(letters) != 2:
            raise check.fail(key, f"needs exactly two letters, got {list(letters)!r}")
        fields["letters"] = tuple(sorted(letters)) if kind == "positions" else letters
    fields["enqueue"] = _check_enqueue(check, data, depths, fields)
    return fields


def _check_letters(
    check: Any, letters: tuple[str, ...], key: str, known: tuple[str, ...]
) -> tuple[str, ...]:
    for letter in letters:
        if letter not in known:
            raise check.fail(key, f"unknown block {letter!r} (allowed: {', '.join(known)})")
    if len(set(letters)) != len(letters):
        raise check.fail(key, f"has duplicates: {list(letters)!r}")
    return letters


def _check_enqueue(
    check: Any, data: dict[str, Any], depths: tuple[int, ...], fields: dict[str, Any]
) -> tuple[str, ...]:
    key = "architecture.enqueue"
    enqueue = check.string_list(data["enqueue"], key) if "enqueue" in data else ()
    if fields["kind"] == "choices":
        for text in enqueue:
            if text not in fields["choices"]:
                raise check.fail(
                    key, f"{text!r} is not one of the choices ({', '.join(fields['choices'])})"
                )
        return enqueue
    encoding = make_encoding(
        fields["kind"], depths, fields["letters"], counts=fields.get("counts", ())
    )
    for text in enqueue:
        try:
            genotype = resolve(text, depths, known=fields["letters"])
        except GrammarError as error:
            raise check.fail(key, str(error)) from None
        if genotype.n_blocks != sum(depths):
            raise check.fail(
                key,
                f"{text!r} has {genotype.n_blocks} blocks; this space has {sum(depths)} "
                f"positions (depths {_join(depths, '/')})",
            )
        try:
            encoding.params_of(genotype.flat)
        except GrammarError as error:
            raise check.fail(key, f"{text!r} {error}") from None
    if len(set(enqueue)) != len(enqueue):
        raise check.fail(key, f"has duplicates: {list(enqueue)!r}")
    return enqueue


def grid_error(encoding: Encoding, where: str) -> ConfigError:
    names = encoding.names()
    return ConfigError(
        f"--sampler grid cannot enumerate {where}: its {encoding.size():,} orderings are "
        f"random keys ({names[0]}..{names[-1]}, floats in [0, 1]); use tpe, nsga2 or random"
    )
