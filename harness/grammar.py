"""Block-sequence grammar: text such as "(IR)*8" -> plain data, before any torch module exists.

    arch  := stage ("|" stage)*        "|" starts a new stage (stride 2, next width)
    stage := item+
    item  := atom ("*" INT)?           repetition, INT >= 1
    atom  := LETTER | "(" item+ ")"    parentheses nest; "|" is not allowed inside them

Whitespace between tokens is ignored ("R*8 I*8" == "R*8I*8" == "R * 8 I * 8"), but
a repeat count is one token: "R*1 6" is an error, not R*16. A LETTER is one
upper-case ASCII letter, checked against the `known` letters the caller passes
in, because the block registry lives in a torch module this one must not import.

Text with "|" keeps its stages as written. Text without "|" is flat and is cut
into the skeleton's stages by `cut`: every stage gets one block, then the
remaining blocks go to stages by largest remainder in proportion to the depths
(ties to the earlier stage). On a 3/4/6/3 skeleton, 16 blocks -> 3/4/6/3,
8 blocks -> 2/2/2/2 (the 4 spare blocks have quotas .75/1/1.5/.75), 4 -> 1/1/1/1,
and fewer blocks than stages fill the first stages with one block each. The
canonical form, `Genotype.canonical` (e.g. "RRR|RRRR|IIIIII|III"), is the
architecture's identity: the database key and the dedup key.

Named orderings (`resolve` only, which is what the CLI calls): when the whole
stripped text is "alternated" (any case), "RI" or "IR" (exact), optionally with
":N" (N >= 1 blocks, default: the skeleton's total depth), it names the paper's
networks: "alternated:N" is IRIR... (the paper's alternated net starts with an
inverted-residual block, "(IR)*8"), "RI:N" is R*ceil(N/2) then I*floor(N/2),
"IR:N" the mirror. Names are matched on the raw stripped text, so the literal
two-block net R-then-I is written "R I" or "(RI)"; `parse` and `canonicalise`
never read names, and `format_arch` never emits one.

Every error raised here is a `GrammarError` whose one-line message names the
1-based column in the original text where one applies and, for grammar text, the
known letters. Expansions are capped at `MAX_BLOCKS` blocks so that
"((R*999)*999)*999" fails instead of filling memory, and parentheses at 32 levels.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import NoReturn

from harness.errors import GrammarError

__all__ = [
    "DEFAULT_LETTERS",
    "MAX_BLOCKS",
    "NAMED_ORDERINGS",
    "Arch",
    "Genotype",
    "canonicalise",
    "cut",
    "expand_named",
    "family",
    "format_arch",
    "parse",
    "resolve",
]

DEFAULT_LETTERS: tuple[str, ...] = ("I", "R")
NAMED_ORDERINGS: tuple[str, ...] = ("alternated", "RI", "IR")
MAX_BLOCKS: int = 1024
_MAX_NESTING = 32  # deeper parentheses would hit Python's recursion limit, not a GrammarError

_LETTERS = frozenset(string.ascii_uppercase)
_DIGITS = frozenset(string.digits)
_WINDOW = 30  # characters shown each side of an error's column in a long input
_CANONICAL_HINT = (
    'expected upper-case letters in stages separated by "|", e.g. "RRR|RRRR|IIIIII|III"'
)


def _check_stages(stages: object, what: str) -> tuple[str, ...]:
    """Reject stage tuples no parser could produce, so a Genotype is always a valid key."""
    stages = tuple(stages)  # type: ignore[call-overload]
    if not stages:
        raise GrammarError(f"{what} needs at least one stage")
    for index, stage in enumerate(stages, 1):
        if not isinstance(stage, str) or not stage or not set(stage) <= _LETTERS:
            raise GrammarError(
                f"{what} stage {index} is {stage!r}; stages are non-empty strings of upper-case letters"
            )
    return stages


@dataclass(frozen=True)
class Arch:
    """What the text said, repetition expanded, before a skeleton gives it stages."""

    stages: tuple[str, ...]
    explicit: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", _check_stages(self.stages, "Arch"))
        # explicit == "the text had '|'", and text with '|' always has two or more stages.
        if self.explicit != (len(self.stages) > 1):
            raise GrammarError(
                f"Arch with {len(self.stages)} stage(s) cannot have explicit={self.explicit}: "
                "explicit archs have two or more stages, flat ones exactly one"
            )

    @property
    def flat(self) -> str:
        return "".join(self.stages)


@dataclass(frozen=True)
class Genotype:
    """An architecture cut into a skeleton's stages; two equal genotypes are the same net."""

    stages: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", _check_stages(self.stages, "Genotype"))

    def __str__(self) -> str:
        return self.canonical

    @property
    def canonical(self) -> str:
        return "|".join(self.stages)

    @property
    def flat(self) -> str:
        return "".join(self.stages)

    @property
    def n_blocks(self) -> int:
        return len(self.flat)

    def counts(self) -> dict[str, int]:
        """Blocks per letter present, sorted by letter (stable for reports and JSON)."""
        flat = self.flat
        return {letter: flat.count(letter) for letter in sorted(set(flat))}

    @classmethod
    def from_canonical(cls, text: str) -> Genotype:
        """Read a key back from the database: strict, since a canonical string has one spelling."""
        if not text:
            raise GrammarError(f'empty genotype "" ({_CANONICAL_HINT})')
        start = 0
        for stage in text.split("|"):
            if not stage:
                raise GrammarError(
                    f"empty stage at column {start + 1} in genotype {_shown(text, start)} "
                    f"({_CANONICAL_HINT})"
                )
            for offset, char in enumerate(stage):
                if char not in _LETTERS:
                    raise GrammarError(
                        f"unexpected {char!r} at column {start + offset + 1} in genotype "
                        f"{_shown(text, start + offset)} ({_CANONICAL_HINT})"
                    )
            start += len(stage) + 1
        return cls(tuple(text.split("|")))


def _shown(text: str, index: int = 0) -> str:
    """`text` quoted on one line; a long one cut to a window around `index` (0-based), with
    its length, so that a 10,000-character input does not fill the terminal."""
    flat = "".join(" " if char.isspace() else char for char in text)
    if len(flat) <= 2 * _WINDOW + 20:
        return f'"{flat}"'
    start = max(0, min(index - _WINDOW, len(flat) - 2 * _WINDOW))
    end = start + 2 * _WINDOW
    window = ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
    return f'"{window}" ({len(flat):,} characters)'


def _known_letters(known: Collection[str]) -> tuple[str, ...]:
    letters = tuple(sorted(set(known)))
    bad = [letter for letter in letters if letter not in _LETTERS]
    if bad:
        raise GrammarError(f"block letters must be single upper-case letters, got {bad!r}")
    return letters


class _Parser:
    """Recursive descent over the original text, so errors can point at its columns."""

    def __init__(self, text: str, known: tuple[str, ...]) -> None:
        self.text = text
        self.known = known
        self.pos = 0
        self.nesting = 0

    def fail(self, message: str, index: int, hint: str = "") -> NoReturn:
        letters = ", ".join(self.known) or "none"
        raise GrammarError(
            f"{message} at column {index + 1} in {_shown(self.text, index)} "
            f"(known: {letters}{'; ' + hint if hint else ''})"
        )

    def peek(self) -> tuple[str, int]:
        """Next non-space character ('' at the end) and its index; does not consume it."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return (self.text[self.pos] if self.pos < len(self.text) else ""), self.pos

    def arch(self) -> Arch:
        stages: list[str] = []
        bar = -1  # index of the "|" before the current stage
        while True:
            stage = self.items()
            char, index = self.peek()
            if char == ")":
                self.fail("unmatched ')'", index)
            if not stage:
                if bar >= 0:
                    self.fail("empty stage after '|'", bar)
                self.fail("empty stage before '|'", index)
            stages.append(stage)
            if char == "":
                return Arch(tuple(stages), explicit=len(stages) > 1)
            bar, self.pos = index, index + 1  # char is "|": items() stops only at '', ')' or '|'

    def items(self) -> str:
        parts: list[str] = []
        total = 0
        while True:
            char, index = self.peek()
            if char in ("", "|", ")"):
                return "".join(parts)
            part = self.item()
            total += len(part)
            if total > MAX_BLOCKS:
                self.fail(f"more than {MAX_BLOCKS} blocks", index)
            parts.append(part)

    def item(self) -> str:
        letters = self.atom()
        char, star = self.peek()
        if char != "*":
            return letters
        self.pos = star + 1
        _, start = self.peek()
        end = start
        while end < len(self.text) and self.text[end] in _DIGITS:
            end += 1
        if end == start:
            self.fail("'*' needs a repeat count", star, "write e.g. R*3")
        self.pos = end
        digits = self.text[start:end]
        count = int(digits) if len(digits.lstrip("0")) <= 9 else MAX_BLOCKS + 1
        if count == 0:
            self.fail("repeat count must be at least 1, got 0", start)
        if len(letters) * count > MAX_BLOCKS:
            self.fail(f"more than {MAX_BLOCKS} blocks", star)
        return letters * count

    def atom(self) -> str:
        char, index = self.peek()
        if char in _LETTERS:
            if char not in self.known:
                self.fail(f"unknown block {char!r}", index)
            self.pos = index + 1
            return char
        if char == "(":
            self.pos = index + 1
            self.nesting += 1
            if self.nesting > _MAX_NESTING:
                self.fail(f"parentheses nested deeper than {_MAX_NESTING}", index)
            inner = self.items()
            self.nesting -= 1
            close, at = self.peek()
            if close == ")":
                if not inner:
                    self.fail("empty parentheses '()'", index)
                self.pos = at + 1
                return inner
            if close == "|":
                self.fail(
                    f"'|' inside parentheses (opened at column {index + 1})",
                    at,
                    "stage breaks go outside parentheses",
                )
            self.fail("unclosed '('", index)
        if char in string.ascii_lowercase:
            self.fail(f"unknown block {char!r}", index, "letters are upper case")
        if char == "*":
            self.fail("'*' has nothing to repeat", index)
        if char in _DIGITS:
            self.fail(f"unexpected digit {char!r}", index, "a repeat count follows '*', e.g. R*3")
        if char == ":":
            self.fail(
                "unexpected ':'", index, "only the named orderings alternated, RI and IR take ':N'"
            )
        self.fail(f"unexpected character {char!r}", index)


def parse(text: str, known: Collection[str] = DEFAULT_LETTERS) -> Arch:
    """Expand grammar text into letters; stages only where the text wrote "|"."""
    letters = _known_letters(known)
    if not text.strip():
        raise GrammarError(
            f'empty architecture string "" (known: {", ".join(letters) or "none"}; '
            'write blocks such as "R*8 I*8")'
        )
    return _Parser(text, letters).arch()


def _format_stage(stage: str) -> str:
    """Runs as LETTER*k, and a stage that repeats one unit as (unit)*k, e.g. "(I R)*8"."""
    size = len(stage)
    for period in range(1, size // 2 + 1):
        if size % period == 0 and stage == stage[:period] * (size // period):
            unit = stage[0] if period == 1 else f"({_format_runs(stage[:period])})"
            return f"{unit}*{size // period}"
    return _format_runs(stage)


def _format_runs(letters: str) -> str:
    runs = [(letter, len(list(group))) for letter, group in groupby(letters)]
    return " ".join(letter if count == 1 else f"{letter}*{count}" for letter, count in runs)


def format_arch(arch: Arch | Genotype) -> str:
    """Short text a person can read back; runs are separated by spaces, so it is never a name."""
    return "|".join(_format_stage(stage) for stage in arch.stages)


def _check_depths(depths: Sequence[int]) -> tuple[int, ...]:
    depths = tuple(depths)
    if not depths or any(
        isinstance(depth, bool) or not isinstance(depth, int) or depth < 1 for depth in depths
    ):
        raise GrammarError(
            f"skeleton depths must be one or more whole numbers >= 1, got {depths!r}"
        )
    return depths


def cut(flat: str, depths: Sequence[int]) -> tuple[str, ...]:
    """Give a flat sequence stages in proportion to the skeleton, keeping every stage non-empty."""
    depths = _check_depths(depths)
    if not flat:
        raise GrammarError("cannot cut an empty block sequence into stages")
    if len(flat) < len(depths):
        return tuple(flat)  # one block in each of the first len(flat) stages
    spare, total = len(flat) - len(depths), sum(depths)
    # Largest remainder in exact integers: quota_i = spare * d_i / total.
    sizes = [1 + spare * depth // total for depth in depths]
    by_remainder = sorted(range(len(depths)), key=lambda i: (-(spare * depths[i] % total), i))
    for i in by_remainder[: len(flat) - sum(sizes)]:
        sizes[i] += 1
    stages, start = [], 0
    for size in sizes:
        stages.append(flat[start : start + size])
        start += size
    return tuple(stages)


def canonicalise(
    text: str | Arch, depths: Sequence[int], known: Collection[str] = DEFAULT_LETTERS
) -> Genotype:
    """Text (or a parsed Arch) on a skeleton -> the identity used for dedup and storage."""
    depths = _check_depths(depths)
    if isinstance(text, str):
        arch = parse(text, known)
    else:
        arch = text
        letters = _known_letters(known)
        unknown = sorted(set(arch.flat) - set(letters))
        if unknown:
            raise GrammarError(
                f"unknown block {unknown[0]!r} in {format_arch(arch)!r} (known: {', '.join(letters)})"
            )
    if not arch.explicit:
        return Genotype(cut(arch.flat, depths))
    if len(arch.stages) > len(depths):
        shown = text if isinstance(text, str) else format_arch(arch)
        raise GrammarError(
            f"{_shown(shown.strip())} has {len(arch.stages)} stages but the skeleton has {len(depths)} "
            f"(depths {'/'.join(map(str, depths))}); remove a '|', or drop them all to cut in proportion"
        )
    return Genotype(arch.stages)


def expand_named(name: str, n_blocks: int) -> str:
    """The paper's orderings as flat letters; the I-first alternation is the paper's "(IR)*8"."""
    key = "alternated" if name.lower() == "alternated" else name
    if key not in NAMED_ORDERINGS:
        raise GrammarError(f"unknown named ordering {name!r} (known: {', '.join(NAMED_ORDERINGS)})")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
        raise GrammarError(f"{key} needs a block count >= 1, got {n_blocks!r}")
    if n_blocks > MAX_BLOCKS:
        raise GrammarError(f"{key}:{n_blocks} has more than {MAX_BLOCKS} blocks")
    first = (n_blocks + 1) // 2
    if key == "RI":
        return "R" * first + "I" * (n_blocks - first)
    if key == "IR":
        return "I" * first + "R" * (n_blocks - first)
    return ("IR" * first)[:n_blocks]


def _match_named(text: str) -> tuple[str, int | None] | None:
    """(name, N or None) when the whole stripped text is a named ordering, else None."""
    head, colon, tail = text.strip().partition(":")
    head = head.rstrip()
    name = "alternated" if head.lower() == "alternated" else head
    if name not in NAMED_ORDERINGS:
        return None
    if not colon:
        return name, None
    digits = tail.strip()
    if not digits or not set(digits) <= _DIGITS or not digits.lstrip("0"):
        column = text.index(":")
        raise GrammarError(
            f"bad block count {digits[:20]!r}{'…' if len(digits) > 20 else ''} after ':' at column {column + 1} in "
            f"{_shown(text, column)} "
            f'(write {name}:N with N a whole number >= 1, e.g. "{name}:16")'
        )
    return name, int(digits) if len(digits.lstrip("0")) <= 9 else MAX_BLOCKS + 1


def resolve(text: str, depths: Sequence[int], known: Collection[str] = DEFAULT_LETTERS) -> Genotype:
    """What the CLI calls: a named ordering ("RI", "alternated:12") or grammar text."""
    depths = _check_depths(depths)
    named = _match_named(text)
    if named is None:
        return canonicalise(text, depths, known)
    name, n_blocks = named
    letters = _known_letters(known)
    if not {"I", "R"} <= set(letters):
        raise GrammarError(
            f"named ordering {name!r} needs blocks I and R (known: {', '.join(letters) or 'none'})"
        )
    flat = expand_named(name, sum(depths) if n_blocks is None else n_blocks)
    return canonicalise(Arch((flat,), explicit=False), depths, letters)


def family(genotype: Genotype | Arch | str) -> str:
    """Which of the paper's orderings a net follows, for grouping results; "other" if none."""
    flat = Genotype.from_canonical(genotype).flat if isinstance(genotype, str) else genotype.flat
    runs = [letter for letter, _ in groupby(flat)]
    if len(runs) == len(flat) >= 2 and set(flat) == {"I", "R"}:  # every run is one block long
        return "alternated"
    if runs == ["R", "I"]:
        return "RI"
    if runs == ["I", "R"]:
        return "IR"
    return "other"
